package daemon

import (
	"fmt"

	"github.com/doorward/doorward/actions"
	"github.com/doorward/doorward/actions/filestore"
	"github.com/doorward/doorward/config/knockd"
	"github.com/doorward/doorward/detectors"
)

// The runtime knows protocols only through their registries
// (detectors.Register, actions.Register): it imports none of them, and
// the binary's package list (package protocols) decides which are built
// in. A protocol registered with Commands is a knockd door kind whose
// events go to the command engine; any other has its own Action.

// Env is what the runtime hands the protocols' actions; the detectors'
// Env is derived from it per plan (detectorEnv).
type Env = actions.Env

// sourceSections are section Types read by a packet source, not by a
// protocol.
var sourceSections = map[string]bool{"logformat": true}

// detectorEnv is the detector side's part of e.
func detectorEnv(e *Env, rulesChanged func()) *detectors.Env {
	return &detectors.Env{Logf: e.Logf, Key: e.Key, RulesChanged: rulesChanged, Replay: e.Replay,
		MaxSources: e.MaxSources, LogRate: e.LogRate, LogSuppressed: e.LogSuppressed, StateDir: e.StateDir, Store: e.Store, Tally: e.Tally}
}

// withStore fills in a Store for an Env built without one (tests build
// Envs by hand): the file backend without a state directory, so one-time
// files and a StateCache still work, and nothing else is kept on disk.
func withStore(e *Env) {
	if e.Store == nil {
		e.Store = filestore.New(filestore.Options{Logf: e.Logf})
	}
}

func unknownType(d *knockd.Door) error {
	return fmt.Errorf("%s: Type: unknown door type %q (have: %s)", d.Pos, d.Type, detectors.Names())
}
