package engine

import (
	"context"
	"time"

	"github.com/doorward/doorward/actions"
)

// MaxInFlight bounds the commands running at once. Sequence knocks are not
// authenticated, so anyone who learns a sequence can complete it from many
// spoofed sources; past this bound events are dropped and counted rather
// than each spawning a shell.
const MaxInFlight = 256

type finished struct {
	o  Opening
	at time.Time
}

// Run drives e for a live daemon until ctx is done or events is closed, then
// waits for running start commands and runs every pending stop command
// before returning. Start and stop commands run on their own goroutines so a
// slow iptables call never delays another door; door state is only touched
// here. doors delivers new door tables on reload.
func (e *Engine) Run(ctx context.Context, events <-chan actions.Event, doors <-chan map[string]Door) {
	// Commands must complete even while we shut down: a half-run stop
	// command is exactly the leaked rule we exist to prevent.
	bg := context.WithoutCancel(ctx)
	done := make(chan finished)
	closed := make(chan struct{})
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
	closeAsync := func(us []Undo) {
		for _, u := range us {
			inflight++
			go func() { e.Close(bg, u); closed <- struct{}{} }()
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
			o, ok := e.Prepare(ev)
			if !ok {
				continue
			}
			if inflight >= MaxInFlight {
				dropped++
				if dropped&(dropped-1) == 0 { // log at 1, 2, 4, 8, …
					e.logf("%s: too many commands running, dropped %d events", o.name, dropped)
				}
				continue
			}
			inflight++
			go func() { e.RunStart(bg, o); done <- finished{o, time.Now()} }()
		case f := <-done:
			inflight--
			e.Finish(f.o, f.at)
		case <-closed:
			inflight--
		case d := <-doors:
			e.SetDoors(d)
		case <-timer.C:
			closeAsync(e.Due(time.Now()))
		case <-ctx.Done():
			break loop
		}
	}
	for inflight > 0 {
		select {
		case f := <-done:
			inflight--
			e.Finish(f.o, f.at)
		case <-closed:
			inflight--
		}
	}
	e.CloseAll(bg)
}
