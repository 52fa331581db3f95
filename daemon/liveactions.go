package daemon

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/doorward/doorward/actions"
	"github.com/doorward/doorward/actions/command"
	"github.com/doorward/doorward/config/knockd"
)

// queueLen bounds the events waiting for an action. Completed knocks are
// rare; a full queue means a flood of them, and those are dropped.
const queueLen = 1024

// liveActions routes events in live mode: knockd command doors to the
// engine's queue, other protocols to their Action, each Action on its own
// goroutine so its methods are never called concurrently.
type liveActions struct {
	env     *Env
	log     *Logger
	engine  chan actions.Event
	running map[string]*actionRunner
	ctx     context.Context
	wg      sync.WaitGroup
	dropped atomic.Uint64
}

type actionRunner struct {
	name   string
	a      actions.Action
	events chan actions.Event
	reconf latest[[]*knockd.Door] // the newest doors, never blocks the loop
}

func newLiveActions(env *Env, log *Logger) *liveActions {
	return &liveActions{env: env, log: log, engine: make(chan actions.Event, queueLen), running: map[string]*actionRunner{}}
}

// toEngine reports whether route sends kind's events to the engine (the
// knockd command doors).
func (l *liveActions) toEngine(kind string) bool { return l.running[kind] == nil }

// route is called on the packet path: it never blocks. It reports
// whether ev was queued.
func (l *liveActions) route(kind string, ev actions.Event) bool {
	ch := l.engine
	if r := l.running[kind]; r != nil {
		ch = r.events
	}
	select {
	case ch <- ev:
		return true
	default:
		if n := l.dropped.Add(1); n&(n-1) == 0 {
			l.log.Logf("event queue full, dropped %d knocks", n)
		}
		return false
	}
}

// apply creates the Actions p needs and hands reloaded doors to the
// running ones (on their goroutine). Called from the dispatch goroutine,
// like route.
func (l *liveActions) apply(p *plan) error {
	have := func(name string) actions.Action {
		if r := l.running[name]; r != nil {
			return r.a
		}
		return nil
	}
	reconf := func(name string, _ actions.Action, doors []*knockd.Door) error {
		l.running[name].reconf.put(doors)
		return nil // errors are logged by the Action's goroutine
	}
	add := func(name string, a actions.Action) {
		r := &actionRunner{name: name, a: a, events: make(chan actions.Event, queueLen), reconf: newLatest[[]*knockd.Door]()}
		l.running[name] = r
		if l.ctx != nil {
			l.launch(r)
		}
	}
	return p.applyActions(l.env, have, reconf, add)
}

// start runs every Action until ctx is done; then each closes its doors.
func (l *liveActions) start(ctx context.Context) {
	l.ctx = ctx
	for _, r := range l.running {
		l.launch(r)
	}
}

// wait returns when every Action has closed its doors.
func (l *liveActions) wait() { l.wg.Wait() }

func (l *liveActions) launch(r *actionRunner) {
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		// Commands outlive the shutdown by at most the budget.
		bg, release := command.Grace(l.ctx, command.ShutdownBudget)
		defer release()
		timer := time.NewTimer(time.Second)
		defer timer.Stop()
		for {
			select {
			case ev := <-r.events:
				r.a.Handle(bg, ev)
			case doors := <-r.reconf:
				if err := r.a.Reconfigure(doors); err != nil {
					l.log.Logf("config reload: %s: %v", r.name, err)
				}
			case now := <-timer.C:
				r.a.Advance(bg, now)
			case <-l.ctx.Done():
				r.a.Close(bg)
				return
			}
			// Wake for the Action's next deadline, and at least every
			// second.
			d := time.Second
			if next, ok := r.a.Next(); ok {
				d = min(d, max(time.Until(next), 0))
			}
			if !timer.Stop() {
				select {
				case <-timer.C:
				default:
				}
			}
			timer.Reset(d)
		}
	}()
}
