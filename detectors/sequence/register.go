package sequence

import (
	"github.com/doorward/doorward/config/knockd"
	"github.com/doorward/doorward/detectors"
)

// Name is the protocol's door Type. knockd's doors have no Type line: ""
// is an alias, and their knocks run their Start_Command and Stop_Command
// through the runtime's command engine, so there is no action to register.
const Name = "sequence"

func init() {
	detectors.Register(detectors.Protocol{Name: Name, Aliases: []string{""}, Detector: newDetector, Commands: true})
}

func newDetector(doors []*knockd.Door, env *detectors.Env) (detectors.Detector, error) {
	seq, err := FromDoors(doors, env.Key, OneTimeFrom(env.Store))
	if err != nil {
		return nil, err
	}
	return New(seq, Options{Logf: env.Logf, RulesChanged: env.RulesChanged, MaxSources: env.MaxSources, LogRate: env.LogRate, LogBurst: 10 * env.LogRate, LogSuppressed: env.LogSuppressed, Store: env.Store}), nil
}
