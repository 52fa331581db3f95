package knockdaemon_test

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/doorward/doorward/actions"
	"github.com/doorward/doorward/actions/redisstore/redistest"
	"github.com/doorward/doorward/detectors/knockdaemon"
)

// TestSharedSpentStoreDown: with the spent store on a redis-server that
// is gone, every knock is refused and counted, and the detector logs no
// line for it: the shared store logs its outage once (docs/fleet.md), a
// knock a second must not add a line each.
func TestSharedSpentStoreDown(t *testing.T) {
	srv := redistest.Start(t)
	var storeLog, detLog strings.Builder
	logTo := func(b *strings.Builder) actions.Logf {
		return func(f string, a ...any) { fmt.Fprintf(b, f+"\n", a...) }
	}
	store := srv.Store(&storeLog)
	var told []string
	doors, err := fromConfig(t, forgeryConf, 0)
	if err != nil {
		t.Fatal(err)
	}
	r := &forgeryRig{now: time.Unix(1_700_000_000, 0), sport: 30000, det: knockdaemon.New(doors, knockdaemon.Options{
		Store: store, Logf: logTo(&detLog),
		Tally: func(door string, o actions.Outcome, reason string) { told = append(told, door+" "+reason) },
	})}
	defer r.det.Close()
	if err := commit(t, r); err != nil {
		t.Fatal(err)
	}
	srv.Kill()
	detLog.Reset() // the door's start-up line
	owner := netip.MustParseAddr("10.1.1.1")
	for i := range 3 {
		r.now = r.now.Add(time.Second) // past the log limiter
		r.send(owner, spentKnock(t, owner, i))
	}
	if len(r.opened) != 0 {
		t.Errorf("knocks opened with the shared store down: %+v", r.opened)
	}
	if want := []string{"ssh spent_store_error", "ssh spent_store_error", "ssh spent_store_error"}; !slices.Equal(told, want) {
		t.Errorf("told %q, want %q", told, want)
	}
	if n := strings.Count(storeLog.String(), "unreachable"); n != 1 {
		t.Errorf("the store logged the outage %d times, want 1:\n%s", n, storeLog.String())
	}
	if detLog.Len() != 0 {
		t.Errorf("the detector logged:\n%s", detLog.String())
	}
}
