package engine

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/doorward/doorward/actions"
)

// recorder is a fake Runner: it records each line with the (fake) time it ran.
type recorder struct {
	mu    sync.Mutex
	t0    time.Time
	lines []string
	fail  map[string]int
	delay time.Duration
}

func (r *recorder) run(ctx context.Context, line string) (int, error) {
	if r.delay > 0 {
		time.Sleep(r.delay)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lines = append(r.lines, fmt.Sprintf("%v %s", time.Since(r.t0).Round(time.Millisecond), line))
	return r.fail[line], nil
}

func (r *recorder) got() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.lines)
}

var doors = map[string]Door{
	"ssh":    {Name: "openSSH", Start: [2]string{"open %IP%", "open6 %IP%"}, Stop: [2]string{"close %IP%", "close %IP%"}, CmdTimeout: 10 * time.Second},
	"nostop": {Name: "nostop", Start: [2]string{"hello %IP%", ""}, CmdTimeout: time.Second},
}

func TestOpenAndAdvance(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC)
	var logs []string
	r := &recorder{t0: t0, fail: map[string]int{"close 10.0.0.9": 3}}
	e := New(func(ctx context.Context, l string) (int, error) { return r.run(ctx, l) }, nil, func(f string, a ...any) { logs = append(logs, fmt.Sprintf(f, a...)) })
	e.SetDoors(doors)
	ctx := context.Background()
	a := netip.MustParseAddr("10.0.0.9")
	v6 := netip.MustParseAddr("fd00::9")
	e.Open(ctx, actions.Event{Door: "ssh", Addr: a, Time: t0})
	e.Open(ctx, actions.Event{Door: "ssh", Addr: v6, Time: t0.Add(time.Second)})
	e.Open(ctx, actions.Event{Door: "nostop", Addr: v6, Time: t0}) // no IPv6 start: nothing runs
	e.Open(ctx, actions.Event{Door: "unknown", Addr: a, Time: t0})
	e.Advance(ctx, t0.Add(10*time.Second))
	// 10.0.0.9's stop command failed and waits for its retry; fd00::9's
	// is not due yet.
	if e.Pending() != 2 {
		t.Fatalf("pending = %d, want 2", e.Pending())
	}
	e.CloseAll(ctx)
	want := []string{
		"openSSH: running command: open 10.0.0.9",
		"openSSH: running command: open6 fd00::9",
		"fd00::9: nostop: no Start_Command_6 for IPv6 knockers, knock ignored",
		"10.0.0.9: openSSH: command timeout",
		"openSSH: running command: close 10.0.0.9",
		"openSSH: command returned non-zero status code (3)",
		"10.0.0.9: openSSH: stop command failed 1 times, door still open; retrying in 1s",
		// Both due at 11 s: the earlier door goes first.
		"openSSH: running command: close 10.0.0.9",
		"openSSH: command returned non-zero status code (3)",
		"10.0.0.9: openSSH: stop command failed at shutdown; the door will be closed at next start",
		"fd00::9: openSSH: command timeout",
		"openSSH: running command: close fd00::9",
	}
	if !slices.Equal(logs, want) {
		t.Errorf("logs:\n%q\nwant:\n%q", logs, want)
	}
}

// TestLiveTimeline checks that the stop command runs Cmd_Timeout after the
// start command finished, on the fake clock.
func TestLiveTimeline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := &recorder{t0: time.Now(), delay: 500 * time.Millisecond}
		e := New(r.run, nil, nil)
		e.SetDoors(doors)
		ctx, cancel := context.WithCancel(context.Background())
		events := make(chan actions.Event)
		done := make(chan struct{})
		go func() { e.Run(ctx, events, nil); close(done) }()
		events <- actions.Event{Door: "ssh", Addr: netip.MustParseAddr("10.0.0.1"), Time: time.Now()}
		time.Sleep(3 * time.Second)
		events <- actions.Event{Door: "ssh", Addr: netip.MustParseAddr("10.0.0.2"), Time: time.Now()}
		time.Sleep(30 * time.Second)
		cancel()
		<-done
		want := []string{"500ms open 10.0.0.1", "3.5s open 10.0.0.2", "11s close 10.0.0.1", "14s close 10.0.0.2"}
		if got := r.got(); !slices.Equal(got, want) {
			t.Errorf("got %q\nwant %q", got, want)
		}
	})
}

// TestLiveShutdownClosesEverything is the promise that SIGTERM leaves no door
// open: stop commands still pending, and those of start commands still
// running when the signal came, all run before Run returns.
func TestLiveShutdownClosesEverything(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := &recorder{t0: time.Now(), delay: time.Second}
		e := New(r.run, nil, nil)
		e.SetDoors(doors)
		ctx, cancel := context.WithCancel(context.Background())
		events := make(chan actions.Event)
		done := make(chan struct{})
		go func() { e.Run(ctx, events, nil); close(done) }()
		events <- actions.Event{Door: "ssh", Addr: netip.MustParseAddr("10.0.0.1"), Time: time.Now()}
		time.Sleep(2 * time.Second)
		events <- actions.Event{Door: "ssh", Addr: netip.MustParseAddr("10.0.0.2"), Time: time.Now()}
		time.Sleep(100 * time.Millisecond) // second start command still running
		cancel()
		<-done
		// The runner takes 1s per command: the second start ends at 3s, then
		// the two stop commands run one after the other.
		got := r.got()
		want := []string{"1s open 10.0.0.1", "3s open 10.0.0.2", "4s close 10.0.0.1", "5s close 10.0.0.2"}
		if !slices.Equal(got, want) {
			t.Errorf("got %q\nwant %q", got, want)
		}
	})
}

func TestReloadKeepsPendingStops(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		t0 := time.Now()
		r := &recorder{t0: t0}
		e := New(r.run, nil, nil)
		e.SetDoors(doors)
		ctx := context.Background()
		e.Open(ctx, actions.Event{Door: "ssh", Addr: netip.MustParseAddr("10.0.0.1"), Time: t0})
		e.SetDoors(map[string]Door{}) // the door was deleted from the config
		e.Advance(ctx, t0.Add(time.Minute))
		if got, want := r.got(), []string{"0s open 10.0.0.1", "0s close 10.0.0.1"}; !slices.Equal(got, want) {
			t.Errorf("stop command of a removed door: got %q, want %q", got, want)
		}
	})
}

// TestLiveLatency: Run measures each start command from its knock's
// capture time to the moment the command is handed to the runner (the
// runner's own time is not in it); stop commands and replay's Open are not
// measured.
func TestLiveLatency(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := &recorder{t0: time.Now(), delay: 500 * time.Millisecond}
		e := New(r.run, nil, nil)
		e.SetDoors(doors)
		// Replay: packet time is no clock; nothing is recorded.
		e.Open(context.Background(), actions.Event{Door: "nostop", Addr: netip.MustParseAddr("10.0.0.9"), Time: time.Now().Add(-time.Hour)})
		ctx, cancel := context.WithCancel(context.Background())
		events := make(chan actions.Event)
		done := make(chan struct{})
		go func() { e.Run(ctx, events, nil); close(done) }()
		events <- actions.Event{Door: "ssh", Addr: netip.MustParseAddr("10.0.0.1"), Time: time.Now().Add(-3 * time.Millisecond)}
		events <- actions.Event{Door: "ssh", Addr: netip.MustParseAddr("10.0.0.2"), Time: time.Now().Add(-7 * time.Millisecond)}
		time.Sleep(30 * time.Second) // both stop commands ran too
		cancel()
		<-done
		if got := len(r.got()); got != 5 {
			t.Fatalf("ran %d commands, want 5 (1 replayed start, 2 starts, 2 stops)", got)
		}
		s := e.Latency()
		if s.Count != 2 || s.Max != 7*time.Millisecond || s.P50 < 3*time.Millisecond || s.P50 > 3*time.Millisecond*9/8 || s.P99 != 7*time.Millisecond {
			t.Errorf("Latency() = %+v, want 2 samples: p50 3ms (within its bucket), p99 and max 7ms", s)
		}
	})
}
