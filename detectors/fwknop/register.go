package fwknop

import (
	fwaction "github.com/doorward/doorward/actions/fwknop"
	"github.com/doorward/doorward/config/knockd"
	"github.com/doorward/doorward/detectors"
)

// Name is the protocol's door Type: fwknop single-packet authorization.
// Its action is actions/fwknop's; its loader, an unchanged fwknopd.conf
// and access.conf, config/fwknop's.
const Name = "fwknop"

func init() {
	detectors.Register(detectors.Protocol{Name: Name, Detector: newDetector, Groups: true, Reasons: fwaction.Reasons})
}

func newDetector(doors []*knockd.Door, env *detectors.Env) (detectors.Detector, error) {
	key := env.Key
	if key == nil {
		key = func(d *knockd.Door) string { return d.Name }
	}
	ss, err := FromDoors(doors, key, SetupOptions{Logf: env.Logf})
	if err != nil {
		return nil, err
	}
	return New(ss, Options{
		Logf: env.Logf, LogRate: env.LogRate, LogBurst: int(10 * env.LogRate), LogSuppressed: env.LogSuppressed,
		Store: env.Store, Replay: env.Replay, Tally: env.Tally,
	}), nil
}
