// Package ratelimit limits log lines on paths an attacker can drive (a
// spoofed flood makes a "Stage 1" line per packet). The caller builds the
// line only after Allow says yes, so a suppressed line costs no allocation,
// and the next allowed line says how many were suppressed.
//
// Time is passed in, so replays of a capture limit the same way every time.
// A Limiter is not safe for concurrent use; each goroutine keeps its own.
package ratelimit

import (
	"sync"
	"sync/atomic"
	"time"
)

// Limiter is a token bucket: Burst lines at once, then Rate lines a second.
type Limiter struct {
	Rate  float64 // lines per second; 0 means unlimited
	Burst float64

	tokens     float64
	last       time.Time
	suppressed uint64
	// total, if set, also counts every suppressed line, never reset: the
	// daemon's metrics read it from another goroutine.
	total *atomic.Uint64
}

// CountInto has every line l suppresses also counted in c (nil: nowhere),
// which several limiters may share. It returns l.
func (l *Limiter) CountInto(c *atomic.Uint64) *Limiter {
	if l != nil {
		l.total = c
	}
	return l
}

// Configured is how every detector reads its LogRate and LogBurst
// options: 0 means the detector's defaults, a negative rate no limit (nil,
// which allows everything), and a burst below 1 one line. c, if set, also
// counts the lines suppressed (CountInto).
func Configured(rate, burst, defRate, defBurst float64, c *atomic.Uint64) *Limiter {
	switch {
	case rate < 0:
		return nil
	case rate == 0:
		return New(defRate, defBurst).CountInto(c)
	default:
		return New(rate, max(burst, 1)).CountInto(c)
	}
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
		if l.total != nil {
			l.total.Add(1)
		}
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

// Log puts a Limiter in front of a log function, for code that logs from
// several goroutines (commands run on workers). Time only moves forward:
// a line logged with an earlier time than one before counts at the later
// one, so a replay's packet time and a worker's wall clock cannot mix up
// the bucket.
type Log struct {
	mu   sync.Mutex
	lim  *Limiter
	last time.Time
	logf func(format string, args ...any)
}

// NewLog returns a Log that lets rate lines a second through logf after a
// burst; rate < 0 lets everything through.
func NewLog(logf func(format string, args ...any), rate, burst float64) *Log {
	l := &Log{logf: logf}
	if rate >= 0 {
		l.lim = New(rate, burst)
	}
	return l
}

// Logf logs the line at now if the limiter allows it, after a line
// counting those it left out before. The line is formatted only then.
func (l *Log) Logf(now time.Time, format string, args ...any) {
	l.mu.Lock()
	if now.After(l.last) {
		l.last = now
	}
	ok, suppressed := l.lim.Allow(l.last)
	var rate float64
	if l.lim != nil {
		rate = l.lim.Rate
	}
	l.mu.Unlock()
	if !ok {
		return
	}
	if suppressed > 0 {
		l.logf("%d similar lines suppressed (more than %v a second)", suppressed, rate)
	}
	l.logf(format, args...)
}

// Seen moves the clock to now without logging.
func (l *Log) Seen(now time.Time) {
	l.mu.Lock()
	if now.After(l.last) {
		l.last = now
	}
	l.mu.Unlock()
}

// Now is the latest time Logf or Seen was given.
func (l *Log) Now() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.last
}

// Suppressed is how many lines were left out since the last one logged.
func (l *Log) Suppressed() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lim.Suppressed()
}

// CountInto has every line l suppresses also counted in c (see
// Limiter.CountInto). It returns l.
func (l *Log) CountInto(c *atomic.Uint64) *Log {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lim.CountInto(c)
	return l
}
