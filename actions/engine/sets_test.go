package engine

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/doorward/doorward/actions"
	"github.com/doorward/doorward/actions/journal"
	"github.com/doorward/doorward/formats/nftset"
)

// fakeSets records each set operation; an address in gone is not in the
// set (it expired), which Delete must take as success, as the backend does.
type fakeSets struct {
	ops  []string
	fail error
}

func (f *fakeSets) Add(r nftset.Ref, a netip.Addr, timeout time.Duration) error {
	f.ops = append(f.ops, fmt.Sprintf("add %s %s %v", r, a, timeout))
	return f.fail
}

func (f *fakeSets) Delete(r nftset.Ref, a netip.Addr) error {
	f.ops = append(f.ops, fmt.Sprintf("delete %s %s", r, a))
	return f.fail
}

var (
	set4 = nftset.Ref{Family: "inet", Table: "filter", Set: "doorward4"}
	set6 = nftset.Ref{Family: "inet", Table: "filter", Set: "doorward6"}
)

// TestSets: a door with sets and no commands opens by adding the knocker
// with Cmd_Timeout as the element's timeout, refreshes it on an
// extension, deletes it when due, and journals the set so a restart
// deletes it too.
func TestSets(t *testing.T) {
	t0 := time.Date(2026, 12, 5, 8, 0, 0, 0, time.UTC)
	var logs []string
	jr, left, err := journal.Open(t.TempDir())
	if err != nil || len(left) != 0 {
		t.Fatal(err, left)
	}
	defer jr.Shutdown()
	ran := 0
	e := New(func(context.Context, string) (int, error) { ran++; return 0, nil }, jr, func(f string, a ...any) { logs = append(logs, fmt.Sprintf(f, a...)) })
	sets := &fakeSets{}
	e.SetSets(sets)
	e.SetDoors(map[string]Door{
		"both":   {Name: "both", Set: [2]nftset.Ref{set4, set6}, CmdTimeout: 10 * time.Second},
		"v4only": {Name: "v4only", Set: [2]nftset.Ref{set4}, CmdTimeout: 5 * time.Second},
	})
	ctx := context.Background()
	a4, a6 := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8::1")
	e.Open(ctx, actions.Event{Door: "both", Addr: a4, Time: t0})
	e.Open(ctx, actions.Event{Door: "both", Addr: a6, Time: t0})
	e.Open(ctx, actions.Event{Door: "v4only", Addr: a6, Time: t0})
	if got := jr.OpenDoors(); len(got) != 2 || got[0].Set != set4.String() || got[1].Set != set6.String() || got[0].Stop != "" {
		t.Fatalf("journal: %+v, want the two doors with their sets", got)
	}
	e.Open(ctx, actions.Event{Door: "both", Addr: a4, Time: t0.Add(4 * time.Second)}) // extension
	e.Advance(ctx, t0.Add(10*time.Second))                                            // a6 due, a4 not
	if e.Pending() != 1 {
		t.Fatalf("pending = %d, want 1", e.Pending())
	}
	e.Advance(ctx, t0.Add(14*time.Second))
	want := []string{
		"add inet filter doorward4 192.0.2.1 10s",
		"add inet filter doorward6 2001:db8::1 10s",
		"add inet filter doorward4 192.0.2.1 10s", // the extension restarts the timeout
		"delete inet filter doorward6 2001:db8::1",
		"delete inet filter doorward4 192.0.2.1",
	}
	if !slices.Equal(sets.ops, want) {
		t.Errorf("set operations:\n got %q\nwant %q", sets.ops, want)
	}
	if ran != 0 {
		t.Errorf("%d commands ran for doors without commands", ran)
	}
	if got := jr.OpenDoors(); len(got) != 0 {
		t.Errorf("journal after closing: %+v", got)
	}
	wantLogs := []string{
		"both: adding 192.0.2.1 to nftables set inet filter doorward4 for 10s",
		"both: adding 2001:db8::1 to nftables set inet filter doorward6 for 10s",
		"2001:db8::1: v4only: no Nft_Set_6 for IPv6 knockers, knock ignored",
		"both: refreshing 192.0.2.1 in nftables set inet filter doorward4 for 10s",
		"192.0.2.1: both: door already open, keeping it open 10s longer",
		"2001:db8::1: both: command timeout",
		"both: deleting 2001:db8::1 from nftables set inet filter doorward6",
		"192.0.2.1: both: command timeout",
		"both: deleting 192.0.2.1 from nftables set inet filter doorward4",
	}
	if !slices.Equal(logs, wantLogs) {
		t.Errorf("log:\n got %q\nwant %q", logs, wantLogs)
	}
}

// TestSetsRecover: a door journaled by a run that was killed is deleted
// from its set at the next start, and its stop command runs as well.
func TestSetsRecover(t *testing.T) {
	t0 := time.Date(2026, 12, 5, 8, 0, 0, 0, time.UTC)
	var lines []string
	e := New(func(_ context.Context, l string) (int, error) { lines = append(lines, l); return 0, nil }, nil, nil)
	sets := &fakeSets{}
	e.SetSets(sets)
	e.Recover(context.Background(), []journal.Entry{
		{ID: 1, Door: "both", Name: "both", Addr: "192.0.2.1", Set: "inet filter doorward4", Due: t0},
		{ID: 2, Door: "ssh", Name: "ssh", Addr: "2001:db8::2", Stop: "logger closed", Set: "ip6 fw ssh6 22", Due: t0},
	}, t0)
	want := []string{"delete inet filter doorward4 192.0.2.1", "delete ip6 fw ssh6 22 2001:db8::2"}
	if !slices.Equal(sets.ops, want) || !slices.Equal(lines, []string{"logger closed"}) {
		t.Errorf("recover: sets %q, commands %q; want %q, [logger closed]", sets.ops, lines, want)
	}
	if e.Pending() != 0 {
		t.Errorf("pending = %d after a clean recovery", e.Pending())
	}
}

// TestSetsFail: a set the kernel refuses is a failed start: the door is
// undone at once (delete, once) and not kept open.
func TestSetsFail(t *testing.T) {
	t0 := time.Date(2026, 12, 5, 8, 0, 0, 0, time.UTC)
	e := New(func(context.Context, string) (int, error) { return 0, nil }, nil, nil)
	sets := &fakeSets{fail: errors.New("no such table")}
	e.SetSets(sets)
	e.SetDoors(map[string]Door{"d": {Name: "d", Set: [2]nftset.Ref{set4}, CmdTimeout: 10 * time.Second}})
	e.Open(context.Background(), actions.Event{Door: "d", Addr: netip.MustParseAddr("192.0.2.1"), Time: t0})
	want := []string{"add inet filter doorward4 192.0.2.1 10s", "delete inet filter doorward4 192.0.2.1"}
	if !slices.Equal(sets.ops, want) || e.Pending() != 0 {
		t.Errorf("ops %q, pending %d; want %q, 0", sets.ops, e.Pending(), want)
	}
}
