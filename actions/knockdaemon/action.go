// Package knockdaemon carries out the actions of port-span doors, as the
// Perl knockdaemon did: every enabled action whose Condition holds runs its
// State statements and System commands in file order, with an optional
// Delay on its commands; conditions and statements read and change a
// per-key state store (actions/state) in the language of formats/expr.
//
// Order of a knock (all on the daemon's action goroutine):
//
//  1. Every enabled action of the knock's door has its Condition evaluated
//     on the state as it was before this knock. Evaluating all conditions
//     first means an action's State statements never change whether a
//     later action of the same knock runs, so an "open now" action and a
//     "close in 30 s" action can share one condition (a throttle's
//     prevtime update would otherwise cancel the close).
//  2. The chosen actions run their steps in file order: State statements
//     change the store at once (also for delayed actions: spec §8);
//     System commands are rendered then, so they see the state as of
//     their line. A step that fails (division by zero, an unsafe value)
//     skips the rest of its action.
//  3. The store is flushed to its cache file. If that fails no command of
//     the knock runs: a one-time knock that could be replayed after a
//     restart must not open anything.
//  4. Delayed commands are journaled (when a journal is given); if that
//     fails, no command of the knock runs.
//  5. Immediate commands run, in order: synchronously in replay, on a
//     worker goroutine (one per knock, at most MaxInFlight) live.
//
// Delayed commands are entries of the daemon's journal of open doors,
// whose Stop line is the command and whose Due is the knock time plus the
// delay. They run at their due time (Advance), are retried with backoff
// when they fail, and run early rather than never: at shutdown (Close), and
// after a crash, when the next start runs every leftover journal entry
// before it accepts a knock. The Perl queued them with at(1), which also
// survived restarts; "early" is the price of not keeping a second queue,
// and is what a delayed "iptables -D" wants anyway.
package knockdaemon

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/doorward/doorward/actions"
	"github.com/doorward/doorward/actions/command"
	"github.com/doorward/doorward/actions/filestore"
	"github.com/doorward/doorward/actions/journal"
	"github.com/doorward/doorward/config/knockd"

	"github.com/doorward/doorward/internal/deadline"
	"github.com/doorward/doorward/internal/ratelimit"
)

// Bounds. Knocks on port-span doors are encrypted and checksummed, so a
// flood of them needs the key; the bounds are for a key that leaked.
const (
	// MaxInFlight bounds the goroutines running commands; past it, knocks
	// are dropped and counted before they change any state.
	MaxInFlight = 64
	// MaxPending bounds the delayed commands waiting; a knock that could
	// add more is dropped before it changes any state.
	MaxPending = 4096
)

// Journal is what the action needs of the journal of open doors: the state
// layer's Doors (*journal.Journal is the embedded one).
type Journal = actions.Doors

// Options are an Action's dependencies.
type Options struct {
	Logf actions.Logf
	// Run runs a command line; nil is command.Shell (/bin/sh -c).
	Run command.Runner
	// Journal records delayed commands; nil keeps them in memory only
	// (replay, tests).
	Journal Journal
	// State is the value space of the state layer that keeps state(…);
	// nil is a fresh one in memory. The Action owns it: Close closes it.
	State actions.Values
	// Key gives a door's unique key, as events carry it in Event.Door.
	Key func(*knockd.Door) string
	// Replay runs every command synchronously, in order, when it is due:
	// a replay or a test then gives the same result every time.
	Replay bool
	// Location is the time zone of the calendar buckets; nil is time.Local.
	Location *time.Location
	// LogRate bounds the lines a second that knocks cause ([options]
	// LogRate): 0 is DefaultLogRate, negative is unlimited.
	LogRate float64
	// LogSuppressed, if set, also counts the lines left out (metrics).
	LogSuppressed *atomic.Uint64
	// Tally, if set, is told each knock's outcome: accepted once its
	// commands are set in motion, or refused with one of Reasons (the
	// daemon's metrics; the detector tells the refusals of its checks).
	Tally actions.Tally
}

// Defaults of the limiter on lines knocks cause, as the detectors'. A
// knock needs the key, but a leaked key (or a forged knock) must not
// flood the log either.
const (
	DefaultLogRate  = 50
	DefaultLogBurst = 500
)

// Action handles the knocks of port-span doors. Its methods must be called
// from one goroutine (the daemon's action runner, or replay).
type Action struct {
	o       Options
	cfg     *Config
	store   actions.Values
	pending deadline.Queue[*delayed]
	seq     uint64

	log *ratelimit.Log // lines knocks cause; workers log too

	inflight int
	results  chan result
	wg       sync.WaitGroup
	dropped  int
	closed   bool
}

// delayed is one journaled command waiting for its time.
type delayed struct {
	e     journal.Entry // Stop is the command, Name "<door>: action <name>"
	seq   uint64        // ties between equal due times run in knock order
	index int
}

type result struct {
	d  *delayed // nil: a knock's immediate commands finished
	ok bool
	at time.Time
}

// New builds the action for doors (port-span doors and action sections).
// Config errors carry file:line, all of them at once.
func New(doors []*knockd.Door, o Options) (*Action, error) {
	if o.Logf == nil {
		o.Logf = actions.Discard
	}
	if o.Run == nil {
		o.Run = command.Shell
	}
	if o.Key == nil {
		o.Key = func(d *knockd.Door) string { return d.Name }
	}
	if o.Location == nil {
		o.Location = time.Local
	}
	cfg, err := Parse(doors, o.Key)
	if err != nil {
		return nil, err
	}
	st := o.State
	if st == nil {
		st, _ = filestore.Memory().Values(actions.Space{Name: "state"}) // cannot fail
	}
	a := &Action{o: o, cfg: cfg, store: st, results: make(chan result, MaxInFlight)}
	switch {
	case o.LogRate > 0:
		a.log = ratelimit.NewLog(o.Logf, o.LogRate, max(o.LogRate*10, 1))
	case o.LogRate < 0:
		a.log = ratelimit.NewLog(o.Logf, -1, 0)
	default:
		a.log = ratelimit.NewLog(o.Logf, DefaultLogRate, DefaultLogBurst)
	}
	a.log.CountInto(o.LogSuppressed)
	a.warn()
	return a, nil
}

func (a *Action) warn() {
	for _, w := range a.cfg.Warnings {
		a.o.Logf("%s", w)
	}
}

// Reconfigure applies reloaded doors. On error the running actions stay.
// Delayed commands keep what they were rendered with; the state store and
// its cache stay (a new StateCache path takes a restart).
func (a *Action) Reconfigure(doors []*knockd.Door) error {
	cfg, err := Parse(doors, a.o.Key)
	if err != nil {
		return err
	}
	a.cfg = cfg
	a.warn()
	return nil
}

// planned is a rendered command of a chosen action.
type planned struct {
	spec *Spec
	line string
}

// Handle runs the actions of ev's door (see the package comment for the
// order of things).
func (a *Action) Handle(ctx context.Context, ev actions.Event) {
	a.log.Seen(ev.Time)
	a.collect()
	if ev.Kind != actions.Knock || a.closed {
		return
	}
	k := newKnock(ev, a.o.Location)
	door, ok := a.cfg.Doors[ev.Door]
	if !ok {
		a.note("%s: %s: knock for a door that is no longer configured, ignored", k.ip, ev.Door)
		return
	}
	label := k.ip + ": " + door.Name
	if !a.o.Replay && a.inflight >= MaxInFlight {
		if a.dropped++; a.dropped&(a.dropped-1) == 0 {
			a.note("%s: too many commands running, dropped %d knocks", label, a.dropped)
		}
		a.refuse(ev, ReasonTooMany)
		return
	}

	var chosen []*Spec
	delayedSteps := 0
	for _, s := range a.cfg.Actions {
		if s.Door != ev.Door || !s.Use {
			continue
		}
		if s.Cond != nil {
			ok, err := s.Cond.True(&env{k: k, buckets: s.Buckets, store: a.store})
			if err != nil {
				if !errors.Is(err, actions.ErrUnavailable) {
					a.note("%s: action %s: %v; skipped", label, s.Name, err)
				}
				continue
			}
			if !ok {
				a.note("%s: action %s: condition false, skipped", label, s.Name)
				continue
			}
		}
		chosen = append(chosen, s)
		if s.Delay > 0 {
			for _, st := range s.Steps {
				if st.Cmd != nil {
					delayedSteps++
				}
			}
		}
	}
	if len(chosen) == 0 {
		a.refuse(ev, ReasonNoAction)
		return
	}
	if a.pending.Len()+delayedSteps > MaxPending {
		a.note("%s: %d delayed commands already waiting, knock ignored", label, a.pending.Len())
		a.refuse(ev, ReasonTooManyLater)
		return
	}

	var now, later []planned
	for _, s := range chosen {
		e := &env{k: k, buckets: s.Buckets, template: true, store: a.store}
		cmds := 0
		for _, st := range s.Steps {
			if st.Stmt != nil {
				if err := st.Stmt.Exec(e); err != nil {
					// A shared state that cannot be reached logged its
					// outage once, and Sync below refuses the knock.
					if !errors.Is(err, actions.ErrUnavailable) {
						a.note("%s: action %s: %v; rest of the action skipped", label, s.Name, err)
					}
					cmds = -1
					break
				}
				continue
			}
			line, err := st.Cmd.Render(e)
			if err != nil {
				a.note("%s: action %s: %v; rest of the action skipped", label, s.Name, err)
				cmds = -1
				break
			}
			cmds++
			if s.Delay > 0 {
				later = append(later, planned{s, line})
			} else {
				now = append(now, planned{s, line})
			}
		}
		if cmds == 0 {
			a.note("%s: action %s: state updated", label, s.Name)
		}
	}

	if err := a.store.Sync(); err != nil {
		if !errors.Is(err, actions.ErrUnavailable) {
			a.note("%s: could not save the state, not running this knock's commands: %v", label, err)
		}
		a.refuse(ev, ReasonStateError)
		return
	}
	ds, ok := a.record(ev, k, label, door.Name, later)
	if !ok {
		a.refuse(ev, ReasonJournalError)
		return
	}
	a.o.Tally.Knock(ev.Door, actions.Accepted, "")
	for _, d := range ds {
		a.pending.Push(d)
	}
	if len(now) == 0 {
		return
	}
	if a.o.Replay {
		for _, p := range now {
			a.exec(ctx, label+": action "+p.spec.Name, p.line)
		}
		return
	}
	a.inflight++
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		for _, p := range now {
			a.exec(ctx, label+": action "+p.spec.Name, p.line)
		}
		a.results <- result{}
	}()
}

// refuse tells the Tally that ev's knock was refused, and why.
func (a *Action) refuse(ev actions.Event, reason string) {
	a.o.Tally.Knock(ev.Door, actions.Refused, reason)
}

// record journals the knock's delayed commands. If one cannot be
// journaled, those already journaled are withdrawn and nothing of the knock
// runs: a door must not open when its delayed close could be lost.
func (a *Action) record(ev actions.Event, k *knock, label, doorName string, later []planned) ([]*delayed, bool) {
	var ds []*delayed
	for _, p := range later {
		a.seq++
		d := &delayed{seq: a.seq, e: journal.Entry{
			Door: ev.Door,
			Name: doorName + ": action " + p.spec.Name,
			Addr: k.ip,
			Stop: p.line,
			Due:  ev.Time.Add(p.spec.Delay),
			// Opened: for knockd --status only.
			Opened: ev.Time,
		}}
		if a.o.Journal != nil {
			je, err := a.o.Journal.OpenDoor(d.e)
			if err != nil {
				a.note("%s: action %s: cannot record the delayed command in the journal, not running this knock's commands: %v", label, p.spec.Name, err)
				for _, d := range ds {
					if d.e.ID != 0 {
						a.o.Journal.CloseDoor(d.e.ID)
					}
				}
				return nil, false
			}
			d.e = je
		}
		ds = append(ds, d)
		a.note("%s: action %s: command delayed %v: %s", label, p.spec.Name, p.spec.Delay, p.line)
	}
	return ds, true
}

// Advance runs the delayed commands due by now.
func (a *Action) Advance(ctx context.Context, now time.Time) {
	a.log.Seen(now)
	a.collect()
	for {
		d, ok := a.pending.Peek()
		if !ok || d.e.Due.After(now) {
			return
		}
		if !a.o.Replay && a.inflight >= MaxInFlight {
			return // the next Advance takes the rest
		}
		a.pending.Pop()
		if a.o.Replay {
			a.finished(d, a.runDelayed(ctx, d, ""), now)
			continue
		}
		a.inflight++
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			ok := a.runDelayed(ctx, d, "")
			a.results <- result{d: d, ok: ok, at: time.Now()}
		}()
	}
}

func (a *Action) runDelayed(ctx context.Context, d *delayed, why string) bool {
	a.note("%s: %s: running delayed command%s: %s", d.e.Addr, d.e.Name, why, d.e.Stop)
	return a.run(ctx, d.e.Addr+": "+d.e.Name, d.e.Stop)
}

// collect takes in what the worker goroutines finished.
func (a *Action) collect() {
	for {
		select {
		case r := <-a.results:
			a.inflight--
			if r.d != nil {
				a.finished(r.d, r.ok, r.at)
			}
		default:
			return
		}
	}
}

// finished records a delayed command's outcome: it leaves the journal, or
// is retried with backoff, up to journal.MaxAttempts times in all.
func (a *Action) finished(d *delayed, ok bool, at time.Time) {
	if !ok {
		d.e.Failures++
	}
	backoff, again := journal.Retry(d.e.Failures)
	if !ok && !again {
		a.note("%s: %s: delayed command failed %d times, giving up; run it by hand: %s", d.e.Addr, d.e.Name, d.e.Failures, d.e.Stop)
	}
	if ok || !again {
		if a.o.Journal != nil && d.e.ID != 0 {
			if err := a.o.Journal.CloseDoor(d.e.ID); err != nil {
				a.note("%s: %s: delayed command ran but the journal could not record it (it will run again at next start): %v", d.e.Addr, d.e.Name, err)
			}
		}
		return
	}
	d.e.Due = at.Add(backoff)
	a.pending.Push(d)
	if a.o.Journal != nil && d.e.ID != 0 {
		if err := a.o.Journal.UpdateDoor(d.e); err != nil {
			a.note("%s: %s: journal update failed: %v", d.e.Addr, d.e.Name, err)
		}
	}
	a.note("%s: %s: delayed command failed %d times; retrying in %v", d.e.Addr, d.e.Name, d.e.Failures, backoff)
}

// Next is when the earliest delayed command is due.
func (a *Action) Next() (time.Time, bool) {
	d, ok := a.pending.Peek()
	if !ok {
		return time.Time{}, false
	}
	return d.e.Due, true
}

// Pending is how many delayed commands are waiting.
func (a *Action) Pending() int { return a.pending.Len() }

// Close waits for running commands, runs every delayed command now (the
// doors they close must not outlive the daemon; one that fails, or that
// ctx (the shutdown budget) leaves no time for, stays in the journal and
// runs at next start) and closes the state store.
func (a *Action) Close(ctx context.Context) {
	if a.closed {
		return
	}
	a.closed = true
	a.wg.Wait()
	for a.inflight > 0 {
		r := <-a.results
		a.inflight--
		if r.d != nil {
			if r.ok {
				a.finished(r.d, true, r.at)
			} else {
				a.pending.Push(r.d)
			}
		}
	}
	left := 0
	for a.pending.Len() > 0 {
		d := a.pending.Pop()
		if ctx.Err() != nil { // the shutdown budget is spent
			left++
			continue
		}
		if a.runDelayed(ctx, d, " early (shutting down)") {
			a.finished(d, true, time.Time{})
			continue
		}
		a.note("%s: %s: delayed command failed at shutdown; it runs again at next start", d.e.Addr, d.e.Name)
	}
	if left > 0 {
		a.o.Logf("shutdown: out of time, %d delayed commands left in the journal for the next start", left)
	}
	if err := a.store.Close(); err != nil {
		a.o.Logf("%v", err)
	}
}

// note logs a line a knock caused, through the limiter, at the latest
// time Handle or Advance was given.
func (a *Action) note(format string, args ...any) { a.log.Logf(a.log.Now(), format, args...) }

func (a *Action) exec(ctx context.Context, label, line string) bool {
	a.note("%s: running command: %s", label, line)
	return a.run(ctx, label, line)
}

func (a *Action) run(ctx context.Context, label, line string) bool {
	status, err := a.o.Run(ctx, line)
	switch {
	case err != nil:
		a.note("%s: command failed: %v", label, err)
		return false
	case status != 0:
		a.note("%s: command returned non-zero status code (%d)", label, status)
		return false
	}
	return true
}

// String summarises the configuration, for debugging.
func (a *Action) String() string {
	return fmt.Sprintf("knockdaemon: %d actions, %d doors, %d delayed commands", len(a.cfg.Actions), len(a.cfg.Doors), a.pending.Len())
}

func (d *delayed) Deadline() (time.Time, uint64) { return d.e.Due, d.seq }
func (d *delayed) SetIndex(i int)                { d.index = i }
