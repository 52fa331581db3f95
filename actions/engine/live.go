package engine

import (
	"context"
	"time"

	"github.com/doorward/doorward/actions"
	"github.com/doorward/doorward/actions/command"
)

// MaxInFlight bounds the commands running at once. Sequence knocks are not
// authenticated, so anyone who learns a sequence can complete it from many
// spoofed sources; past this bound events are dropped and counted rather
// than each spawning a shell.
const MaxInFlight = 256

type result struct {
	o    *door
	stop bool // a stop command finished (else a start command)
	ok   bool
	at   time.Time
}

// Run drives e for a live daemon until ctx is done or events is closed, then
// waits for running commands and runs every pending stop command before
// returning, all within command.ShutdownBudget. Commands run on their own
// goroutines so a slow iptables call never delays another door; door state
// is only touched here. doors delivers new door tables on reload.
func (e *Engine) Run(ctx context.Context, events <-chan actions.Event, doors <-chan map[string]Door) {
	// Commands must complete even while we shut down (a half-run stop
	// command is exactly the leaked rule we exist to prevent), but within
	// the budget.
	bg, release := command.Grace(ctx, command.ShutdownBudget)
	defer release()
	results := make(chan result)
	inflight, dropped := 0, 0
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
		inflight--
		if r.stop {
			e.Stopped(r.o, r.ok, r.at)
		} else {
			e.Started(r.o, r.at, r.ok)
		}
	}

loop:
	for {
		rearm()
		select {
		case ev, ok := <-events:
			if !ok {
				break loop
			}
			if inflight >= MaxInFlight {
				if _, known := e.doors[ev.Door]; known {
					e.tally(ev.Door, RefusedOverload)
				}
				dropped++
				if dropped&(dropped-1) == 0 { // log at 1, 2, 4, 8, …
					e.note(ev.Time, "%s: too many commands running, dropped %d knocks", ev.Door, dropped)
				}
				continue
			}
			o := e.Begin(ev)
			if o == nil {
				continue
			}
			o.knocked = ev.Time
			inflight++
			go func() {
				ok := e.RunStart(bg, o, time.Now())
				results <- result{o: o, ok: ok, at: time.Now()}
			}()
		case r := <-results:
			handle(r)
		case d := <-doors:
			e.SetDoors(d)
		case <-timer.C:
			for _, o := range e.Due(time.Now()) {
				inflight++
				go func() {
					ok := e.RunStop(bg, o, time.Now())
					results <- result{o: o, stop: true, ok: ok, at: time.Now()}
				}()
			}
		case <-ctx.Done():
			break loop
		}
	}
	for inflight > 0 {
		handle(<-results)
	}
	e.CloseAll(bg)
}
