package engine

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/doorward/doorward/actions"
)

// failingStore refuses to record any door.
type failingStore struct{ actions.Doors }

func (failingStore) OpenDoor(actions.DoorEntry) (actions.DoorEntry, error) {
	return actions.DoorEntry{}, errors.New("disk full")
}

// TestOutcomes: every event for a known door is reported once, with the
// reason it was refused; events for unknown doors are not.
func TestOutcomes(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC)
	a := netip.MustParseAddr("10.0.0.9")
	v6 := netip.MustParseAddr("fd00::9")
	cool := map[string]Door{"cool": {Name: "cool", Start: [2]string{"open %IP%", ""}, Stop: [2]string{"close %IP%", ""}, CmdTimeout: 10 * time.Second, Cooldown: time.Minute}}
	tests := []struct {
		name   string
		doors  map[string]Door
		store  Store
		events []actions.Event
		want   []string
	}{
		{"opened then extended", doors, nil,
			[]actions.Event{{Door: "ssh", Addr: a, Time: t0}, {Door: "ssh", Addr: a, Time: t0.Add(time.Second)}},
			[]string{"ssh accepted", "ssh accepted"}},
		{"unknown door", doors, nil,
			[]actions.Event{{Door: "nope", Addr: a, Time: t0}},
			nil},
		{"family without a command", doors, nil,
			[]actions.Event{{Door: "nostop", Addr: v6, Time: t0}},
			[]string{"nostop no_command_for_family"}},
		{"ipv4-mapped", doors, nil,
			[]actions.Event{{Door: "ssh", Addr: netip.MustParseAddr("::ffff:10.0.0.9"), Time: t0}},
			[]string{"ssh ipv4_mapped"}},
		{"journal refuses", doors, failingStore{},
			[]actions.Event{{Door: "ssh", Addr: a, Time: t0}},
			[]string{"ssh journal_error"}},
		{"cooldown is per address", cool, nil,
			[]actions.Event{{Door: "cool", Addr: a, Time: t0}, {Door: "cool", Addr: netip.MustParseAddr("10.0.0.10"), Time: t0}},
			[]string{"cool accepted", "cool accepted"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := New(func(context.Context, string) (int, error) { return 0, nil }, tt.store, nil)
			e.SetDoors(tt.doors)
			var got []string
			e.OnKnock(func(door string, o Outcome) { got = append(got, door+" "+o.Reason()) })
			for _, ev := range tt.events {
				e.Open(context.Background(), ev)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("outcomes %q, want %q", got, tt.want)
			}
		})
	}
}

// TestOutcomeCooldown: a repeat knock inside the cooldown after the door
// closed is refused as such.
func TestOutcomeCooldown(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC)
	a := netip.MustParseAddr("10.0.0.9")
	e := New(func(context.Context, string) (int, error) { return 0, nil }, nil, nil)
	e.SetDoors(map[string]Door{"cool": {Name: "cool", Start: [2]string{"open %IP%", ""}, CmdTimeout: time.Second, Cooldown: time.Minute}})
	var got []string
	e.OnKnock(func(door string, o Outcome) { got = append(got, o.Reason()) })
	e.Open(context.Background(), actions.Event{Door: "cool", Addr: a, Time: t0})
	e.Open(context.Background(), actions.Event{Door: "cool", Addr: a, Time: t0.Add(2 * time.Second)})
	if want := []string{"accepted", "cooldown"}; !slices.Equal(got, want) {
		t.Errorf("outcomes %q, want %q", got, want)
	}
}

// TestCountSuppressed: the lines the engine's limit leaves out are
// counted, also after SetLogRate replaced the limit.
func TestCountSuppressed(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC)
	e := New(func(context.Context, string) (int, error) { return 0, nil }, nil, nil)
	e.SetDoors(doors)
	var n atomic.Uint64
	e.CountSuppressed(&n)
	e.SetLogRate(1) // burst 10
	for range 25 {  // each a "no Start_Command_6" line
		e.Open(context.Background(), actions.Event{Door: "nostop", Addr: netip.MustParseAddr("fd00::9"), Time: t0})
	}
	if got := n.Load(); got != 15 {
		t.Errorf("%d lines counted as suppressed, want 15", got)
	}
}
