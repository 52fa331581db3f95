package daemon

import (
	"github.com/doorward/doorward/config/knockd"
	"github.com/doorward/doorward/detectors"
	"github.com/doorward/doorward/detectors/sequence"
	"github.com/doorward/doorward/formats/otp"
)

// knockd's port sequences; their knocks go to the command engine.
func init() {
	registerKind("sequence", Kind{Detector: newSequence})
}

func newSequence(doors []*knockd.Door, env *Env) (detectors.Detector, error) {
	seq, err := sequence.FromDoors(doors, env.Key, openOneTime)
	if err != nil {
		return nil, err
	}
	return sequence.New(seq, sequence.Options{Logf: env.Logf, RulesChanged: env.RulesChanged, MaxSources: env.MaxSources, LogRate: env.LogRate, LogBurst: 10 * env.LogRate}), nil
}

func openOneTime(path string) (sequence.OneTime, error) { return otp.Open(path) }
