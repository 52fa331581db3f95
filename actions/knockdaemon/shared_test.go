package knockdaemon

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/doorward/doorward/actions"
	"github.com/doorward/doorward/actions/redisstore/redistest"
)

// TestSharedStateDown: with the state on a redis-server that is gone,
// every knock is refused (its commands do not run: its conditions read
// nothing) and counted, without a line each: the shared store logs its
// outage once (docs/fleet.md).
func TestSharedStateDown(t *testing.T) {
	srv := redistest.Start(t)
	var storeLog strings.Builder
	store := srv.Store(&storeLog)
	st, err := store.Values(actions.Space{Name: "StateCache"})
	if err != nil {
		t.Fatal(err)
	}
	r := &recorder{t0: time.Now()}
	var lines []string
	ts := &tallies{}
	a, err := New(parseConf(t, openClose), Options{Run: r.run, State: st, Replay: true, Tally: ts.tally,
		Logf: func(f string, args ...any) { lines = append(lines, fmt.Sprintf(f, args...)) }})
	if err != nil {
		t.Fatal(err)
	}
	srv.Kill()
	lines = nil // the config's own lines
	ctx := context.Background()
	for i := range 3 {
		a.Handle(ctx, knockEv("10.1.1.1", i+1, r.t0.Add(time.Duration(i)*time.Second)))
	}
	if got := r.got(); len(got) != 0 || a.Pending() != 0 {
		t.Errorf("commands ran: %q, pending %d", got, a.Pending())
	}
	if n := ts.count("ssh 1 " + ReasonStateError); n != 3 {
		t.Errorf("%d knocks refused with %s, want 3: %q", n, ReasonStateError, ts.told)
	}
	if len(lines) != 0 {
		t.Errorf("logged per knock:\n%s", strings.Join(lines, "\n"))
	}
	if n := strings.Count(storeLog.String(), "unreachable"); n != 1 {
		t.Errorf("the store logged the outage %d times, want 1:\n%s", n, storeLog.String())
	}
	a.Close(ctx)
}
