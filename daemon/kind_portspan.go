package daemon

import (
	"github.com/doorward/doorward/config/knockd"
	"github.com/doorward/doorward/detectors"
	"github.com/doorward/doorward/detectors/portspan"
)

// knockdaemon's encrypted port-span knocks. The kind also reads the
// "action" sections (conditions, templates, state), which its Action,
// newKnockdaemonAction, turns into commands; the detector skips them.
func init() {
	registerKind("portspan", Kind{Detector: newPortspan, Action: newKnockdaemonAction, Sections: []string{"action"}})
}

func newPortspan(doors []*knockd.Door, env *Env) (detectors.Detector, error) {
	ds, err := portspan.FromDoors(doors, env.Key, env.MaxSources)
	if err != nil {
		return nil, err
	}
	return portspan.New(ds, portspan.Options{Logf: env.Logf, LogRate: env.LogRate, LogBurst: 10 * env.LogRate}), nil
}
