package knockdaemon

import (
	"path/filepath"

	kdaction "github.com/doorward/doorward/actions/knockdaemon"

	"github.com/doorward/doorward/config/knockd"
	"github.com/doorward/doorward/detectors"
	"github.com/doorward/doorward/internal/spent"
)

// Name is the protocol's door Type: knockdaemon's encrypted port-span
// knocks. "portspan", its Type before the protocol had one name, still
// loads. The protocol also reads the "action" sections (conditions,
// templates, state), which its action (actions/knockdaemon) turns into
// commands; the detector skips them.
const Name = "knockdaemon"

func init() {
	detectors.Register(detectors.Protocol{Name: Name, Aliases: []string{"portspan"}, Sections: []string{"action"}, Detector: newDetector, Reasons: kdaction.Reasons})
}

func newDetector(doors []*knockd.Door, env *detectors.Env) (detectors.Detector, error) {
	ds, err := FromDoors(doors, env.Key, env.MaxSources)
	if err != nil {
		return nil, err
	}
	opt := Options{Logf: env.Logf, LogRate: env.LogRate, LogBurst: 10 * env.LogRate, LogSuppressed: env.LogSuppressed, Store: env.Store, Tally: env.Tally}
	if !env.Replay && env.StateDir != "" {
		opt.SpentPath = filepath.Join(env.StateDir, SpentFile)
	}
	det := New(ds, opt)
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
