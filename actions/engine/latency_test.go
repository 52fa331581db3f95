package engine

import (
	"context"
	"testing"
	"time"

	"github.com/doorward/doorward/internal/latency"
)

// TestOpenLatency: Open measures knock-to-command latency, into the
// shared histogram, only after SetLatency (a live Action such as
// fwknop's); replay's Open, whose knock times come from a capture,
// records nothing. Run (the knockd doors) measures into the shared
// histogram too.
func TestOpenLatency(t *testing.T) {
	run := func(context.Context, string) (int, error) { return 0, nil }
	knocked := time.Now().Add(-5 * time.Millisecond)

	replay := New(run, nil, nil)
	replay.SetDoors(v4only)
	replay.Open(context.Background(), ev("ssh", "10.0.0.1", time.Unix(1000, 0)))
	if n := replay.Latency().Count; n != 0 {
		t.Errorf("replay's Open recorded %d latencies, want 0", n)
	}

	var shared latency.Histogram
	live := New(run, nil, nil)
	live.SetLatency(&shared)
	live.SetDoors(v4only)
	live.Open(context.Background(), ev("ssh", "10.0.0.1", knocked))
	if s := shared.Summary(); s.Count != 1 || s.Max < 5*time.Millisecond || s.Max > time.Minute {
		t.Errorf("live Open: %+v in the shared histogram, want one latency of at least 5ms", s)
	}

	knockd := New(run, nil, nil)
	knockd.SetLatency(&shared)
	knockd.SetDoors(v4only)
	events, stop := running(knockd)
	events <- ev("ssh", "10.0.0.2", knocked)
	for deadline := time.Now().Add(5 * time.Second); shared.Summary().Count < 2; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("Run's start command was not measured into the shared histogram in 5 s")
		}
	}
	stop()
	if s := knockd.Latency(); s.Count != 0 {
		t.Errorf("Latency() of an engine that records elsewhere: %+v, want nothing", s)
	}
}
