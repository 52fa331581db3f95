package daemon

import (
	"testing"
	"time"
)

// TestLatest: put never blocks and the receiver gets the newest value.
func TestLatest(t *testing.T) {
	m := newLatest[int]()
	for i := range 5 {
		m.put(i)
	}
	if got := <-m; got != 4 {
		t.Errorf("got %d, want the newest, 4", got)
	}
	select {
	case v := <-m:
		t.Errorf("a stale %d was left", v)
	default:
	}
}

// TestReloadsCoalesce: SIGHUPs during a load ask for one more load, not
// one each, and the stale result is dropped.
func TestReloadsCoalesce(t *testing.T) {
	var r reloads
	if !r.request() {
		t.Fatal("the first SIGHUP did not start a load")
	}
	release := make(chan struct{})
	r.start(func() *plan { <-release; return nil })
	for range 3 {
		if r.request() {
			t.Fatal("a SIGHUP during a load started another one")
		}
	}
	close(release)
	if !r.finished(<-r.done) {
		t.Fatal("the load that missed SIGHUPs was not reported stale")
	}
	r.start(func() *plan { return nil })
	if r.finished(<-r.done) {
		t.Fatal("the newest load was reported stale")
	}
}

// TestDrainWaitsForLoad: shutdown waits for a config load in progress, so
// no load outlives Live, but not for ever.
func TestDrainWaitsForLoad(t *testing.T) {
	var r reloads
	release := make(chan struct{})
	r.start(func() *plan { <-release; return nil })
	time.AfterFunc(50*time.Millisecond, func() { close(release) })
	r.drain(5 * time.Second)
	if r.running {
		t.Fatal("drain returned with the load still running")
	}

	var stuck reloads
	stuck.start(func() *plan { select {} })
	start := time.Now()
	stuck.drain(100 * time.Millisecond)
	if waited := time.Since(start); waited > 2*time.Second {
		t.Fatalf("drain waited %v for a stuck load, want about its 100ms limit", waited)
	}
}
