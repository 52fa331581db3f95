package engine

import (
	"context"
	"time"

	"github.com/doorward/doorward/actions"
	"github.com/doorward/doorward/actions/command"
	"github.com/doorward/doorward/internal/ratelimit"
)

// MaxInFlight bounds the commands running at once. Sequence knocks are not
// authenticated, so anyone who learns a sequence can complete it from many
// spoofed sources; past this bound events are dropped and counted rather
// than each spawning a shell.
const MaxInFlight = 256

// KnockPerSecond bounds the start commands Knock forks on its caller's
// thread in a second. That thread is the packet path's: a fork costs it
// 0.3–1 ms here, a door with a stop command also a journal fsync (0.2–2 ms
// under a flood), and anyone who learns a sequence can complete it from
// many spoofed sources. Past the bound Knock declines and the knock takes
// Run's queue, as every knock did before Knock.
const KnockPerSecond = 16

type result struct {
	o    *door
	stop bool // a stop command finished (else a start command)
	ok   bool
	at   time.Time
}

// serving is Run's state, shared with Knock under the engine's lock.
type serving struct {
	bg       context.Context // commands run under it (command.Grace)
	results  chan result
	inflight int
	dropped  int
	// forks is Knock's budget: a token bucket of KnockPerSecond.
	forks *ratelimit.Limiter
}

// SetStarter lets Knock start commands on its caller's thread with start,
// which must fork as the engine's Runner would run. Call it before Run.
func (e *Engine) SetStarter(start actions.Starter) { e.start = start }

// Knock is Run's events channel without the hand-off: called on the
// goroutine that detected ev, while Run serves, it decides ev and forks the
// start command right there, so no other thread has to be woken before
// the command starts (on a loaded machine that wake-up was most of a
// knock's latency: docs/benchmark.md). It reports false, having done
// nothing, when ev must go through Run's queue instead: no Starter, Run
// not serving or busy, KnockPerSecond spent, or a door whose start is a
// set element (a netlink round trip stays off the packet path). Past
// MaxInFlight it drops and counts the knock as Run does (admit). Safe to
// call from several goroutines.
func (e *Engine) Knock(ev actions.Event) bool {
	if e.start == nil {
		return false
	}
	now := time.Now()
	// The packet path never waits for the engine: while Run holds the
	// lock (a journal fsync for a closing door, say), the knock is queued.
	if !e.mu.TryLock() {
		return false
	}
	l := e.live
	d, known := e.doors[ev.Door]
	if l == nil || !known || !d.Set[0].IsZero() || !d.Set[1].IsZero() {
		e.mu.Unlock()
		return false
	}
	if ok, _ := l.forks.Allow(now); !ok {
		e.mu.Unlock()
		return false
	}
	o := e.admit(l, ev)
	e.mu.Unlock()
	if o != nil {
		e.fork(l, o)
	}
	return true
}

// admit decides ev (Begin) and counts its command in flight; the caller
// holds e.mu. nil: nothing to run.
func (e *Engine) admit(l *serving, ev actions.Event) *door {
	if l.inflight >= MaxInFlight {
		if _, known := e.doors[ev.Door]; known {
			e.tally(ev.Door, RefusedOverload)
		}
		l.dropped++
		if l.dropped&(l.dropped-1) == 0 { // log at 1, 2, 4, 8, …
			e.note(ev.Time, "%s: too many commands running, dropped %d knocks", ev.Door, l.dropped)
		}
		return nil
	}
	o := e.Begin(ev)
	if o == nil {
		return nil
	}
	o.knocked = ev.Time
	l.inflight++
	return o
}

// fork starts o's start command on the caller's goroutine (Knock) and
// waits for it on another, which reports to Run. o has a start command
// and no set: Begin returns no door without one or the other, and Knock
// takes no set door.
func (e *Engine) fork(l *serving, o *door) {
	t := time.Now()
	e.note(t, "%s: running command: %s", o.e.Name, o.start)
	e.record(t.Sub(o.knocked))
	wait := e.start(l.bg, o.start)
	go func() {
		status, err := wait()
		l.results <- result{o: o, ok: e.judge(t, o.e.Name, status, err), at: time.Now()}
	}()
}

// launch runs o's start command on another goroutine, which reports to Run.
func (e *Engine) launch(l *serving, o *door) {
	go func() {
		ok := e.RunStart(l.bg, o, time.Now())
		l.results <- result{o: o, ok: ok, at: time.Now()}
	}()
}

// Run drives e for a live daemon until ctx is done or events is closed, then
// waits for running commands and runs every pending stop command before
// returning, all within command.ShutdownBudget. Commands run on their own
// goroutines so a slow iptables call never delays another door; door state
// is touched here and by Knock, under e.mu. doors delivers new door tables
// on reload.
func (e *Engine) Run(ctx context.Context, events <-chan actions.Event, doors <-chan map[string]Door) {
	// Commands must complete even while we shut down (a half-run stop
	// command is exactly the leaked rule we exist to prevent), but within
	// the budget.
	bg, release := command.Grace(ctx, command.ShutdownBudget)
	defer release()
	l := &serving{bg: bg, results: make(chan result), forks: ratelimit.New(KnockPerSecond, KnockPerSecond)}
	e.mu.Lock()
	e.live = l
	e.mu.Unlock()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()

	rearm := func() {
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		if next, ok := e.Next(); ok {
			timer.Reset(time.Until(next))
		}
	}
	handle := func(r result) {
		l.inflight--
		if r.stop {
			e.Stopped(r.o, r.ok, r.at)
		} else {
			e.Started(r.o, r.at, r.ok)
		}
	}

loop:
	for {
		e.mu.Lock()
		rearm()
		e.mu.Unlock()
		select {
		case ev, ok := <-events:
			if !ok {
				break loop
			}
			e.mu.Lock()
			if o := e.admit(l, ev); o != nil {
				e.launch(l, o)
			}
			e.mu.Unlock()
		case r := <-l.results:
			e.mu.Lock()
			handle(r)
			e.mu.Unlock()
		case d := <-doors:
			e.mu.Lock()
			e.SetDoors(d)
			e.mu.Unlock()
		case <-timer.C:
			e.mu.Lock()
			for _, o := range e.Due(time.Now()) {
				l.inflight++
				go func() {
					ok := e.RunStop(bg, o, time.Now())
					l.results <- result{o: o, stop: true, ok: ok, at: time.Now()}
				}()
			}
			e.mu.Unlock()
		case <-ctx.Done():
			break loop
		}
	}
	// From here Knock declines, and the state is Run's alone again.
	e.mu.Lock()
	e.live = nil
	e.mu.Unlock()
	for l.inflight > 0 {
		handle(<-l.results)
	}
	e.CloseAll(bg)
}
