package daemon

import (
	"path/filepath"

	"github.com/doorward/doorward/config/knockd"
	"github.com/doorward/doorward/detectors"
	kdetect "github.com/doorward/doorward/detectors/knockdaemon"
	"github.com/doorward/doorward/internal/spent"
)

// knockdaemon's encrypted port-span knocks. The kind also reads the
// "action" sections (conditions, templates, state), which its Action,
// newKnockdaemonAction, turns into commands; the detector skips them.
func init() {
	registerKind("portspan", Kind{Detector: newPortspan, Action: newKnockdaemonAction, Sections: []string{"action"}})
}

func newPortspan(doors []*knockd.Door, env *Env) (detectors.Detector, error) {
	ds, err := kdetect.FromDoors(doors, env.Key, env.MaxSources)
	if err != nil {
		return nil, err
	}
	opt := kdetect.Options{Logf: env.Logf, LogRate: env.LogRate, LogBurst: 10 * env.LogRate, Store: env.Store}
	if !env.Replay && env.StateDir != "" {
		opt.SpentPath = filepath.Join(env.StateDir, kdetect.SpentFile)
	}
	det := kdetect.New(ds, opt)
	if opt.SpentPath != "" && det.SpentSize() > 0 {
		// Only looked at, so a bad store rejects the config off the packet
		// path: the detector's Commit opens (creates, resizes) the file
		// once the config is accepted, and fails if it cannot.
		if _, err := spent.Check(opt.SpentPath, det.SpentSize(), spent.Options{What: "port-span spent store"}); err != nil {
			return nil, err
		}
	}
	return det, nil
}
