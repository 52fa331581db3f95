package engine

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/doorward/doorward/actions"
	"github.com/doorward/doorward/actions/command"
	"github.com/doorward/doorward/actions/journal"
)

// v4only is the README's example door: IPv4 commands only.
var v4only = map[string]Door{
	"ssh":  {Name: "openSSH", Start: [2]string{"open %IP%", ""}, Stop: [2]string{"close %IP%", ""}, CmdTimeout: 10 * time.Second},
	"both": {Name: "both", Start: [2]string{"open %IP%", "open6 %IP%"}, Stop: [2]string{"close %IP%", "close6 %IP%"}, CmdTimeout: 10 * time.Second},
}

// running runs e as the live daemon does; stop cancels it and waits for
// Run to return.
func running(e *Engine) (events chan<- actions.Event, stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan actions.Event)
	done := make(chan struct{})
	go func() { e.Run(ctx, ch, nil); close(done) }()
	return ch, func() { cancel(); <-done }
}

// logs keeps the lines logged; commands log from their own goroutines.
// Read lines once Run has returned or after synctest.Wait.
type logs struct {
	mu    sync.Mutex
	lines []string
}

func (l *logs) logf(f string, a ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintf(f, a...))
}

// TestFamilyWithoutCommands: an IPv6 knock on a door without IPv6
// commands, and an IPv4-mapped IPv6 source on any door, run nothing and
// leave nothing in the journal or in memory.
func TestFamilyWithoutCommands(t *testing.T) {
	var ran []string
	st := newFakeStore()
	var l logs
	e := New(func(_ context.Context, line string) (int, error) { ran = append(ran, line); return 0, nil }, st, l.logf)
	e.SetDoors(v4only)
	t0 := time.Unix(1000, 0)
	ctx := context.Background()
	e.Open(ctx, ev("ssh", "fd00::9", t0))
	e.Open(ctx, ev("ssh", "::ffff:10.0.0.9", t0))
	e.Open(ctx, ev("both", "::ffff:10.0.0.9", t0))
	e.Advance(ctx, t0.Add(time.Hour))
	if len(ran) != 0 || len(st.open) != 0 || e.Pending() != 0 {
		t.Errorf("ran %q, journal %v, pending %d; want nothing", ran, st.open, e.Pending())
	}
	want := []string{
		"fd00::9: openSSH: no Start_Command_6 for IPv6 knockers, knock ignored",
		"::ffff:10.0.0.9: openSSH: IPv4-mapped IPv6 address, knock ignored",
		"::ffff:10.0.0.9: both: IPv4-mapped IPv6 address, knock ignored",
	}
	if !slices.Equal(l.lines, want) {
		t.Errorf("logs %q, want %q", l.lines, want)
	}
}

// TestStartFailedUndoneOnce: a failed start command gets its stop command
// at once, a single time even if that fails too, and the door is gone.
func TestStartFailedUndoneOnce(t *testing.T) {
	for _, live := range []bool{false, true} {
		t.Run(fmt.Sprint("live=", live), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				t0 := time.Now()
				var ran []string
				st := newFakeStore()
				var l logs
				e := New(func(_ context.Context, line string) (int, error) {
					ran = append(ran, fmt.Sprintf("%v %s", time.Since(t0), line))
					return 2, nil // everything fails
				}, st, l.logf)
				e.SetDoors(v4only)
				if live {
					events, stop := running(e)
					events <- ev("ssh", "10.0.0.1", t0)
					time.Sleep(time.Hour)
					stop()
				} else {
					e.Open(context.Background(), ev("ssh", "10.0.0.1", t0))
					e.Advance(context.Background(), t0.Add(time.Hour))
					e.CloseAll(context.Background())
				}
				if want := []string{"0s open 10.0.0.1", "0s close 10.0.0.1"}; !slices.Equal(ran, want) {
					t.Errorf("ran %q, want %q", ran, want)
				}
				if len(st.open) != 0 || e.Pending() != 0 {
					t.Errorf("journal %v, pending %d after the undo", st.open, e.Pending())
				}
				if !slices.Contains(l.lines, "10.0.0.1: openSSH: start command failed, running the stop command once to undo it") {
					t.Errorf("undo not logged: %q", l.lines)
				}
			})
		})
	}
}

// TestStopRetriesBounded: a stop command that never succeeds is tried
// journal.MaxAttempts times, counting earlier runs' attempts, then the
// door leaves memory and the journal with a line naming the command.
func TestStopRetriesBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		t0 := time.Now()
		stops := 0
		st := newFakeStore()
		var l logs
		e := New(func(_ context.Context, line string) (int, error) {
			if strings.HasPrefix(line, "close") {
				stops++
				return 1, nil
			}
			return 0, nil
		}, st, l.logf)
		e.SetDoors(v4only)
		events, stop := running(e)
		events <- ev("ssh", "10.0.0.1", t0)
		time.Sleep(24 * time.Hour)
		synctest.Wait() // what Run did is seen here (go test -race)
		if stops != journal.MaxAttempts || len(st.open) != 0 || e.Pending() != 0 {
			t.Errorf("%d stop attempts, journal %v, pending %d; want %d, empty, 0", stops, st.open, e.Pending(), journal.MaxAttempts)
		}
		last := l.lines[len(l.lines)-1]
		if want := fmt.Sprintf("10.0.0.1: openSSH: stop command failed %d times, giving up; the door may still be open, run it by hand: close 10.0.0.1", journal.MaxAttempts); last != want {
			t.Errorf("last line %q, want %q", last, want)
		}
		stop()

		// A journal entry with attempts left over from earlier runs.
		stops = 0
		e2 := New(e.run, st, nil)
		e2.Recover(context.Background(), []journal.Entry{{ID: 9, Door: "ssh", Name: "openSSH", Addr: "10.0.0.2", Stop: "close 10.0.0.2", Failures: journal.MaxAttempts - 1}}, t0)
		if stops != 1 || e2.Pending() != 0 || !slices.Contains(st.calls, "close 9") {
			t.Errorf("recovered entry at its last attempt: %d runs, pending %d, journal %q", stops, e2.Pending(), st.calls)
		}
	})
}

// TestRecoverOutOfTime: a SIGTERM during recovery whose budget is spent
// leaves the remaining entries queued, unrun and without a failure
// counted against them.
func TestRecoverOutOfTime(t *testing.T) {
	ran := 0
	st := newFakeStore()
	e := New(func(context.Context, string) (int, error) { ran++; return 0, nil }, st, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	now := time.Unix(5000, 0)
	e.Recover(ctx, []journal.Entry{{ID: 7, Door: "ssh", Name: "openSSH", Addr: "10.0.0.5", Stop: "close 10.0.0.5"}}, now)
	if next, ok := e.Next(); ran != 0 || len(st.calls) != 0 || e.Pending() != 1 || !ok || !next.Equal(now) {
		t.Errorf("ran %d, journal %q, pending %d, next %v %v; want the entry queued as due", ran, st.calls, e.Pending(), next, ok)
	}
	e.CloseAll(context.Background())
	if ran != 1 || !slices.Equal(st.calls, []string{"close 7"}) {
		t.Errorf("CloseAll: ran %d, journal %q", ran, st.calls)
	}
}

// TestOpenPerDoorBound: spoofed sources completing a sequence cannot open
// a door for more than MaxOpenPerDoor addresses at once.
func TestOpenPerDoorBound(t *testing.T) {
	starts := 0
	st := newFakeStore()
	e := New(func(_ context.Context, line string) (int, error) {
		if strings.HasPrefix(line, "open") {
			starts++
		}
		return 0, nil
	}, st, nil)
	e.SetDoors(v4only)
	t0 := time.Unix(1000, 0)
	for i := range MaxOpenPerDoor + 100 {
		e.Open(context.Background(), actions.Event{Door: "ssh", Addr: netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}), Time: t0})
	}
	if starts != MaxOpenPerDoor || len(st.open) != MaxOpenPerDoor {
		t.Errorf("%d start commands, %d journal entries; want %d", starts, len(st.open), MaxOpenPerDoor)
	}
	e.Open(context.Background(), ev("both", "10.9.9.9", t0)) // another door is not affected
	if starts != MaxOpenPerDoor+1 {
		t.Errorf("another door refused")
	}
	e.Advance(context.Background(), t0.Add(time.Minute)) // all closed: room again
	e.Open(context.Background(), ev("ssh", "10.9.9.9", t0.Add(time.Minute)))
	if starts != MaxOpenPerDoor+2 {
		t.Errorf("door still full after its entries closed")
	}
}

// TestLogFlood: 10,000 spoofed sources completing a sequence within a
// second cause about DefaultLogBurst lines, not 4 per source, and the
// lines left out are counted.
func TestLogFlood(t *testing.T) {
	flood := func(rate float64) (*Engine, []string) {
		var l logs
		e := New(func(context.Context, string) (int, error) { return 0, nil }, nil, l.logf)
		e.SetLogRate(rate)
		e.SetDoors(map[string]Door{"ssh": {Name: "openSSH", Start: [2]string{"open %IP%", ""}, Stop: [2]string{"close %IP%", ""}, CmdTimeout: time.Second}})
		t0 := time.Unix(1000, 0)
		const n = 10000
		for i := range n {
			at := t0.Add(time.Duration(i) * time.Second / n)
			e.Open(context.Background(), actions.Event{Door: "ssh", Addr: netip.AddrFrom4([4]byte{10, 2, byte(i >> 8), byte(i)}), Time: at})
			e.Advance(context.Background(), at)
		}
		e.Advance(context.Background(), t0.Add(3*time.Second))
		return e, l.lines
	}
	_, all := flood(-1)
	e, lines := flood(0)
	if len(all) < 10000 {
		t.Fatalf("unlimited: only %d lines, the flood is not one", len(all))
	}
	// 3 s of traffic: the burst, 3 s at the rate, and before each line
	// let through after some were left out, the count of those.
	if max := DefaultLogBurst + 2*3*DefaultLogRate; len(lines) > max {
		t.Fatalf("%d log lines (%d unlimited), want at most %d", len(lines), len(all), max)
	}
	// Nothing is lost without being counted.
	logged, suppressed := 0, uint64(0)
	for _, line := range lines {
		var k uint64
		if _, err := fmt.Sscanf(line, "%d similar lines suppressed", &k); err == nil {
			suppressed += k
			continue
		}
		logged++
	}
	if total := uint64(logged) + suppressed + e.log.Suppressed(); total != uint64(len(all)) || suppressed == 0 {
		t.Errorf("%d lines logged + %d counted as suppressed + %d pending = %d, want %d", logged, suppressed, e.log.Suppressed(), total, len(all))
	}
}

// TestShutdownBudget: a stop command that hangs cannot hold up the
// shutdown past ShutdownBudget; it is killed (its context is done) and
// stays in the journal, and the stop commands after it are not started.
func TestShutdownBudget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		t0 := time.Now()
		st := newFakeStore()
		var l logs
		e := New(func(ctx context.Context, line string) (int, error) {
			if strings.HasPrefix(line, "close") {
				<-ctx.Done() // hangs until killed
				return -1, ctx.Err()
			}
			return 0, nil
		}, st, l.logf)
		e.SetDoors(v4only)
		events, stop := running(e)
		events <- ev("ssh", "10.0.0.1", t0)
		events <- ev("ssh", "10.0.0.2", t0)
		time.Sleep(time.Second)
		stopped := time.Now()
		stop()
		if took := time.Since(stopped); took != command.ShutdownBudget {
			t.Errorf("shutdown took %v, want the budget %v", took, command.ShutdownBudget)
		}
		if len(st.open) != 2 {
			t.Errorf("journal %v, want both doors kept for the next start", st.open)
		}
		if last := l.lines[len(l.lines)-1]; last != "shutdown: out of time, 1 stop commands left in the journal for the next start" {
			t.Errorf("last line %q", last)
		}
	})
}
