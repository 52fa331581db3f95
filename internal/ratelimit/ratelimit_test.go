package ratelimit

import (
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"
)

func TestLimiter(t *testing.T) {
	t0 := time.Unix(1000, 0)
	l := New(2, 3)
	type step struct {
		at         time.Duration
		ok         bool
		suppressed uint64
	}
	for i, s := range []step{
		{0, true, 0}, {0, true, 0}, {0, true, 0}, // the burst
		{0, false, 0}, {100 * time.Millisecond, false, 0}, // empty
		{500 * time.Millisecond, true, 2}, // 1 token back after 0.5 s at 2/s
		{500 * time.Millisecond, false, 0},
		{10 * time.Second, true, 1}, // refilled to the burst, not beyond
		{10 * time.Second, true, 0}, {10 * time.Second, true, 0}, {10 * time.Second, false, 0},
		{9 * time.Second, false, 0}, // time going backwards earns nothing
	} {
		ok, sup := l.Allow(t0.Add(s.at))
		if ok != s.ok || sup != s.suppressed {
			t.Errorf("step %d at %v: Allow = %v, %d; want %v, %d", i, s.at, ok, sup, s.ok, s.suppressed)
		}
	}
}

func TestUnlimited(t *testing.T) {
	var l *Limiter
	if ok, _ := l.Allow(time.Now()); !ok {
		t.Error("nil limiter refused")
	}
	if ok, _ := New(0, 0).Allow(time.Now()); !ok {
		t.Error("rate 0 refused")
	}
}

func TestAllowDoesNotAllocate(t *testing.T) {
	l := New(10, 10)
	now := time.Unix(0, 0)
	if n := testing.AllocsPerRun(1000, func() { now = now.Add(time.Millisecond); l.Allow(now) }); n != 0 {
		t.Errorf("Allow allocates %v times", n)
	}
}

// TestLog: lines past the burst are left out and counted on the next one
// let through; time never runs backwards; a negative rate is unlimited.
func TestLog(t *testing.T) {
	var got []string
	logf := func(f string, a ...any) { got = append(got, fmt.Sprintf(f, a...)) }
	l := NewLog(logf, 1, 2)
	t0 := time.Unix(100, 0)
	for i := range 5 {
		l.Logf(t0, "line %d", i)
	}
	l.Logf(t0.Add(-time.Hour), "from the past") // counts at t0: no token
	l.Logf(t0.Add(time.Second), "later")
	want := []string{"line 0", "line 1", "4 similar lines suppressed (more than 1 a second)", "later"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	if !l.Now().Equal(t0.Add(time.Second)) || l.Suppressed() != 0 {
		t.Errorf("Now %v, Suppressed %d", l.Now(), l.Suppressed())
	}
	got = nil
	u := NewLog(logf, -1, 0)
	for range 1000 {
		u.Logf(t0, "x")
	}
	if len(got) != 1000 {
		t.Errorf("unlimited: %d lines", len(got))
	}
}

// TestCountInto: every suppressed line is counted in the shared counter,
// which, unlike Suppressed, is never reset by an allowed line.
func TestCountInto(t *testing.T) {
	var total atomic.Uint64
	t0 := time.Unix(0, 0)
	a := New(1, 2).CountInto(&total)
	log := NewLog(func(string, ...any) {}, 1, 1).CountInto(&total)
	for i := range 5 {
		a.Allow(t0) // 2 allowed, 3 suppressed
		log.Logf(t0, "line %d", i)
	}
	a.Allow(t0.Add(time.Second)) // allowed: resets Suppressed, not total
	var unlimited *Limiter
	unlimited.CountInto(&total) // a nil limiter (no limit) is fine
	if got, want := total.Load(), uint64(3+4); got != want || a.Suppressed() != 0 {
		t.Errorf("total %d, Suppressed %d; want %d, 0", got, a.Suppressed(), want)
	}
}

// TestConfigured: the options every detector reads, as Configured reads them.
func TestConfigured(t *testing.T) {
	for _, tc := range []struct {
		rate, burst         float64
		wantNil             bool
		wantRate, wantBurst float64
	}{
		{0, 0, false, 20, 100}, // the defaults
		{0, 7, false, 20, 100}, // a burst alone does not replace them
		{-1, 5, true, 0, 0},    // no limit
		{5, 0, false, 5, 1},    // at least one line
		{5, 30, false, 5, 30},
	} {
		l := Configured(tc.rate, tc.burst, 20, 100, nil)
		if (l == nil) != tc.wantNil || (l != nil && (l.Rate != tc.wantRate || l.Burst != tc.wantBurst)) {
			t.Errorf("Configured(%v, %v) = %+v", tc.rate, tc.burst, l)
		}
	}
}
