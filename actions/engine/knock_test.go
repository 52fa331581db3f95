package engine

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/doorward/doorward/formats/nftset"
)

// forks is a Starter that records what it started, and whether it was
// called on the goroutine that called Knock (it runs inside Knock: the
// caller sees the line once Knock returns); each command finishes when its
// wait is released.
type forks struct {
	lines   []string
	release chan struct{}
}

func newForks() *forks { return &forks{release: make(chan struct{}, 64)} }

func (f *forks) start(_ context.Context, line string) func() (int, error) {
	f.lines = append(f.lines, line)
	return func() (int, error) {
		<-f.release
		return 0, nil
	}
}

// TestKnockForksOnCaller: while Run serves, Knock decides a knock and
// forks its start command before it returns, on the caller's goroutine;
// the command's end reaches Run, which schedules the stop command as for a
// knock from its queue, and the knock's latency is measured.
func TestKnockForksOnCaller(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		t0 := time.Now()
		var ran []string
		var l logs
		e := New(func(_ context.Context, line string) (int, error) {
			ran = append(ran, line)
			return 0, nil
		}, newFakeStore(), l.logf)
		f := newForks()
		e.SetStarter(f.start)
		e.SetDoors(v4only)
		_, stop := running(e)
		defer stop()
		synctest.Wait() // Run serves
		if !e.Knock(ev("ssh", "10.0.0.1", t0)) {
			t.Fatal("Knock declined while Run serves")
		}
		if want := []string{"open 10.0.0.1"}; !slices.Equal(f.lines, want) {
			t.Fatalf("forked %q by Knock's return, want %q", f.lines, want)
		}
		if want := "openSSH: running command: open 10.0.0.1"; !slices.Contains(l.lines, want) {
			t.Errorf("log %q, want the line %q as knockd logs it", l.lines, want)
		}
		if n := e.Latency().Count; n != 1 {
			t.Errorf("%d latencies recorded, want 1", n)
		}
		f.release <- struct{}{}
		synctest.Wait()
		e.mu.Lock()
		pending := e.Pending()
		e.mu.Unlock()
		if pending != 1 {
			t.Errorf("%d doors pending after the start command, want 1", pending)
		}
		time.Sleep(11 * time.Second) // CmdTimeout 10 s
		synctest.Wait()
		if want := []string{"close 10.0.0.1"}; !slices.Equal(ran, want) {
			t.Errorf("runner ran %q, want %q (the stop command, by Run)", ran, want)
		}
		// A new address forks; its second knock extends its door: nothing
		// forks.
		if !e.Knock(ev("ssh", "10.0.0.2", time.Now())) || !e.Knock(ev("ssh", "10.0.0.2", time.Now())) {
			t.Fatal("Knock declined")
		}
		if len(f.lines) != 2 {
			t.Errorf("forked %q, want one more start command", f.lines)
		}
		f.release <- struct{}{}
	})
}

// TestKnockDeclines: Knock leaves the knock to Run's queue, having changed
// nothing, when it has no Starter, when Run does not serve, for a door
// whose start is a set element, and past KnockPerSecond in one second.
func TestKnockDeclines(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		t0 := time.Now()
		run := func(context.Context, string) (int, error) { return 0, nil }

		plain := New(run, nil, nil)
		plain.SetDoors(v4only)
		_, stop := running(plain)
		synctest.Wait()
		if plain.Knock(ev("ssh", "10.0.0.1", t0)) {
			t.Error("Knock took a knock without a Starter")
		}
		stop()

		e := New(run, nil, nil)
		f := newForks()
		e.SetStarter(f.start)
		doors := map[string]Door{
			"ssh": v4only["ssh"],
			"set": {Name: "set", Set: [2]nftset.Ref{{Family: "inet", Table: "t", Set: "s"}}, CmdTimeout: time.Second},
		}
		e.SetDoors(doors)
		if e.Knock(ev("ssh", "10.0.0.1", t0)) {
			t.Error("Knock took a knock before Run serves")
		}
		_, stop = running(e)
		synctest.Wait()
		if e.Knock(ev("set", "10.0.0.1", t0)) {
			t.Error("Knock took a knock for a set door")
		}
		for i := range KnockPerSecond {
			if !e.Knock(ev("ssh", fmt.Sprintf("10.0.1.%d", i), time.Now())) {
				t.Fatalf("Knock %d of %d in a second declined", i+1, KnockPerSecond)
			}
		}
		if e.Knock(ev("ssh", "10.0.2.1", time.Now())) {
			t.Errorf("Knock took knock %d in one second", KnockPerSecond+1)
		}
		time.Sleep(time.Second)
		if !e.Knock(ev("ssh", "10.0.2.1", time.Now())) {
			t.Error("Knock declined in the next second")
		}
		if len(f.lines) != KnockPerSecond+1 {
			t.Errorf("%d commands forked, want %d", len(f.lines), KnockPerSecond+1)
		}
		for range f.lines {
			f.release <- struct{}{}
		}
		stop()
		if e.Knock(ev("ssh", "10.0.3.1", time.Now())) {
			t.Error("Knock took a knock after Run returned")
		}
	})
}
