package daemon

import (
	"github.com/doorward/doorward/actions"
	"github.com/doorward/doorward/actions/filestore"
	"github.com/doorward/doorward/actions/knockdaemon"
	"github.com/doorward/doorward/config/knockd"
)

// newKnockdaemonAction is the Action of port-span doors: knockdaemon's
// conditions, state and templates (actions/knockdaemon).
//
// The state store is the [options] StateCache file in live mode, and in
// memory in replay and --check, so neither touches (nor waits for the lock
// of) a running daemon's state. Delayed commands go to the journal of open
// doors when there is one (live), so that a crash cannot lose them: the
// next start runs them with the other leftover entries, before any knock.
func newKnockdaemonAction(doors []*knockd.Door, env *Env) (Action, error) {
	path := env.StateCache
	if env.Replay {
		path = ""
	}
	store := env.Store
	if store == nil { // an Env built by hand (tests): the files
		store = filestore.New(filestore.Options{Logf: env.Logf})
	}
	st, err := store.Values(actions.Space{Name: "StateCache", File: path})
	if err != nil {
		return nil, err
	}
	o := knockdaemon.Options{Logf: env.Logf, Run: env.Run, State: st, Key: env.Key, Replay: env.Replay, LogRate: env.LogRate}
	if env.Journal != nil { // a nil *journal.Journal must stay a nil interface
		o.Journal = env.Journal
	}
	a, err := knockdaemon.New(doors, o)
	if err != nil {
		st.Close()
		return nil, err
	}
	return a, nil
}
