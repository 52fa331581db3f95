// Package engine turns knock events into commands: it runs a door's start
// command, keeps the rendered stop command as data, and runs it when the
// door's Cmd_Timeout has passed, when the daemon shuts down, or, after a
// crash, when the daemon starts again.
//
// knockd forks a child that sleeps through Cmd_Timeout; a SIGTERM then waits
// for one child and strands the rest, a crash strands all of them, and a
// second knock stacks a second firewall rule. Here every open door is one
// entry, keyed by (door, address), written to a journal before its start
// command runs and removed only after its stop command succeeded.
//
// The Engine is not safe for concurrent use: the daemon drives it from one
// goroutine (Run does this for live capture; replay calls Open and Advance
// directly with packet time as the clock).
package engine

import (
	"context"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/doorward/doorward/actions"
	"github.com/doorward/doorward/actions/command"
	"github.com/doorward/doorward/actions/journal"
	"github.com/doorward/doorward/formats/nftset"
	"github.com/doorward/doorward/internal/deadline"
	"github.com/doorward/doorward/internal/latency"
	"github.com/doorward/doorward/internal/ratelimit"
)

// Door is what the engine needs of a door: its commands and nftables sets
// per address family (index 0 IPv4, 1 IPv6; a family with neither a start
// command nor a set of its own is ignored, never given the other
// family's), how long to keep it open, and how long to ignore repeats.
type Door struct {
	Name       string // for log lines
	Start      [2]string
	Stop       [2]string
	Set        [2]nftset.Ref // zero: none
	CmdTimeout time.Duration
	Cooldown   time.Duration
}

// Sets is the firewall backend of doors with nftables sets: *nft.Backend
// live, Pretend in replay. Add puts addr in the set for timeout, or
// restarts the timeout of an element already there; Delete removes it,
// and an element already gone is no error.
type Sets interface {
	Add(r nftset.Ref, addr netip.Addr, timeout time.Duration) error
	Delete(r nftset.Ref, addr netip.Addr) error
}

// Pretend is the Sets of replay and tests: every operation succeeds and
// touches nothing, so a replay of a capture logs what the doors would do.
type Pretend struct{}

func (Pretend) Add(nftset.Ref, netip.Addr, time.Duration) error { return nil }
func (Pretend) Delete(nftset.Ref, netip.Addr) error             { return nil }

// Store persists open doors (the state layer's Doors; *journal.Journal is the
// embedded one). A nil Store keeps them in memory only (replay, tests).
type Store = actions.Doors

// A failing stop command is retried as journal.Retry says: with backoff,
// at most journal.MaxAttempts times, across restarts; then the door is
// dropped and its stop command logged for the admin.

// MaxOpenPerDoor bounds the open entries (addresses) of one door.
// Sequence knocks are not authenticated: anyone who knows a sequence can
// complete it from thousands of spoofed sources, and each would be a
// firewall rule, a journal entry and a stop command. Past the bound new
// knocks for the door are ignored (and logged) until some close.
const MaxOpenPerDoor = 1024

// Log limits for lines that traffic causes (every line about a knock or a
// command it started): the same defaults as the detectors'.
const (
	DefaultLogRate  = 50
	DefaultLogBurst = 500
)

// maxCooldowns bounds the cooldown table. When it is full of live entries,
// new events for cooldown doors are refused: failing closed is the safe way
// to fail for a door that limits how often it opens.
const maxCooldowns = 1 << 16

type key struct {
	door string
	addr netip.Addr
}

type state uint8

const (
	starting state = iota // start command running
	opened                // in the heap, waiting for its stop command
	closing               // stop command running
)

// door is one open door: journaled, and in the heap while opened.
type door struct {
	key   key
	e     journal.Entry
	wait  time.Duration
	start string
	set   nftset.Ref // the set the door's element is in (e.Set parsed)
	state state
	undo  bool   // the start command failed: the stop command runs once, now
	index int    // in the heap
	seq   uint64 // breaks ties between equal due times, for reproducible replays
	// knocked is the capture time of the knock's last packet, set by Run
	// (live), and by Open after SetLatency: replay's packet time is no
	// clock to measure against.
	knocked time.Time
	// ev is the knock that opened the door, for Opened; its Until (set
	// for an opening another host of the door's group published) is when
	// the door closes at the latest.
	ev actions.Event
}

// Engine owns the door table and the queue of pending stop commands.
type Engine struct {
	doors     map[string]Door
	open      map[key]*door
	perDoor   map[string]int // open entries per door key
	pending   deadline.Queue[*door]
	cooldowns map[key]time.Time
	store     Store
	sets      Sets
	seq       uint64
	run       command.Runner
	logf      actions.Logf
	// log limits the lines traffic causes; commands log from worker
	// goroutines, so it has its own lock.
	log *ratelimit.Log
	// suppressed counts the lines log left out, across SetLogRate.
	suppressed *atomic.Uint64
	// onKnock hears each knock's Outcome (outcome.go).
	onKnock func(door string, o Outcome)
	// opened hears of each door a knock seen here opened or extended.
	opened actions.Opened
	// latency: a knock's capture time to its start command's start, as
	// issue 14 defines knock-to-command latency; recorded on the worker
	// goroutines, read by the daemon for its stats lines. After
	// SetLatency, shared goes where latencies are recorded instead.
	// Open (not only Run) measures once shared is set.
	latency latency.Histogram
	shared  actions.Latency
	// mu guards the door state while Run serves: Run's loop and Knock,
	// called on the goroutines that detect knocks, both take it.
	mu sync.Mutex
	// live is Run's state while it serves (nil before and after).
	live *serving
	// start forks commands for Knock (SetStarter); nil: Knock declines.
	start actions.Starter
}

// New returns an engine that runs commands with run, records open doors in
// store (may be nil) and logs with logf.
func New(run command.Runner, store Store, logf actions.Logf) *Engine {
	if logf == nil {
		logf = actions.Discard
	}
	e := &Engine{
		doors:     map[string]Door{},
		open:      map[key]*door{},
		perDoor:   map[string]int{},
		cooldowns: map[key]time.Time{},
		store:     store,
		run:       run,
		logf:      logf,
	}
	e.log = ratelimit.NewLog(logf, DefaultLogRate, DefaultLogBurst)
	return e
}

// SetLatency makes the engine record knock-to-command latency in l
// instead of its own histogram (Latency): the daemon shares one between
// every engine that serves live knocks, so its figure covers all
// protocols. It also makes Open measure, which an Action calls for each
// live knock (fwknop); replay never calls it, as its packet times are no
// clock to measure against. Call it before the engine runs.
func (e *Engine) SetLatency(l actions.Latency) { e.shared = l }

// record adds one knock-to-command latency.
func (e *Engine) record(d time.Duration) {
	if e.shared != nil {
		e.shared.Record(d)
		return
	}
	e.latency.Record(d)
}

// SetSets gives the engine its nftables backend; without one, doors with
// sets fail to open (and are logged). Call it before the engine runs.
func (e *Engine) SetSets(s Sets) { e.sets = s }

// SetOpened has f told, on the engine's goroutine, of every door a knock
// seen here opened (once its start command succeeded) or kept open
// longer, with its due time: the runtime publishes those of grouped doors.
func (e *Engine) SetOpened(f actions.Opened) { e.opened = f }

// SetLogRate sets how many traffic-caused lines a second are logged
// ([options] LogRate; 0 keeps the default, negative: unlimited).
func (e *Engine) SetLogRate(rate float64) {
	switch {
	case rate < 0:
		e.log = ratelimit.NewLog(e.logf, -1, 0)
	case rate > 0:
		e.log = ratelimit.NewLog(e.logf, rate, max(rate*10, 1))
	}
	e.log.CountInto(e.suppressed)
}

// CountSuppressed has the lines the engine's rate limit leaves out
// counted in c (the daemon's metrics).
func (e *Engine) CountSuppressed(c *atomic.Uint64) {
	e.suppressed = c
	e.log.CountInto(c)
}

// note logs a line that traffic caused, through the limiter (see
// ratelimit.Log): a flood costs no allocation per line left out.
func (e *Engine) note(t time.Time, format string, args ...any) { e.log.Logf(t, format, args...) }

// seen records t as the latest time the engine was told about.
func (e *Engine) seen(t time.Time) { e.log.Seen(t) }

// now is the latest time the engine was told about: packet time in replay.
func (e *Engine) now() time.Time { return e.log.Now() }

// SetDoors replaces the door table (on start and on reload). Open doors are
// kept whatever the new table says: their stop command was rendered when
// they opened, so a reload can never strand an open door.
func (e *Engine) SetDoors(doors map[string]Door) { e.doors = doors }

// Begin decides what ev does and, if it opens a door, journals it. It
// returns nil when there is nothing to run: unknown door, no start command
// for the address family, door already open (then it is extended), door in
// its cooldown, or the journal could not be written (then the door stays
// shut: a door we could not promise to close is not opened).
func (e *Engine) Begin(ev actions.Event) *door {
	e.seen(ev.Time)
	d, found := e.doors[ev.Door]
	if !found {
		return nil
	}
	if ev.Addr.Is4In6() {
		// "::ffff:a.b.c.d" is not a.b.c.d: it must not appear on the wire
		// (RFC 4291 2.5.5.2; the decoder drops such packets), and neither
		// family's commands are meant for it.
		e.note(ev.Time, "%s: %s: IPv4-mapped IPv6 address, knock ignored", ev.Addr, d.Name)
		e.tallyEv(ev, RefusedMapped)
		return nil
	}
	fam := 0
	if ev.Addr.Is6() {
		fam = 1
	}
	if d.Start[fam] == "" && d.Set[fam].IsZero() {
		switch {
		case d.Start[1-fam] != "":
			e.note(ev.Time, "%s: %s: no %s for %s knockers, knock ignored", ev.Addr, d.Name, [2]string{"Start_Command", "Start_Command_6"}[fam], [2]string{"IPv4", "IPv6"}[fam])
		case !d.Set[1-fam].IsZero():
			e.note(ev.Time, "%s: %s: no %s for %s knockers, knock ignored", ev.Addr, d.Name, [2]string{"Nft_Set", "Nft_Set_6"}[fam], [2]string{"IPv4", "IPv6"}[fam])
		}
		e.tallyEv(ev, RefusedFamily)
		return nil
	}
	wait := d.CmdTimeout
	if !ev.Until.IsZero() {
		// Another host's opening: what is left of it, and nothing once
		// it has expired (a late catch-up).
		if wait = ev.Until.Sub(ev.Time); wait <= 0 {
			return nil
		}
	}
	k := key{ev.Door, ev.Addr.WithZone("")}
	if o := e.open[k]; o != nil {
		e.extend(o, d, ev)
		return nil
	}
	if (d.Stop[fam] != "" || !d.Set[fam].IsZero()) && e.perDoor[ev.Door] >= MaxOpenPerDoor {
		e.note(ev.Time, "%s: %s: already open for %d addresses (the most a door keeps), knock ignored", k.addr, d.Name, MaxOpenPerDoor)
		e.tallyEv(ev, RefusedFull)
		return nil
	}
	addr := k.addr.String()
	if d.Cooldown > 0 && ev.Until.IsZero() && !e.cool(k, d, ev.Time, addr) {
		e.tallyEv(ev, RefusedCooldown)
		return nil
	}
	e.seq++
	o := &door{
		seq:   e.seq,
		key:   k,
		ev:    ev,
		wait:  wait,
		start: command.Render(d.Start[fam], k.addr),
		set:   d.Set[fam],
		e: journal.Entry{
			Door: ev.Door,
			Name: d.Name,
			Addr: addr,
			Stop: command.Render(d.Stop[fam], k.addr),
			Set:  d.Set[fam].String(),
			Due:  ev.Time.Add(wait),
			// Opened: for knockd --status only.
			Opened: ev.Time,
		},
	}
	if o.closes() && e.store != nil {
		je, err := e.store.OpenDoor(o.e)
		if err != nil {
			e.note(ev.Time, "%s: %s: cannot record the door in the journal, not opening it: %v", addr, d.Name, err)
			e.tallyEv(ev, RefusedJournal)
			return nil
		}
		o.e = je
	}
	if o.closes() {
		e.track(o)
	}
	e.tallyEv(ev, Accepted)
	return o
}

// closes reports whether o has anything to undo when it closes: a stop
// command or a set element. A door with neither is fire and forget.
func (o *door) closes() bool { return o.e.Stop != "" || !o.set.IsZero() }

func (e *Engine) track(o *door) {
	e.open[o.key] = o
	e.perDoor[o.key.door]++
}

// forget drops o from memory and the journal: closed, or given up on.
func (e *Engine) forget(o *door) {
	delete(e.open, o.key)
	if e.perDoor[o.key.door]--; e.perDoor[o.key.door] <= 0 {
		delete(e.perDoor, o.key.door)
	}
	if e.store != nil && o.e.ID != 0 {
		if err := e.store.CloseDoor(o.e.ID); err != nil {
			e.note(e.now(), "%s: %s: door closed but the journal could not record it (it will be closed again at next start): %v", o.e.Addr, o.e.Name, err)
		}
	}
}

// extend handles a second knock for an open door: one firewall rule, kept
// open longer, instead of knockd's stacked duplicates (knockd #14, #70).
func (e *Engine) extend(o *door, d Door, ev actions.Event) {
	if o.state != opened || o.undo {
		e.note(ev.Time, "%s: %s: door is already being opened or closed, knock ignored", o.e.Addr, d.Name)
		e.tallyEv(ev, RefusedBusy)
		return
	}
	e.tallyEv(ev, Accepted)
	wait := d.CmdTimeout
	if !ev.Until.IsZero() {
		wait = ev.Until.Sub(ev.Time) // > 0: Begin checked
	}
	due := ev.Time.Add(wait)
	if !due.After(o.e.Due) {
		return
	}
	if !o.set.IsZero() {
		// The kernel closes the door at the element's timeout, not at
		// Due: restart it, or the door shuts while the engine still
		// counts it open.
		e.setAdd(ev.Time, o, wait, true)
	}
	o.e.Due = due
	e.pending.Fix(o.index)
	e.persist(o)
	e.note(ev.Time, "%s: %s: door already open, keeping it open %v longer", o.e.Addr, d.Name, wait)
	e.opened.Tell(ev, due)
}

// cool reports whether a door with a cooldown may open for k now, and
// starts its cooldown if so.
func (e *Engine) cool(k key, d Door, now time.Time, addr string) bool {
	if until, ok := e.cooldowns[k]; ok && now.Before(until) {
		e.note(now, "%s: %s: in cooldown, knock ignored", addr, d.Name)
		return false
	}
	if len(e.cooldowns) >= maxCooldowns {
		for ck, until := range e.cooldowns {
			if !now.Before(until) {
				delete(e.cooldowns, ck)
			}
		}
		if len(e.cooldowns) >= maxCooldowns {
			e.note(now, "%s: %s: too many doors in cooldown, knock ignored", addr, d.Name)
			return false
		}
	}
	e.cooldowns[k] = now.Add(d.Cooldown)
	return true
}

// RunStart runs o's start command at (about) t. It touches no engine state,
// so Run calls it on a worker goroutine. ok is false if it failed.
func (e *Engine) RunStart(ctx context.Context, o *door, t time.Time) (ok bool) {
	ok = true
	if !o.set.IsZero() {
		// A set-only door's "command" is the set element: its latency is
		// measured there (the start command, if any, is not measured twice).
		if o.start == "" && !o.knocked.IsZero() {
			e.record(time.Since(o.knocked))
		}
		ok = e.setAdd(t, o, o.wait, false)
	}
	return e.exec(ctx, t, o.e.Name, o.start, o.knocked) && ok
}

// setAdd puts o's address in its set for timeout, or restarts its timeout
// (refresh: an extension). Safe on a worker goroutine: it reads only o's
// fields that do not change while o is starting or open.
func (e *Engine) setAdd(t time.Time, o *door, timeout time.Duration, refresh bool) bool {
	if refresh {
		e.note(t, "%s: refreshing %s in nftables set %s for %v", o.e.Name, o.key.addr, o.set, timeout)
	} else {
		e.note(t, "%s: adding %s to nftables set %s for %v", o.e.Name, o.key.addr, o.set, timeout)
	}
	if e.sets == nil {
		e.note(t, "%s: nftables failed: no connection to nftables", o.e.Name)
		return false
	}
	if err := e.sets.Add(o.set, o.key.addr, timeout); err != nil {
		e.note(t, "%s: nftables failed: %v", o.e.Name, err)
		return false
	}
	return true
}

// shut closes o: deletes its set element, then runs its stop command,
// both whatever the other did; ok only if both succeeded.
func (e *Engine) shut(ctx context.Context, t time.Time, o *door) bool {
	ok := true
	if !o.set.IsZero() {
		e.note(t, "%s: deleting %s from nftables set %s", o.e.Name, o.key.addr, o.set)
		switch {
		case e.sets == nil:
			e.note(t, "%s: nftables failed: no connection to nftables", o.e.Name)
			ok = false
		case !o.key.addr.IsValid():
			e.note(t, "%s: nftables failed: no address to delete", o.e.Name)
			ok = false
		default:
			if err := e.sets.Delete(o.set, o.key.addr); err != nil {
				e.note(t, "%s: nftables failed: %v", o.e.Name, err)
				ok = false
			}
		}
	}
	return e.exec(ctx, t, o.e.Name, o.e.Stop, time.Time{}) && ok
}

// Latency summarizes knock-to-command latency so far (unless SetLatency
// sent it elsewhere): from the capture
// timestamp of a knock's last packet (the kernel's, in live capture) to
// the moment its start command is handed to the Runner, just before the
// fork, for every start command Run or Knock started. It is safe to call from any
// goroutine.
func (e *Engine) Latency() latency.Summary { return e.latency.Summary() }

// Started schedules o's stop command Cmd_Timeout after finished, the time
// the start command returned (knockd sleeps after the start command, not
// from the knock). A start command that failed may have done part of its
// work (the first of two rules): its stop command is due at once, and runs
// once, whatever it returns; the door is not retried.
func (e *Engine) Started(o *door, finished time.Time, ok bool) {
	if !o.closes() {
		return
	}
	o.e.Due = finished.Add(o.wait)
	if u := o.ev.Until; !u.IsZero() && o.e.Due.After(u) {
		o.e.Due = u // the publisher's expiry, not the start command's end plus what was left
	}
	if ok {
		e.opened.Tell(o.ev, o.e.Due)
	}
	if !ok {
		o.undo = true
		o.e.Due = finished
		e.persist(o)
	}
	o.state = opened
	e.pending.Push(o)
}

// Open handles ev synchronously: start command now, stop command scheduled
// from ev.Time. Replay uses it so a capture always gives the same result.
func (e *Engine) Open(ctx context.Context, ev actions.Event) {
	if o := e.Begin(ev); o != nil {
		if e.shared != nil {
			o.knocked = ev.Time
		}
		ok := e.RunStart(ctx, o, ev.Time)
		e.Started(o, ev.Time, ok)
		if !ok {
			e.Advance(ctx, ev.Time)
		}
	}
}

// Due takes every door whose stop command is due by now off the queue and
// marks it closing; the caller runs each with RunStop and reports to Stopped.
func (e *Engine) Due(now time.Time) []*door {
	e.seen(now)
	out := e.pending.PopDue(now)
	for _, o := range out {
		o.state = closing
	}
	return out
}

// Next is when the earliest stop command is due; ok is false if none is.
func (e *Engine) Next() (t time.Time, ok bool) {
	o, ok := e.pending.Peek()
	if !ok {
		return t, false
	}
	return o.e.Due, true
}

// Pending is how many doors are open (or being opened or closed).
func (e *Engine) Pending() int { return len(e.open) }

// RunStop runs o's stop command at (about) t, logging knockd's "command
// timeout" line first. It touches no engine state. ok is false if the
// command failed.
func (e *Engine) RunStop(ctx context.Context, o *door, t time.Time) (ok bool) {
	switch {
	case o.undo:
		e.note(t, "%s: %s: start command failed, running the stop command once to undo it", o.e.Addr, o.e.Name)
	case o.e.Failures == 0:
		e.note(t, "%s: %s: command timeout", o.e.Addr, o.e.Name)
	}
	return e.shut(ctx, t, o)
}

// Stopped records the outcome of o's stop command at now: the door leaves
// the journal, or, if the command failed, it is retried with backoff up to
// journal.MaxAttempts times. The undo of a failed start is never retried.
func (e *Engine) Stopped(o *door, ok bool, now time.Time) {
	if ok || o.undo {
		e.forget(o)
		return
	}
	o.e.Failures++
	backoff, again := journal.Retry(o.e.Failures)
	if !again {
		e.forget(o)
		e.note(now, "%s: %s: stop command failed %d times, giving up; the door may still be open, run it by hand: %s", o.e.Addr, o.e.Name, o.e.Failures, o.e.Stop)
		return
	}
	o.e.Due = now.Add(backoff)
	o.state = opened
	e.pending.Push(o)
	e.persist(o)
	e.note(now, "%s: %s: stop command failed %d times, door still open; retrying in %v", o.e.Addr, o.e.Name, o.e.Failures, backoff)
}

func (e *Engine) persist(o *door) {
	if e.store == nil || o.e.ID == 0 {
		return
	}
	if err := e.store.UpdateDoor(o.e); err != nil {
		e.note(e.now(), "%s: %s: journal update failed: %v", o.e.Addr, o.e.Name, err)
	}
}

// Advance runs every stop command due by now, in order (replay's clock).
func (e *Engine) Advance(ctx context.Context, now time.Time) {
	for _, o := range e.Due(now) {
		e.Stopped(o, e.RunStop(ctx, o, now), now)
	}
}

// CloseAll runs every pending stop command once, earliest first: the
// shutdown path. A stop command that fails stays in the journal, so the next
// start tries again (within journal.MaxAttempts). Once ctx is done (the
// shutdown budget is spent) no further command starts: the rest stay in
// the journal for the next start, and one line says how many.
func (e *Engine) CloseAll(ctx context.Context) {
	left := 0
	for e.pending.Len() > 0 {
		o := e.pending.Pop()
		if ctx.Err() != nil {
			left++
			continue
		}
		if e.RunStop(ctx, o, e.now()) || o.undo {
			e.forget(o)
			continue
		}
		o.e.Failures++
		if _, again := journal.Retry(o.e.Failures); !again {
			e.forget(o)
			e.note(e.now(), "%s: %s: stop command failed %d times, giving up; the door may still be open, run it by hand: %s", o.e.Addr, o.e.Name, o.e.Failures, o.e.Stop)
			continue
		}
		e.persist(o)
		e.note(e.now(), "%s: %s: stop command failed at shutdown; the door will be closed at next start", o.e.Addr, o.e.Name)
	}
	if left > 0 {
		e.logf("shutdown: out of time, %d stop commands left in the journal for the next start", left)
	}
}

// Recover closes doors a previous run left open (it crashed or was killed),
// before any new knock is accepted. Their stop commands run now, whatever
// their due time: closing early is safe, the user knocks again. Doors whose
// stop command fails stay queued with backoff. Once ctx is done (SIGTERM
// came while recovering and its budget is spent) the rest are queued as due
// without running, for CloseAll or the next start.
func (e *Engine) Recover(ctx context.Context, left []journal.Entry, now time.Time) {
	for _, je := range left {
		addr, err := netip.ParseAddr(je.Addr)
		if err != nil {
			e.logf("journal: entry %d for %s has a bad address %q; running its stop command anyway", je.ID, je.Name, je.Addr)
		}
		o := &door{key: key{je.Door, addr}, e: je, state: closing}
		if je.Set != "" {
			if o.set, err = nftset.Parse(je.Set); err != nil {
				// Written by us, so only damage gets here; the stop
				// command (if any) still runs, and the element has its
				// own timeout.
				e.logf("journal: entry %d for %s has a bad nftables set %q; its element expires by its own timeout", je.ID, je.Name, je.Set)
			}
		}
		e.track(o)
		if ctx.Err() != nil {
			o.e.Due, o.state = now, opened
			e.pending.Push(o)
			continue
		}
		e.note(now, "%s: %s: closing door left open by a previous run", je.Addr, je.Name)
		e.Stopped(o, e.shut(ctx, now, o), now)
	}
}

// exec runs line, logging as knockd does. A knocked time that is set is
// where the line's latency is measured from, to just before it runs.
func (e *Engine) exec(ctx context.Context, t time.Time, name, line string, knocked time.Time) bool {
	if line == "" {
		return true
	}
	e.note(t, "%s: running command: %s", name, line)
	if !knocked.IsZero() {
		e.record(time.Since(knocked))
	}
	status, err := e.run(ctx, line)
	return e.judge(t, name, status, err)
}

// judge logs a command's failure as knockd does; ok is false if it failed.
func (e *Engine) judge(t time.Time, name string, status int, err error) bool {
	switch {
	case err != nil:
		e.note(t, "%s: command failed: %v", name, err)
		return false
	case status != 0:
		e.note(t, "%s: command returned non-zero status code (%d)", name, status)
		return false
	}
	return true
}

func (o *door) Deadline() (time.Time, uint64) { return o.e.Due, o.seq }
func (o *door) SetIndex(i int)                { o.index = i }
