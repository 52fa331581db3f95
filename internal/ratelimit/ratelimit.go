// Package ratelimit limits log lines on paths an attacker can drive (a
// spoofed flood makes a "Stage 1" line per packet). The caller builds the
// line only after Allow says yes, so a suppressed line costs no allocation,
// and the next allowed line says how many were suppressed.
//
// Time is passed in, so replays of a capture limit the same way every time.
// A Limiter is not safe for concurrent use; each goroutine keeps its own.
package ratelimit

import "time"

// Limiter is a token bucket: Burst lines at once, then Rate lines a second.
type Limiter struct {
	Rate  float64 // lines per second; 0 means unlimited
	Burst float64

	tokens     float64
	last       time.Time
	suppressed uint64
}

// New returns a limiter allowing rate lines a second after a burst.
func New(rate, burst float64) *Limiter {
	return &Limiter{Rate: rate, Burst: burst, tokens: burst}
}

// Allow reports whether a line may be logged at now. When it may, it also
// returns how many lines were suppressed since the last allowed one (and
// resets that count), so the caller can say so.
func (l *Limiter) Allow(now time.Time) (ok bool, suppressed uint64) {
	if l == nil || l.Rate <= 0 {
		return true, 0
	}
	if !l.last.IsZero() {
		if dt := now.Sub(l.last).Seconds(); dt > 0 {
			l.tokens = min(l.Burst, l.tokens+dt*l.Rate)
		}
	}
	if now.After(l.last) {
		l.last = now
	}
	if l.tokens < 1 {
		l.suppressed++
		return false, 0
	}
	l.tokens--
	s := l.suppressed
	l.suppressed = 0
	return true, s
}

// Suppressed is how many lines were refused since the last allowed one.
func (l *Limiter) Suppressed() uint64 {
	if l == nil {
		return 0
	}
	return l.suppressed
}
