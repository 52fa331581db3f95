// Package doorman is the action of doorman doors: doormand's per-knock
// firewall lifecycle (../../../shared/specs/doorman.md §5), driven by the
// events of detectors/doorman:
//
//  1. Knock: run firewall-add with the broad rule ($3 = 0: any source port
//     of the knocker's address to the requested port) and wait Waitfor for
//     the client's SYN; if none comes, log "Timed out waiting for SYN
//     packet. Exiting." and delete the broad rule.
//  2. Connect (the client's first SYN): add the narrow rule with its
//     source port, then delete the broad rule.
//  3. Poll the kernel's socket table every 100 ms, up to Connection_Delay_1,
//     for that 4-tuple to be ESTABLISHED (doormand ran lsof for this, and
//     its parser no longer matches lsof's output), then every
//     Connection_Delay_2 until it no longer is.
//  4. Delete the narrow rule.
//
// Scripts are called as doormand calls them: "<script> <iface> <src-ip>
// <src-port|0> <dst-ip> <dst-port>" through /bin/sh -c, with only parsed
// addresses and integers on the line; their first output line answers
// (see Interpret).
//
// Unlike doormand, no rule is ever left behind: each rule is recorded in
// the journal with the line that deletes it before it is added, and its
// record is closed only after that line succeeded. A failed add deletes
// every rule the knock added; a failed delete is retried with backoff
// (and, after a crash, by the next start); Close (SIGTERM) deletes every
// rule still present.
//
// The Action runs scripts synchronously on the goroutine that calls it
// (iptables serialises on its own lock anyway) and is driven by Handle and
// Advance: it is not safe for concurrent use.
package doorman

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/doorward/doorward/actions"
	"github.com/doorward/doorward/actions/journal"
)

// Door is a doorman door as the action needs it.
type Door struct {
	Key, Name string
	Add, Del  string // firewall-add and firewall-del: command prefixes
	Interface string // $1; "" = the interface holding the knocked address
	Waitfor   time.Duration
	Delay1    time.Duration
	Delay2    time.Duration
	LogLevel  int // doormand level 0 (emerg) … 7 (debug); lines above it are dropped
}

// Store persists rules until they are deleted: the state layer's Doors
// (*journal.Journal is the embedded one).
type Store = actions.Doors

// Options are the Action's seams.
type Options struct {
	Script  Script  // nil: Shell(DefaultScriptTimeout)
	Sockets Sockets // nil: no socket table (replay): a connection ends as soon as its narrow rule is in place
	Store   Store   // nil: rules are kept in memory only (replay)
	Logf    actions.Logf
	// Now is the clock for deadlines set after scripts ran. nil: the
	// time of the event or Advance being handled (replay's clock).
	Now func() time.Time
	// IfaceOf names the interface that holds a local address, for $1 of
	// doors without Interface; nil or "" means "any".
	IfaceOf func(netip.Addr) string
	// MaxOpen bounds the knocks in progress; 0 means DefaultMaxOpen.
	MaxOpen int
	// Tally, if set, is told each knock's outcome: accepted once its
	// broad rule is in place, or refused with one of Reasons (the
	// daemon's metrics; the detector tells the refusals of its checks).
	Tally actions.Tally
}

const (
	DefaultScriptTimeout = 30 * time.Second
	DefaultMaxOpen       = 1024
	pollStep             = 100 * time.Millisecond // doormand's usleep(100000)
)

// Log levels, as doormand names them.
const (
	lvEmerg  = 0
	lvError  = 3
	lvWarn   = 4
	lvNotice = 5
	lvInfo   = 6
	lvDebug  = 7
)

var levelNames = [...]string{"emerg", "alert", "crit", "error", "warn", "notice", "info", "debug"}

type phase int

const (
	waitSYN      phase = iota // broad rule in place, waiting for the client's SYN
	establishing              // narrow rule in place, waiting for ESTABLISHED
	connected                 // watching the connection
)

// rule is one firewall rule this action added (or is adding).
type rule struct {
	door  Door
	addr  netip.Addr
	args  string // " iface src sport dst dport"
	entry journal.Entry
	// retry: a failed delete, tried again at entry.Due.
	retry bool
}

func (r *rule) addLine() string { return r.door.Add + r.args }
func (r *rule) delLine() string { return r.door.Del + r.args }

type lkey struct {
	door string
	addr netip.Addr
	port uint16
}

// life is one knock's lifecycle.
type life struct {
	key    lkey
	door   Door
	guest  string
	iface  string
	dst    netip.Addr
	phase  phase
	broad  *rule
	narrow *rule
	sport  uint16
	due    time.Time
	polls  int // establishing: checks left
	comm   string
	pid    string
}

func (l *life) conn() Conn {
	return Conn{Local: netip.AddrPortFrom(l.dst, l.key.port), Remote: netip.AddrPortFrom(l.key.addr, l.sport)}
}

// Action runs the lifecycle of every doorman door's knocks.
type Action struct {
	opt     Options
	doors   map[string]Door
	lives   []*life        // in start order
	waiting map[lkey]*life // lives in waitSYN
	retries []*rule        // rules whose delete failed
	now     time.Time      // the clock in replay
	dropped uint64
}

// New returns an Action for doors.
func New(doors []Door, opt Options) *Action {
	if opt.Script == nil {
		opt.Script = Shell(DefaultScriptTimeout)
	}
	if opt.Logf == nil {
		opt.Logf = actions.Discard
	}
	if opt.MaxOpen <= 0 {
		opt.MaxOpen = DefaultMaxOpen
	}
	a := &Action{opt: opt, waiting: map[lkey]*life{}}
	a.SetDoors(doors)
	return a
}

// SetDoors replaces the doors (reload). Knocks in progress keep the door
// they started with: their rules were rendered with its scripts.
func (a *Action) SetDoors(doors []Door) {
	a.doors = make(map[string]Door, len(doors))
	for _, d := range doors {
		a.doors[d.Key] = d
	}
}

func (a *Action) clock() time.Time {
	if a.opt.Now != nil {
		return a.opt.Now()
	}
	return a.now
}

func (a *Action) logf(d Door, level int, format string, args ...any) {
	if level > d.LogLevel {
		return
	}
	a.opt.Logf("%s: %s: %s", d.Name, levelNames[level&7], fmt.Sprintf(format, args...))
}

// Handle takes a Knock or a Connect event.
func (a *Action) Handle(ctx context.Context, ev actions.Event) {
	if ev.Time.After(a.now) {
		a.now = ev.Time
	}
	switch ev.Kind {
	case actions.Knock:
		a.knock(ctx, ev)
	case actions.Connect:
		a.connect(ctx, ev)
	}
}

func (a *Action) knock(ctx context.Context, ev actions.Event) {
	d, ok := a.doors[ev.Door]
	if !ok {
		return
	}
	key := lkey{ev.Door, ev.Addr, ev.Port}
	if l := a.waiting[key]; l != nil {
		// A second knock while the broad rule waits for the SYN: one
		// rule, waited for longer (doormand forks a second child and
		// adds the same rule twice). Its lines name the guest who
		// knocked: another guest behind the same address (a NAT) takes
		// the wait over, and the SYN is logged under its name.
		l.due = a.clock().Add(d.Waitfor)
		a.opt.Tally.Knock(ev.Door, actions.Accepted, "")
		guest := ev.Guest
		if guest == l.guest {
			a.logf(d, lvDebug, "%s@%s knocked again for port %d; still waiting for the SYN", guest, ev.Addr, ev.Port)
			return
		}
		a.logf(d, lvDebug, "%s@%s knocked for port %d while the rule added for %s waits; one rule, now waiting for %s's SYN", guest, ev.Addr, ev.Port, l.guest, guest)
		l.guest = guest
		return
	}
	if len(a.lives) >= a.opt.MaxOpen {
		if a.dropped++; a.dropped&(a.dropped-1) == 0 {
			a.logf(d, lvError, "%d knocks in progress; knock from %s dropped (%d so far)", len(a.lives), ev.Addr, a.dropped)
		}
		a.opt.Tally.Knock(ev.Door, actions.Refused, ReasonTooMany)
		return
	}
	dst := ev.Dst
	if !dst.Is4() || !ev.Addr.Is4() {
		a.logf(d, lvError, "knock from %s: no IPv4 destination address; ignored", ev.Addr)
		a.opt.Tally.Knock(ev.Door, actions.Refused, ReasonNoIPv4Dst)
		return
	}
	l := &life{key: key, door: d, guest: ev.Guest, dst: dst, iface: a.iface(d, dst)}
	l.broad = a.newRule(l, 0)
	if why := a.add(ctx, l, l.broad); why != "" {
		a.opt.Tally.Knock(ev.Door, actions.Refused, why)
		return
	}
	a.opt.Tally.Knock(ev.Door, actions.Accepted, "")
	l.phase = waitSYN
	l.due = a.clock().Add(d.Waitfor)
	a.lives = append(a.lives, l)
	a.waiting[key] = l
}

// iface is $1: the door's Interface, else the interface that holds the
// knocked address.
func (a *Action) iface(d Door, dst netip.Addr) string {
	if d.Interface != "" {
		return d.Interface
	}
	if a.opt.IfaceOf != nil {
		if name := a.opt.IfaceOf(dst); validIface(name) {
			return name
		}
	}
	return "any"
}

// validIface: what may reach a shell line as $1.
func validIface(s string) bool {
	if s == "" || len(s) > 15 || s[0] == '-' {
		return false
	}
	for _, c := range []byte(s) {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == ':' || c == '@' || c == '-'
		if !ok {
			return false
		}
	}
	return true
}

func (a *Action) newRule(l *life, sport uint16) *rule {
	// Only validated values reach the shell: an interface name checked by
	// validIface, addresses rendered by netip, integers.
	r := &rule{door: l.door, addr: l.key.addr, args: fmt.Sprintf(" %s %s %d %s %d", l.iface, l.key.addr, sport, l.dst, l.key.port)}
	now := a.clock()
	r.entry = journal.Entry{Door: l.key.door, Name: l.door.Name, Addr: l.key.addr.String(), Stop: r.delLine(), Due: now.Add(l.door.Waitfor),
		Opened: now, Port: l.key.port} // Opened, Port: for knockd --status
	return r
}

// add journals r and runs the add script. On failure it deletes what the
// knock added (r itself too, in case the script half-worked) and ends the
// knock; it returns "" if the lifecycle goes on, else why not (one of
// Reasons).
func (a *Action) add(ctx context.Context, l *life, r *rule) string {
	if a.opt.Store != nil {
		e, err := a.opt.Store.OpenDoor(r.entry)
		if err != nil {
			a.logf(l.door, lvError, "cannot record the rule in the journal, not adding it: %v", err)
			a.abort(ctx, l, r, false)
			return ReasonJournal
		}
		r.entry = e
	}
	if a.run(ctx, l.door, r.addLine()).Fatal {
		a.abort(ctx, l, r, true)
		return ReasonScript
	}
	return ""
}

// abort ends l after adding failed could not be done. If its add script
// ran (ran), failed gets one delete attempt without retries, in case the
// script half-worked: it answered failure, so the rule is most likely not
// there, and a retried delete of a missing rule would fail forever. Every
// other rule l has in place is deleted, with retries.
func (a *Action) abort(ctx context.Context, l *life, failed *rule, ran bool) {
	a.logf(l.door, lvWarn, "removing the firewall rules added for %s@%s -> %d", l.guest, l.key.addr, l.key.port)
	if ran {
		a.run(ctx, l.door, failed.delLine())
		a.forget(l.door, failed)
	}
	for _, r := range []*rule{l.broad, l.narrow} {
		if r != nil && r != failed {
			a.del(ctx, r)
		}
	}
	a.end(l)
}

// del runs r's delete script; on failure r is retried with backoff and
// stays in the journal, up to journal.MaxAttempts times in all.
func (a *Action) del(ctx context.Context, r *rule) {
	if a.run(ctx, r.door, r.delLine()).Fatal {
		r.entry.Failures++
		backoff, again := journal.Retry(r.entry.Failures)
		if !again {
			a.logf(r.door, lvError, "firewall rule%s could not be deleted (%d times), giving up; delete it by hand: %s", r.args, r.entry.Failures, r.delLine())
			a.forget(r.door, r)
			return
		}
		r.entry.Due = a.clock().Add(backoff)
		if a.opt.Store != nil && r.entry.ID != 0 {
			if err := a.opt.Store.UpdateDoor(r.entry); err != nil {
				a.logf(r.door, lvError, "journal update failed: %v", err)
			}
		}
		a.logf(r.door, lvWarn, "firewall rule%s could not be deleted (%d times); retrying in %v", r.args, r.entry.Failures, backoff)
		if !r.retry {
			r.retry = true
			a.retries = append(a.retries, r)
		}
		return
	}
	a.forget(r.door, r)
}

// forget closes r's journal record: the rule is gone.
func (a *Action) forget(d Door, r *rule) {
	if r.retry {
		r.retry = false
		a.retries = slices.DeleteFunc(a.retries, func(x *rule) bool { return x == r })
	}
	if a.opt.Store != nil && r.entry.ID != 0 {
		if err := a.opt.Store.CloseDoor(r.entry.ID); err != nil {
			a.logf(d, lvError, "rule deleted but the journal could not record it (it will be deleted again at next start): %v", err)
		}
		r.entry.ID = 0
	}
}

// run runs one script line and logs its answer as doormand does.
func (a *Action) run(ctx context.Context, d Door, line string) Outcome {
	a.logf(d, lvDebug, "run script: '%s'", line)
	first, got, err := a.opt.Script(ctx, line)
	if err != nil {
		a.logf(d, lvEmerg, "Can't run script '%s': %v", line, err)
		return Outcome{Fatal: true, Bad: true}
	}
	if got {
		a.logf(d, lvDebug, "output from script: '%s'", first)
	}
	o := Interpret(first, got)
	switch {
	case o.OK:
	case o.Bad && !got:
		a.logf(d, lvEmerg, "Bad (or no) output from script %s", line)
	case o.Bad:
		a.logf(d, lvEmerg, "Bad output from script %s : \"%s\"", line, first)
	default:
		a.logf(d, o.Level, "script'%s' returned \"%s\"; Exiting.", line, first)
	}
	return o
}

func (a *Action) connect(ctx context.Context, ev actions.Event) {
	key := lkey{ev.Door, ev.Addr, ev.Port}
	l := a.waiting[key]
	if l == nil {
		return // timed out already, or the SYN of a connection we watch
	}
	delete(a.waiting, key)
	l.sport = ev.SrcPort
	a.logf(l.door, lvDebug, "Initial SYN packet detected, %s@%s:%d -> %d", l.guest, l.key.addr, l.sport, l.key.port)
	l.narrow = a.newRule(l, l.sport)
	if a.add(ctx, l, l.narrow) != "" {
		return
	}
	// doormand's documented order: narrow rule in, then broad rule out.
	broad := l.broad
	l.broad = nil
	a.del(ctx, broad)
	if a.opt.Sockets == nil {
		// Replay: there is no socket table to watch, so the connection
		// is taken to end at once (see docs/doorman.md).
		a.logf(l.door, lvInfo, "no socket table in replay: taking %s@%s:%d as closed", l.guest, l.key.addr, l.sport)
		a.finish(ctx, l)
		return
	}
	l.phase = establishing
	// Checks at 0, 100 ms, … up to and including Connection_Delay_1
	// (doormand checks while i < delay and gives up 100 ms after the
	// last check).
	l.polls = int(l.door.Delay1/pollStep) + 1
	l.due = a.clock()
}

// finish deletes l's narrow rule and ends it.
func (a *Action) finish(ctx context.Context, l *life) {
	if l.narrow != nil {
		a.del(ctx, l.narrow)
		l.narrow = nil
	}
	a.end(l)
}

func (a *Action) end(l *life) {
	if a.waiting[l.key] == l {
		delete(a.waiting, l.key)
	}
	a.lives = slices.DeleteFunc(a.lives, func(x *life) bool { return x == l })
}

// Advance does what is due by now: SYN timeouts, connection checks, and
// retries of failed deletes.
func (a *Action) Advance(ctx context.Context, now time.Time) {
	if now.After(a.now) {
		a.now = now
	}
	var poll []*life
	for _, l := range slices.Clone(a.lives) {
		if l.due.After(now) {
			continue
		}
		switch l.phase {
		case waitSYN:
			a.logf(l.door, lvWarn, "Timed out waiting for SYN packet. Exiting.")
			a.abortQuiet(ctx, l)
		default:
			poll = append(poll, l)
		}
	}
	if len(poll) > 0 {
		a.poll(ctx, poll)
	}
	for _, r := range slices.Clone(a.retries) {
		if !r.entry.Due.After(now) {
			a.del(ctx, r)
		}
	}
}

// abortQuiet deletes l's rules without the "removing" line: the timeout
// is the normal end of a knock nobody used.
func (a *Action) abortQuiet(ctx context.Context, l *life) {
	for _, r := range []*rule{l.broad, l.narrow} {
		if r != nil {
			a.del(ctx, r)
		}
	}
	a.end(l)
}

// poll reads the socket table once for every connection due a check.
func (a *Action) poll(ctx context.Context, ls []*life) {
	conns := make([]Conn, len(ls))
	for i, l := range ls {
		conns[i] = l.conn()
	}
	socks, err := a.opt.Sockets.Lookup(conns)
	if err != nil {
		// Without the table nothing can be known: treat every watched
		// connection as gone rather than keep rules open blindly.
		a.logf(ls[0].door, lvError, "%v", err)
	}
	for i, l := range ls {
		s := socks[conns[i]]
		switch l.phase {
		case establishing:
			if s.Established {
				l.comm, l.pid = "?", "?"
				if comm, pid, ok := a.opt.Sockets.Owner(s.Inode); ok {
					l.comm, l.pid = comm, fmt.Sprint(pid)
				}
				a.logf(l.door, lvInfo, "connection established,  %s@%s:%d -> %s(pid %s)", l.guest, l.key.addr, l.sport, l.comm, l.pid)
				l.phase = connected
				l.due = a.clock().Add(l.door.Delay2)
				continue
			}
			if l.polls--; l.polls > 0 {
				l.due = a.clock().Add(pollStep)
				continue
			}
			a.logf(l.door, lvWarn, "connection attempt time-out,  %s@%s -> %d", l.guest, l.key.addr, l.key.port)
			a.finish(ctx, l)
		case connected:
			if s.Established {
				l.due = a.clock().Add(l.door.Delay2)
				continue
			}
			a.logf(l.door, lvInfo, "%s(pid %s) (%s@%s:%d) has stopped running.", l.comm, l.pid, l.guest, l.key.addr, l.sport)
			a.finish(ctx, l)
		}
	}
}

// Next is when Advance next has work.
func (a *Action) Next() (t time.Time, ok bool) {
	for _, l := range a.lives {
		if !ok || l.due.Before(t) {
			t, ok = l.due, true
		}
	}
	for _, r := range a.retries {
		if !ok || r.entry.Due.Before(t) {
			t, ok = r.entry.Due, true
		}
	}
	return t, ok
}

// Open is how many knocks are in progress and how many rule deletes wait
// for a retry.
func (a *Action) Open() (knocks, retries int) { return len(a.lives), len(a.retries) }

// Close deletes every rule still present, once each (SIGTERM, end of
// replay). A delete that fails stays in the journal: the next start runs
// it again.
func (a *Action) Close(ctx context.Context) {
	for _, l := range slices.Clone(a.lives) {
		if l.phase == connected {
			a.logf(l.door, lvWarn, "Quitting because the daemon is shutting down. Connection: '%s(pid %s) (%s@%s:%d)' is cut off.", l.comm, l.pid, l.guest, l.key.addr, l.sport)
		}
		for _, r := range []*rule{l.broad, l.narrow} {
			if r != nil {
				a.closeRule(ctx, r)
			}
		}
		a.end(l)
	}
	for _, r := range slices.Clone(a.retries) {
		a.closeRule(ctx, r)
	}
	a.retries = nil
}

func (a *Action) closeRule(ctx context.Context, r *rule) {
	if a.run(ctx, r.door, r.delLine()).Fatal {
		a.logf(r.door, lvWarn, "firewall rule%s could not be deleted at shutdown; the next start will delete it", r.args)
		return
	}
	a.forget(r.door, r)
}
