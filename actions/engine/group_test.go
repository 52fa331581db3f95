package engine

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/doorward/doorward/actions"
)

// TestGroupOpening: an opening another host of the door's group published
// (Event.Until) opens the door for what is left of it and closes it at
// Until exactly, whatever the door's own Cmd_Timeout; one already expired
// opens nothing; a second delivery of the same opening changes nothing;
// none of them is told to Opened (it would be published back) or counted
// as a knock. A knock seen here is told, with its due time.
func TestGroupOpening(t *testing.T) {
	t0 := time.Date(2026, 12, 5, 14, 0, 0, 0, time.UTC)
	type told struct {
		door, addr string
		due        time.Duration
	}
	var opened []told
	var tallied []string
	var lines []string
	e := New(func(_ context.Context, l string) (int, error) { lines = append(lines, l); return 0, nil }, nil, nil)
	e.SetDoors(doors) // ssh: Cmd_Timeout 10 s
	e.SetOpened(func(ev actions.Event, due time.Time) {
		opened = append(opened, told{ev.Door, ev.Addr.String(), due.Sub(t0)})
	})
	e.OnKnock(func(door string, o Outcome) { tallied = append(tallied, door+" "+o.Reason()) })
	ctx := context.Background()
	a, b, c := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("10.0.0.3")

	e.Open(ctx, actions.Event{Door: "ssh", Addr: a, Time: t0, Until: t0.Add(3 * time.Second)})                  // published, 3 s left
	e.Open(ctx, actions.Event{Door: "ssh", Addr: a, Time: t0.Add(time.Second), Until: t0.Add(3 * time.Second)}) // delivered again
	e.Open(ctx, actions.Event{Door: "ssh", Addr: b, Time: t0, Until: t0})                                       // expired: nothing
	e.Open(ctx, actions.Event{Door: "ssh", Addr: c, Time: t0.Add(time.Second)})                                 // a knock here
	var closed []string
	for _, at := range []time.Duration{2 * time.Second, 3 * time.Second, 11 * time.Second} {
		before := len(lines)
		e.Advance(ctx, t0.Add(at))
		for _, l := range lines[before:] {
			closed = append(closed, fmt.Sprintf("%v %s", at, l))
		}
	}
	got := fmt.Sprintf("lines %q\nclosed %q\nopened %v\ntallied %q", lines, closed, opened, tallied)
	want := fmt.Sprintf("lines %q\nclosed %q\nopened %v\ntallied %q",
		[]string{"open 10.0.0.1", "open 10.0.0.3", "close 10.0.0.1", "close 10.0.0.3"},
		[]string{"3s close 10.0.0.1", "11s close 10.0.0.3"},
		[]told{{"ssh", "10.0.0.3", 11 * time.Second}},
		[]string{"ssh accepted"})
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	if e.Pending() != 0 {
		t.Errorf("pending = %d, want 0", e.Pending())
	}
}

// TestGroupOpeningExtends: a later opening of the group extends a door
// open here to the published expiry and no further; an earlier one does
// not shorten it.
func TestGroupOpeningExtends(t *testing.T) {
	t0 := time.Date(2026, 12, 5, 14, 0, 0, 0, time.UTC)
	e := New(func(context.Context, string) (int, error) { return 0, nil }, nil, nil)
	e.SetDoors(doors)
	ctx := context.Background()
	a := netip.MustParseAddr("10.0.0.1")
	var dues []time.Duration
	next := func() {
		n, _ := e.Next()
		dues = append(dues, n.Sub(t0))
	}
	e.Open(ctx, actions.Event{Door: "ssh", Addr: a, Time: t0}) // due at 10 s
	next()
	e.Open(ctx, actions.Event{Door: "ssh", Addr: a, Time: t0.Add(time.Second), Until: t0.Add(5 * time.Second)})
	next()
	e.Open(ctx, actions.Event{Door: "ssh", Addr: a, Time: t0.Add(2 * time.Second), Until: t0.Add(17 * time.Second)})
	next()
	if want := []time.Duration{10 * time.Second, 10 * time.Second, 17 * time.Second}; !slices.Equal(dues, want) {
		t.Errorf("due times %v, want %v", dues, want)
	}
}

// TestGroupOpeningSlowStart: live, a door closes its Cmd_Timeout after its
// start command returned; an opening of the group closes at Until even
// when its start command took a while.
func TestGroupOpeningSlowStart(t *testing.T) {
	t0 := time.Date(2026, 12, 5, 14, 0, 0, 0, time.UTC)
	e := New(func(context.Context, string) (int, error) { return 0, nil }, nil, nil)
	e.SetDoors(doors)
	o := e.Begin(actions.Event{Door: "ssh", Addr: netip.MustParseAddr("10.0.0.1"), Time: t0, Until: t0.Add(5 * time.Second)})
	if o == nil {
		t.Fatal("the group's opening did not open the door")
	}
	e.Started(o, t0.Add(2*time.Second), e.RunStart(context.Background(), o, t0))
	if due, _ := e.Next(); !due.Equal(t0.Add(5 * time.Second)) {
		t.Errorf("due at %v, want at the published expiry %v", due.Sub(t0), 5*time.Second)
	}
}
