// Package sequence detects knockd-style port sequences: ordered TCP/UDP hits
// from one source address, within a timeout measured from the first hit.
//
// The matching rules are knockd's (../shared/specs/knockd.md §5) with its
// bugs fixed:
//   - attempts are kept per source, so one source's failure, success or
//     timeout never removes another source's attempt (knockd's list-head bug);
//   - an exact repeat of the element just matched (a SYN retransmitted by
//     telnet or nc, a second UDP datagram) is ignored instead of resetting;
//   - a packet that invalidates an attempt may itself start a new one, so
//     "7000 8000 7000 8000 9000" opens;
//   - timeouts use the packets' full time resolution, not whole seconds, and
//     are also swept by Expire, so "sequence timeout" is logged when it
//     happens rather than at the next packet (knockd #71).
//
// Attempts live in an internal/srctable table of Options.MaxSources
// sources, whose eviction rule keeps a real knocker working under spoofed
// floods (see that package). A source has at most one attempt per door and
// at most maxAttempts at once; a first hit beyond that replaces the
// attempt with the least progress, the oldest of those.
package sequence

import (
	"errors"
	"math"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/doorward/doorward/actions"
	"github.com/doorward/doorward/config/knockd"
	"github.com/doorward/doorward/detectors"
	"github.com/doorward/doorward/formats/rotating"
	fseq "github.com/doorward/doorward/formats/sequence"
	"github.com/doorward/doorward/internal/ratelimit"
	"github.com/doorward/doorward/internal/srctable"
)

// Step is one element of a sequence: the sequence grammar's Knock (a port
// and its protocol), so a door's config, a one-time line and the detector
// share one type and one spelling (fseq.Format).
type Step = fseq.Knock

// Door is one knockd door as the detector sees it.
type Door struct {
	Key      string // identifies the door in events (unique)
	Name     string // section name, for log lines
	Seq      []Step
	Timeout  time.Duration
	FlagMask detectors.TCPFlags // TCP only: flags&FlagMask must equal FlagWant
	FlagWant detectors.TCPFlags
	Target   netip.Addr // invalid: any local address (the capture filter checks those)

	// OneTime, when set, supplies Seq: the first unused line of a
	// one-time sequence file, consumed by each successful knock.
	OneTime OneTime
	used    bool // OneTime's sequence was used by the packet being observed

	// Rotating, when set, derives the sequences instead (rotating.go);
	// Seq is empty.
	Rotating *Rotating
}

// OneTime is a one-time sequence file as a token space of the state layer
// (actions.OneTimeLines; actions/filestore.OneTime is the embedded one):
// the list of sequences to read, and the spending of one as one Store
// call.
type OneTime interface {
	// Current is the active sequence; ok is false when none is left.
	Current() (seq []knockd.Knock, line int, ok bool)
	// Spend, with the token sequence.Format(seq), durably marks the line
	// holding seq used. Unless it returns Fresh and no error the door
	// must not open: a sequence that cannot be marked used could be
	// replayed.
	actions.Tokens
	// Changed reports whether the file was edited since it was read.
	Changed() (bool, error)
	// Reload reads the file again.
	Reload() error
	Path() string
}

func (d *Door) targetOK(dst netip.Addr) bool {
	return !d.Target.IsValid() || d.Target == dst
}

func (d *Door) flagsOK(p *detectors.Packet) bool {
	return p.Proto != detectors.TCP || p.Flags&d.FlagMask == d.FlagWant
}

// is reports whether p is step s of a sequence.
func is(s Step, p *detectors.Packet) bool {
	return s.Port == p.DstPort && s.Proto == p.Proto
}

// DefaultMaxSources bounds the per-source table.
const DefaultMaxSources = 1 << 16

// maxAttempts bounds the attempts a source has at once: the doors whose
// sequence it is in the middle of. Each source reserves room for
// min(maxAttempts, multi-step doors).
const maxAttempts = 8

// Defaults for Options.LogRate and LogBurst: enough for every line of any
// real knock, far too few for a flood to fill a disk.
const (
	DefaultLogRate  = 50
	DefaultLogBurst = 500
)

// Options tune a Detector.
type Options struct {
	Logf       actions.Logf
	MaxSources int // 0: DefaultMaxSources
	// LogRate and LogBurst limit the lines an attacker can cause (Stage,
	// sequence timeout) to LogRate a second after a burst of LogBurst; the
	// next line after a gap says how many were left out. 0: defaults
	// (DefaultLogRate, DefaultLogBurst); a negative LogRate: unlimited.
	LogRate, LogBurst float64
	// LogSuppressed, if set, also counts the lines left out (metrics).
	LogSuppressed *atomic.Uint64
	// RulesChanged is called when a door's sequence changed (a one-time
	// sequence was used or its file edited), so the caller can rebuild
	// the dispatch index and the capture filter.
	RulesChanged func()
	// Store is where rotating doors spend their windows (Commit opens
	// its space); nil refuses every rotating knock.
	Store actions.Store
}

// attempt is one door's sequence in progress from one source. No pointer
// (a time.Time has one), so the table's slabs are not scanned by the GC.
type attempt struct {
	door  int32
	stage int32 // elements matched so far
	start int64 // UnixNano of the first hit
	win   int64 // a rotating door's window whose sequence this is; else 0
}

// source is a source's entry in the table: how many of its slab's
// attempts are in use.
type source struct{ n int32 }

// Detector holds every sequence door and the attempts in progress.
type Detector struct {
	doors   []Door
	first   map[uint32][]int // (proto, port) → doors whose first element it is
	sources *srctable.Table[source, attempt]
	logf    actions.Logf
	lim     *ratelimit.Limiter
	changed func()
	rs      rotatingState
	// Evicted counts sources dropped to make room while they could still
	// have completed a knock.
	Evicted uint64
}

func key(proto detectors.Proto, port uint16) uint32 { return uint32(proto)<<16 | uint32(port) }

// New builds a detector for doors. Doors with an empty sequence are kept (a
// one-time-sequence door whose file ran out) but can never match.
func New(doors []Door, opt Options) *Detector {
	d := &Detector{
		doors:   doors,
		first:   map[uint32][]int{},
		logf:    opt.Logf,
		changed: opt.RulesChanged,
	}
	if d.changed == nil {
		d.changed = func() {}
	}
	d.lim = ratelimit.Configured(opt.LogRate, opt.LogBurst, DefaultLogRate, DefaultLogBurst, opt.LogSuppressed)
	maxSources := opt.MaxSources
	if maxSources <= 0 {
		maxSources = DefaultMaxSources
	}
	multi := 0
	for _, door := range doors {
		if len(door.Seq) > 1 || door.OneTime != nil || door.Rotating != nil && door.Rotating.Params.Length > 1 {
			multi++
		}
	}
	d.sources = srctable.New[source, attempt](maxSources, min(max(multi, 1), maxAttempts))
	if d.logf == nil {
		d.logf = actions.Discard
	}
	for i := range d.doors {
		if d.doors[i].OneTime != nil {
			d.doors[i].Seq = d.current(&d.doors[i])
		}
	}
	d.initRotating(opt.Store)
	d.index()
	return d
}

// index rebuilds the first-port index, after New and whenever a one-time
// sequence changes.
func (d *Detector) index() {
	clear(d.first)
	for i, door := range d.doors {
		if len(door.Seq) > 0 {
			k := key(door.Seq[0].Proto, door.Seq[0].Port)
			d.first[k] = append(d.first[k], i)
		}
	}
}

// current reads door's active one-time sequence; nil disables the door.
func (d *Detector) current(door *Door) []Step {
	seq, _, ok := door.OneTime.Current()
	if !ok {
		d.logf("no more sequences left in the one time sequences file for door %s --> disabling the door", door.Name)
		return nil
	}
	return seq
}

// Rules asks for each door's ports, with its flag filter on the TCP ones and
// its Target as the destination.
func (d *Detector) Rules() []detectors.Rule {
	var rules []detectors.Rule
	for _, door := range d.doors {
		var dst []netip.Addr
		if door.Target.IsValid() {
			dst = []netip.Addr{door.Target}
		}
		var tcp, udp []uint16
		if r := door.Rotating; r != nil {
			// The whole set, so the filter and the index never change.
			if r.Params.Mode != rotating.UDP {
				tcp = r.Params.Ports.List()
			}
			if r.Params.Mode != rotating.TCP {
				udp = r.Params.Ports.List()
			}
		}
		for _, s := range door.Seq {
			if s.Proto == detectors.UDP {
				udp = append(udp, s.Port)
			} else {
				tcp = append(tcp, s.Port)
			}
		}
		if len(tcp) > 0 {
			rules = append(rules, detectors.Rule{Dst: dst, Proto: detectors.TCP, Ports: tcp, FlagMask: door.FlagMask, FlagWant: door.FlagWant})
		}
		if len(udp) > 0 {
			rules = append(rules, detectors.Rule{Dst: dst, Proto: detectors.UDP, Ports: udp})
		}
	}
	return rules
}

// Observe advances, ignores or invalidates the source's attempts, then tries
// the packet as a first knock for every door it has no attempt for.
func (d *Detector) Observe(p *detectors.Packet, emit func(actions.Event)) {
	sk := srctable.AddrKey(p.Src)
	now := p.Time.UnixNano()
	if now >= d.rs.until || now < d.rs.from {
		if len(d.rs.rot) > 0 {
			d.roll(p.Time)
		} else {
			d.rs.from, d.rs.until = math.MinInt64, math.MaxInt64
		}
	}
	ref, spot, found := d.sources.Lookup(sk)
	var atts []attempt // the source's attempts, in its slab
	// Doors this packet completed must not restart on the same packet (a
	// sequence like "1,1" would otherwise open and restart at once).
	var doneBuf [4]int
	done := doneBuf[:0]
	if found {
		atts = d.sources.Slab(ref)[:d.sources.Val(ref).n]
		kept := atts[:0]
		for _, a := range atts {
			door := &d.doors[a.door]
			seq := d.seqOf(door, a.door, a.win)
			switch {
			case len(seq) == 0:
				// A rotating window no longer accepted: its sequence
				// can never complete.
			case !door.targetOK(p.Dst):
				kept = append(kept, a)
			case now-a.start >= int64(door.Timeout):
				if d.allow(p.Time) {
					d.logf("%s: %s: sequence timeout (stage %d)", p.Src, door.Name, a.stage)
				}
			case !door.flagsOK(p):
				// knockd ignores a TCP packet that fails the door's flags.
				kept = append(kept, a)
			case is(seq[a.stage], p):
				a.stage++
				if d.allow(p.Time) {
					d.logf("%s: %s: Stage %d", p.Src, door.Name, a.stage)
				}
				if int(a.stage) == len(seq) {
					done = append(done, int(a.door))
					d.open(int(a.door), a.win, p, emit)
					continue
				}
				kept = append(kept, a)
			case is(seq[a.stage-1], p):
				// A retransmission of the hit just matched.
				kept = append(kept, a)
			default:
				// Wrong port: the attempt is invalidated, silently as in knockd.
			}
		}
		atts = kept
	}
	for _, di := range d.first[key(p.Proto, p.DstPort)] {
		door := &d.doors[di]
		if !door.targetOK(p.Dst) || !door.flagsOK(p) || has(atts, di) || contains(done, di) {
			continue
		}
		if len(door.Seq) == 1 {
			if d.allow(p.Time) {
				d.logf("%s: %s: Stage 1", p.Src, door.Name)
			}
			d.open(di, 0, p, emit)
			done = append(done, di)
			continue
		}
		ref, found, atts = d.start(ref, spot, found, atts, attempt{door: int32(di), stage: 1, start: now}, p)
	}
	if len(d.rs.rents) > 0 {
		if e, ok := d.rs.rfirst[key(p.Proto, p.DstPort)]; ok {
			for ; e >= 0; e = d.rs.rents[e].next {
				re := d.rs.rents[e]
				di := int(re.door)
				door := &d.doors[di]
				if !door.targetOK(p.Dst) || !door.flagsOK(p) || hasWin(atts, di, re.win) || contains(done, di) {
					continue
				}
				if door.Rotating.Params.Length == 1 {
					if d.allow(p.Time) {
						d.logf("%s: %s: Stage 1", p.Src, door.Name)
					}
					d.open(di, re.win, p, emit)
					done = append(done, di)
					continue
				}
				ref, found, atts = d.start(ref, spot, found, atts, attempt{door: re.door, stage: 1, start: now, win: re.win}, p)
			}
		}
	}
	if found {
		d.store(ref, atts, now)
	}
	// One-time doors that opened move to their next sequence only now, so
	// the loops above saw one consistent set of doors.
	for _, di := range done {
		if door := &d.doors[di]; door.OneTime != nil && door.used {
			door.used = false
			d.setSeq(di, d.current(door))
		}
	}
}

// start begins attempt a for the packet's source, creating its entry if
// it has none yet.
func (d *Detector) start(ref srctable.Ref, spot srctable.Spot, found bool, atts []attempt, a attempt, p *detectors.Packet) (srctable.Ref, bool, []attempt) {
	if !found {
		ref, found = d.newSource(spot, p.Time), true
		atts = d.sources.Slab(ref)[:0]
	}
	if d.allow(p.Time) {
		d.logf("%s: %s: Stage 1", p.Src, d.doors[a.door].Name)
	}
	return ref, found, addAttempt(atts, a)
}

// addAttempt appends a to atts, which lives in a slab; when the slab is
// full a replaces the attempt with the least progress, the oldest of those.
func addAttempt(atts []attempt, a attempt) []attempt {
	if len(atts) < cap(atts) {
		return append(atts, a)
	}
	v := 0
	for i, b := range atts {
		if b.stage < atts[v].stage || b.stage == atts[v].stage && b.start < atts[v].start {
			v = i
		}
	}
	atts[v] = a
	return atts
}

// store writes back a source's attempts after a packet from it: its entry
// goes when none is left, otherwise it counts as active now, with the
// deadline of its last attempt to time out and progress if any attempt is
// past its first hit.
func (d *Detector) store(ref srctable.Ref, atts []attempt, now int64) {
	if len(atts) == 0 {
		d.sources.Delete(ref)
		return
	}
	d.sources.Val(ref).n = int32(len(atts))
	dead, progress := d.window(atts)
	d.sources.Hit(ref, now, dead, progress)
}

// window is when the last of atts times out, and whether any made
// progress.
func (d *Detector) window(atts []attempt) (dead int64, progress bool) {
	for _, a := range atts {
		dead = max(dead, a.start+int64(d.doors[a.door].Timeout))
		progress = progress || a.stage > 1
	}
	return dead, progress
}

// open completes a knock. For a one-time door the sequence is marked used
// on disk first, and only then is the event emitted (knockd opens first and
// can crash before marking).
func (d *Detector) open(di int, win int64, p *detectors.Packet, emit func(actions.Event)) {
	door := &d.doors[di]
	if door.Rotating != nil {
		if why, quiet := d.spendWindow(door, win, p.Time); why != "" {
			if !quiet && d.allow(p.Time) {
				d.logf("%s: %s: %s, door not opened", p.Src, door.Name, why)
			}
			return
		}
	}
	if door.OneTime != nil {
		spent, err := door.OneTime.Spend(p.Time, []byte(fseq.Format(door.Seq)))
		if err == nil && !spent.Fresh {
			err = errUsed
		}
		if err != nil {
			// A shared store that is unreachable logged the outage once;
			// the knock is refused all the same.
			if !errors.Is(err, actions.ErrUnavailable) {
				d.logf("%s: %s: could not mark the one-time sequence used, door not opened: %v", p.Src, door.Name, err)
			}
			return
		}
		door.used = true
	}
	// Anyone who knows the sequence can complete it from spoofed
	// sources: limited like the Stage lines (the knock itself is not).
	if d.allow(p.Time) {
		d.logf("%s: %s: OPEN SESAME", p.Src, door.Name)
	}
	emit(actions.Event{Door: door.Key, Addr: p.Src, Time: p.Time, Sender: p.Src})
}

// errUsed: the state layer says the sequence was spent already (by another
// host sharing it); the embedded backend says why in its error.
var errUsed = errors.New("the sequence was used already")

// setSeq gives door di a new sequence and drops every attempt at the old
// one: their stages mean nothing for the new ports.
func (d *Detector) setSeq(di int, seq []Step) {
	d.doors[di].Seq = seq
	for ref := range d.sources.All() {
		src := d.sources.Val(ref)
		atts := slices.DeleteFunc(d.sources.Slab(ref)[:src.n], func(a attempt) bool { return int(a.door) == di })
		if src.n = int32(len(atts)); src.n == 0 {
			d.sources.Delete(ref)
		}
	}
	d.index()
	d.changed()
}

// Poll re-reads one-time sequence files that were edited since they were
// read (the daemon calls it every second), so an admin may append or edit
// lines while the daemon runs; knockd's man page forbids it.
func (d *Detector) Poll() {
	for i := range d.doors {
		door := &d.doors[i]
		if door.OneTime == nil {
			continue
		}
		changed, err := door.OneTime.Changed()
		if err == nil && changed {
			err = door.OneTime.Reload()
		}
		if err != nil {
			d.logf("%s: one-time sequences file %s: %v", door.Name, door.OneTime.Path(), err)
			continue
		}
		if !changed {
			continue
		}
		if seq := d.current(door); !slices.Equal(seq, door.Seq) {
			d.logf("%s: one-time sequences file %s changed, now expecting %s", door.Name, door.OneTime.Path(), fseq.Format(seq))
			d.setSeq(i, seq)
		}
	}
}

func has(atts []attempt, door int) bool {
	for _, a := range atts {
		if int(a.door) == door {
			return true
		}
	}
	return false
}

// hasWin is has for one window of a rotating door: a source may follow
// several of its windows at once.
func hasWin(atts []attempt, door int, win int64) bool {
	for _, a := range atts {
		if int(a.door) == door && a.win == win {
			return true
		}
	}
	return false
}

func contains(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// newSource starts tracking a source; a full table makes room as
// internal/srctable says. Its deadline is set by store.
func (d *Detector) newSource(at srctable.Spot, now time.Time) srctable.Ref {
	ref, ev := d.sources.InsertAt(at, now.UnixNano(), now.UnixNano())
	if ev == srctable.Live {
		d.Evicted++
		if d.Evicted&(d.Evicted-1) == 0 && d.allow(now) {
			d.logf("too many sources knocking at once (%d), dropped %d unfinished knocks", d.sources.Max(), d.Evicted)
		}
	}
	return ref
}

// Expire drops attempts whose timeout passed by now, logging each as knockd
// does. Replay calls it about once a second and at the end; the live
// daemon sweeps a part at a time (ExpirePart), all parts once a second.
// Timeouts are logged in the order they happened, so replays are
// reproducible whatever the map order.
//
// The second after a flood a whole table times out at once, and the
// limiter lets only its burst of lines through, the first ones in that
// order: only those are kept and sorted, the rest are only counted, so the
// sweep neither builds nor sorts 65,536 lines to log a few hundred.
func (d *Detector) Expire(now time.Time) { d.ExpirePart(now, 0, 1) }

// ExpirePart is Expire over the part-th of parts slices of the table
// (detectors.PartExpirer). The lines a part logs are in order among
// themselves.
func (d *Detector) ExpirePart(now time.Time, part, parts int) {
	keep := math.MaxInt // lines the limiter may let through at now
	if d.lim != nil && d.lim.Rate > 0 {
		keep = max(1, int(math.Ceil(d.lim.Burst)))
	}
	var gone []expired
	trimmed := false // gone holds the keep first so far, sorted
	n := 0           // timeouts
	t := now.UnixNano()
	for ref := range d.sources.Part(part, parts) {
		src := d.sources.Val(ref)
		kept := d.sources.Slab(ref)[:0]
		for _, a := range d.sources.Slab(ref)[:src.n] {
			door := &d.doors[a.door]
			due := a.start + int64(door.Timeout)
			if due > t {
				kept = append(kept, a)
				continue
			}
			n++
			if trimmed && due > gone[keep-1].due.UnixNano() {
				continue // later than every line that can be logged
			}
			if keep < math.MaxInt/2 && len(gone) == 2*keep {
				slices.SortFunc(gone, expired.compare)
				gone, trimmed = gone[:keep], true
			}
			gone = append(gone, expired{time.Unix(0, due), d.sources.Key(ref).Addr(), door.Name, int(a.stage)})
		}
		if src.n = int32(len(kept)); src.n == 0 {
			d.sources.Delete(ref)
		} else {
			dead, _ := d.window(kept)
			d.sources.SetDeadline(ref, dead)
		}
	}
	slices.SortFunc(gone, expired.compare)
	gone = gone[:min(len(gone), keep)]
	for _, g := range gone {
		if d.allow(now) {
			d.logf("%s: %s: sequence timeout (stage %d)", g.addr, g.door, g.stage)
		}
	}
	for range n - len(gone) {
		d.allow(now) // suppressed: counted for the next line let through
	}
}

type expired struct {
	due   time.Time
	addr  netip.Addr
	door  string
	stage int
}

// compare orders timeouts as they are logged.
func (a expired) compare(b expired) int {
	if c := a.due.Compare(b.due); c != 0 {
		return c
	}
	if c := a.addr.Compare(b.addr); c != 0 {
		return c
	}
	return strings.Compare(a.door, b.door)
}

// allow reports whether an attacker-driven line may be logged at now; the
// caller builds the line only then, so suppressed lines cost nothing.
func (d *Detector) allow(now time.Time) bool {
	ok, suppressed := d.lim.Allow(now)
	if ok && suppressed > 0 {
		d.logf("%d knock log lines suppressed (more than %v a second)", suppressed, d.lim.Rate)
	}
	return ok
}

// Sources is how many sources have an attempt in progress.
func (d *Detector) Sources() int { return d.sources.Len() }

// Adopt takes over old's attempts in progress for doors whose definition did
// not change, so a reload does not cost a knocker the hits already made
// (knockd forgets every attempt on SIGHUP). Attempts of changed or removed
// doors are dropped.
func (d *Detector) Adopt(prev detectors.Detector) {
	old, ok := prev.(*Detector)
	if !ok {
		return
	}
	byKey := make(map[string]int, len(d.doors))
	for i := range d.doors {
		byKey[d.doors[i].Key] = i
	}
	remap := make([]int, len(old.doors))
	for i := range old.doors {
		remap[i] = -1
		if j, ok := byKey[old.doors[i].Key]; ok && sameDoor(&old.doors[i], &d.doors[j]) {
			remap[i] = j
		}
	}
	for oref := range old.sources.All() {
		var atts []attempt
		k := old.sources.Key(oref)
		ref, spot, found := d.sources.Lookup(k)
		if found {
			atts = d.sources.Slab(ref)[:d.sources.Val(ref).n]
		}
		for _, a := range old.sources.Slab(oref)[:old.sources.Val(oref).n] {
			j := remap[a.door]
			if j < 0 {
				continue
			}
			if !found {
				ref, found = d.newSource(spot, time.Unix(0, a.start)), true
				atts = d.sources.Slab(ref)[:0]
			}
			a.door = int32(j)
			atts = addAttempt(atts, a)
		}
		if found {
			last := int64(0)
			for _, a := range atts {
				last = max(last, a.start)
			}
			d.store(ref, atts, last)
		}
	}
}

func sameDoor(a, b *Door) bool {
	return a.Name == b.Name && slices.Equal(a.Seq, b.Seq) && a.Timeout == b.Timeout &&
		a.FlagMask == b.FlagMask && a.FlagWant == b.FlagWant && a.Target == b.Target &&
		sameRotating(a.Rotating, b.Rotating)
}

func sameRotating(a, b *Rotating) bool {
	if a == nil || b == nil {
		return a == b
	}
	p, q := &a.Params, &b.Params
	return a.Skew == b.Skew && string(p.Secret) == string(q.Secret) && p.Door == q.Door && p.Period == q.Period &&
		p.Length == q.Length && p.Ports.Equal(q.Ports) && p.Mode == q.Mode && p.Addr == q.Addr
}
