package knockdaemon

import (
	"github.com/doorward/doorward/actions"
	"github.com/doorward/doorward/config/knockd"
)

func init() {
	actions.Register(DoorType, newAction)
}

// newAction is the protocol's registered action: knockdaemon's
// conditions, state and templates for its doors and "action" sections.
//
// The state store is the [options] StateCache file in live mode, and in
// memory in replay and --check, so neither touches (nor waits for the lock
// of) a running daemon's state. Delayed commands go to the store of open
// doors when there is one (live), so that a crash cannot lose them: the
// next start runs them with the other leftover entries, before any knock.
func newAction(doors []*knockd.Door, env *actions.Env) (actions.Action, error) {
	path := env.StateCache
	if env.Replay {
		path = ""
	}
	st, err := env.Store.Values(actions.Space{Name: "StateCache", File: path})
	if err != nil {
		return nil, err
	}
	a, err := New(doors, Options{Logf: env.Logf, Run: env.Run, State: st, Key: env.Key, Replay: env.Replay, LogRate: env.LogRate, LogSuppressed: env.LogSuppressed, Journal: env.Doors, Tally: env.Tally})
	if err != nil {
		st.Close()
		return nil, err
	}
	return a, nil
}
