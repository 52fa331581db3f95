package daemon

import (
	"github.com/doorward/doorward/actions/filestore"
	"github.com/doorward/doorward/config/knockd"
	"github.com/doorward/doorward/detectors"
	"github.com/doorward/doorward/detectors/sequence"
)

// knockd's port sequences; their knocks go to the command engine.
func init() {
	registerKind("sequence", Kind{Detector: newSequence})
}

func newSequence(doors []*knockd.Door, env *Env) (detectors.Detector, error) {
	store := env.Store
	if store == nil { // an Env built by hand (tests): the files
		store = filestore.New(filestore.Options{Logf: env.Logf})
	}
	seq, err := sequence.FromDoors(doors, env.Key, sequence.OneTimeFrom(store))
	if err != nil {
		return nil, err
	}
	return sequence.New(seq, sequence.Options{Logf: env.Logf, RulesChanged: env.RulesChanged, MaxSources: env.MaxSources, LogRate: env.LogRate, LogBurst: 10 * env.LogRate}), nil
}
