package doorman

import (
	dmaction "github.com/doorward/doorward/actions/doorman"
	cfg "github.com/doorward/doorward/config/doorman"
	"github.com/doorward/doorward/config/knockd"
	"github.com/doorward/doorward/detectors"
)

// Name is the protocol's door Type (J.B. Ward's doormand single-packet
// knocks). Its action, doormand's broad → narrow → delete lifecycle, is
// actions/doorman's; its loader, an unchanged doormand.cf, config/doorman's.
const Name = "doorman"

func init() {
	detectors.Register(detectors.Protocol{Name: Name, Detector: newDetector, Reasons: dmaction.Reasons})
}

func newDetector(doors []*knockd.Door, env *detectors.Env) (detectors.Detector, error) {
	ds, err := FromDoors(doors, cfg.KeyOrName(env.Key), SetupOptions{
		Resolver: cfg.SystemResolver(),
		// Replay and --check: archives in memory, no file checks.
		Memory:             env.Replay,
		NoPermissionChecks: env.Replay,
		Logf:               env.Logf,
	})
	if err != nil {
		return nil, err
	}
	return New(ds, Options{Logf: env.Logf, LogRate: env.LogRate, LogBurst: int(10 * env.LogRate), LogSuppressed: env.LogSuppressed, MaxPending: env.MaxSources, Store: env.Store, Tally: env.Tally}), nil
}
