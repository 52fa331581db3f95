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
package sequence

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/doorward/doorward/actions"
	"github.com/doorward/doorward/config/knockd"
	"github.com/doorward/doorward/detectors"
	"github.com/doorward/doorward/internal/ratelimit"
)

// Step is one element of a sequence.
type Step struct {
	Port  uint16
	Proto detectors.Proto
}

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
}

// OneTime is a one-time sequence file; formats/otp.File is the real one.
type OneTime interface {
	// Current is the active sequence; ok is false when none is left.
	Current() (seq []knockd.Knock, line int, ok bool)
	// Use durably marks the line holding seq used. When it fails the door
	// must not open: a sequence that cannot be marked used could be
	// replayed.
	Use(seq []knockd.Knock) error
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

func (s Step) is(p *detectors.Packet) bool {
	return s.Port == p.DstPort && s.Proto == p.Proto
}

// DefaultMaxSources bounds the per-source table.
const DefaultMaxSources = 1 << 16

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
	// RulesChanged is called when a door's sequence changed (a one-time
	// sequence was used or its file edited), so the caller can rebuild
	// the dispatch index and the capture filter.
	RulesChanged func()
}

type attempt struct {
	door  int
	stage int // elements matched so far
	start time.Time
}

type source struct {
	attempts []attempt
}

// Detector holds every sequence door and the attempts in progress.
type Detector struct {
	doors   []Door
	first   map[uint32][]int // (proto, port) → doors whose first element it is
	sources map[netip.Addr]*source
	free    []*source
	max     int
	logf    actions.Logf
	lim     *ratelimit.Limiter
	changed func()
	// ring lists sources in creation order, for evictFresh: ringLen
	// entries from ringHead, wrapping.
	ring              []fresh
	ringHead, ringLen int
	// Evicted counts unfinished first knocks dropped to make room;
	// Refused counts first knocks dropped because no room could be made.
	Evicted, Refused uint64
}

func key(proto detectors.Proto, port uint16) uint32 { return uint32(proto)<<16 | uint32(port) }

// New builds a detector for doors. Doors with an empty sequence are kept (a
// one-time-sequence door whose file ran out) but can never match.
func New(doors []Door, opt Options) *Detector {
	d := &Detector{
		doors:   doors,
		first:   map[uint32][]int{},
		sources: map[netip.Addr]*source{},
		max:     opt.MaxSources,
		logf:    opt.Logf,
		changed: opt.RulesChanged,
	}
	if d.changed == nil {
		d.changed = func() {}
	}
	switch rate, burst := opt.LogRate, opt.LogBurst; {
	case rate < 0:
	case rate == 0:
		d.lim = ratelimit.New(DefaultLogRate, DefaultLogBurst)
	default:
		d.lim = ratelimit.New(rate, max(burst, 1))
	}
	if d.max <= 0 {
		d.max = DefaultMaxSources
	}
	if d.logf == nil {
		d.logf = actions.Discard
	}
	for i := range d.doors {
		if d.doors[i].OneTime != nil {
			d.doors[i].Seq = d.current(&d.doors[i])
		}
	}
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
	return steps(seq)
}

func knocks(seq []Step) []knockd.Knock {
	out := make([]knockd.Knock, len(seq))
	for i, s := range seq {
		out[i] = knockd.Knock{Port: s.Port, Proto: knockd.Proto(s.Proto)}
	}
	return out
}

func steps(seq []knockd.Knock) []Step {
	out := make([]Step, len(seq))
	for i, k := range seq {
		out[i] = Step{Port: k.Port, Proto: detectors.Proto(k.Proto)}
	}
	return out
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
	src := d.sources[p.Src]
	// Doors this packet completed must not restart on the same packet (a
	// sequence like "1,1" would otherwise open and restart at once).
	var doneBuf [4]int
	done := doneBuf[:0]
	if src != nil {
		kept := src.attempts[:0]
		for _, a := range src.attempts {
			door := &d.doors[a.door]
			switch {
			case !door.targetOK(p.Dst):
				kept = append(kept, a)
			case p.Time.Sub(a.start) >= door.Timeout:
				if d.allow(p.Time) {
					d.logf("%s: %s: sequence timeout (stage %d)", p.Src, door.Name, a.stage)
				}
			case !door.flagsOK(p):
				// knockd ignores a TCP packet that fails the door's flags.
				kept = append(kept, a)
			case door.Seq[a.stage].is(p):
				a.stage++
				if d.allow(p.Time) {
					d.logf("%s: %s: Stage %d", p.Src, door.Name, a.stage)
				}
				if a.stage == len(door.Seq) {
					done = append(done, a.door)
					d.open(a.door, p, emit)
					continue
				}
				kept = append(kept, a)
			case door.Seq[a.stage-1].is(p):
				// A retransmission of the hit just matched.
				kept = append(kept, a)
			default:
				// Wrong port: the attempt is invalidated, silently as in knockd.
			}
		}
		src.attempts = kept
	}
	for _, di := range d.first[key(p.Proto, p.DstPort)] {
		door := &d.doors[di]
		if !door.targetOK(p.Dst) || !door.flagsOK(p) || src.has(di) || contains(done, di) {
			continue
		}
		if len(door.Seq) == 1 {
			if d.allow(p.Time) {
				d.logf("%s: %s: Stage 1", p.Src, door.Name)
			}
			d.open(di, p, emit)
			done = append(done, di)
			continue
		}
		if src == nil {
			if src = d.newSource(p.Src, p.Time); src == nil {
				return
			}
		}
		if d.allow(p.Time) {
			d.logf("%s: %s: Stage 1", p.Src, door.Name)
		}
		src.attempts = append(src.attempts, attempt{door: di, stage: 1, start: p.Time})
	}
	if src != nil && len(src.attempts) == 0 {
		d.release(p.Src, src)
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

// open completes a knock. For a one-time door the sequence is marked used
// on disk first, and only then is the event emitted (knockd opens first and
// can crash before marking).
func (d *Detector) open(di int, p *detectors.Packet, emit func(actions.Event)) {
	door := &d.doors[di]
	if door.OneTime != nil {
		if err := door.OneTime.Use(knocks(door.Seq)); err != nil {
			d.logf("%s: %s: could not mark the one-time sequence used, door not opened: %v", p.Src, door.Name, err)
			return
		}
		door.used = true
	}
	// Anyone who knows the sequence can complete it from spoofed
	// sources: limited like the Stage lines (the knock itself is not).
	if d.allow(p.Time) {
		d.logf("%s: %s: OPEN SESAME", p.Src, door.Name)
	}
	emit(actions.Event{Door: door.Key, Addr: p.Src, Time: p.Time})
}

// setSeq gives door di a new sequence and drops every attempt at the old
// one: their stages mean nothing for the new ports.
func (d *Detector) setSeq(di int, seq []Step) {
	d.doors[di].Seq = seq
	for addr, src := range d.sources {
		src.attempts = slices.DeleteFunc(src.attempts, func(a attempt) bool { return a.door == di })
		if len(src.attempts) == 0 {
			d.release(addr, src)
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
			d.logf("%s: one-time sequences file %s changed, now expecting %s", door.Name, door.OneTime.Path(), formatSteps(seq))
			d.setSeq(i, seq)
		}
	}
}

func formatSteps(seq []Step) string {
	var b strings.Builder
	for i, s := range seq {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%d:%s", s.Port, s.Proto)
	}
	return b.String()
}

func (s *source) has(door int) bool {
	if s == nil {
		return false
	}
	for _, a := range s.attempts {
		if a.door == door {
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

// newSource starts tracking addr. When the table is full it gives up the
// oldest source that has made only its first hit: a spoofed flood at a
// first port fills the table with exactly those, while a knocker who got
// past the first hit can only be displaced by knocking correctly.
func (d *Detector) newSource(addr netip.Addr, now time.Time) *source {
	if len(d.sources) >= d.max && !d.evictFresh() {
		d.Refused++
		if d.Refused&(d.Refused-1) == 0 && d.allow(now) {
			d.logf("too many sources knocking at once (%d), refused %d first knocks", d.max, d.Refused)
		}
		return nil
	}
	var s *source
	if n := len(d.free); n > 0 {
		s, d.free = d.free[n-1], d.free[:n-1]
	} else {
		s = &source{attempts: make([]attempt, 0, 2)}
	}
	d.sources[addr] = s
	d.pushFresh(addr, now)
	return s
}

// fresh is a ring of sources in the order they were created.
type fresh struct {
	addr  netip.Addr
	start time.Time
}

// pushFresh appends to the ring; when it is full the oldest entry is
// overwritten (it is stale, or as old as any).
func (d *Detector) pushFresh(addr netip.Addr, now time.Time) {
	e := fresh{addr, now}
	if d.ring == nil {
		// Full size at once (48 bytes a source): a ring that grew while
		// wrapped would reorder itself.
		d.ring = make([]fresh, d.max)
	}
	if d.ringLen == len(d.ring) {
		d.ringHead = d.wrap(d.ringHead + 1)
		d.ringLen--
	}
	d.ring[d.wrap(d.ringHead+d.ringLen)] = e
	d.ringLen++
}

// wrap maps i in [0, 2·len) into the ring (cheaper than %, on the flood
// path).
func (d *Detector) wrap(i int) int {
	if i >= len(d.ring) {
		i -= len(d.ring)
	}
	return i
}

// evictFresh releases the oldest source that has made only its first hit,
// skipping ring entries that went stale (the source moved on or left).
func (d *Detector) evictFresh() bool {
	for d.ringLen > 0 {
		e := d.ring[d.ringHead]
		d.ringHead = d.wrap(d.ringHead + 1)
		d.ringLen--
		s := d.sources[e.addr]
		if s == nil || !s.onlyFirstHit(e.start) {
			continue
		}
		d.release(e.addr, s)
		d.Evicted++
		if d.Evicted&(d.Evicted-1) == 0 && d.allow(e.start) {
			d.logf("too many sources knocking at once (%d), dropped %d unfinished first knocks", d.max, d.Evicted)
		}
		return true
	}
	return false
}

// onlyFirstHit reports whether the source has made just the first hit of
// each attempt, all since start (the ring entry's time), so a source that
// was released and came back is not taken for its older self.
func (s *source) onlyFirstHit(start time.Time) bool {
	for _, a := range s.attempts {
		if a.stage != 1 || a.start.Before(start) {
			return false
		}
	}
	return len(s.attempts) > 0
}

func (d *Detector) release(addr netip.Addr, s *source) {
	delete(d.sources, addr)
	s.attempts = s.attempts[:0]
	if len(d.free) < 1024 {
		d.free = append(d.free, s)
	}
}

// Expire drops attempts whose timeout passed by now, logging each as knockd
// does. The daemon calls it about once a second and at the end of a replay.
// Timeouts are logged in the order they happened, so replays are
// reproducible whatever the map order.
func (d *Detector) Expire(now time.Time) {
	var gone []expired
	for addr, src := range d.sources {
		kept := src.attempts[:0]
		for _, a := range src.attempts {
			door := &d.doors[a.door]
			if due := a.start.Add(door.Timeout); !due.After(now) {
				gone = append(gone, expired{due, addr, door.Name, a.stage})
				continue
			}
			kept = append(kept, a)
		}
		src.attempts = kept
		if len(kept) == 0 {
			d.release(addr, src)
		}
	}
	slices.SortFunc(gone, func(a, b expired) int {
		if c := a.due.Compare(b.due); c != 0 {
			return c
		}
		if c := a.addr.Compare(b.addr); c != 0 {
			return c
		}
		return strings.Compare(a.door, b.door)
	})
	for _, g := range gone {
		if d.allow(now) {
			d.logf("%s: %s: sequence timeout (stage %d)", g.addr, g.door, g.stage)
		}
	}
}

type expired struct {
	due   time.Time
	addr  netip.Addr
	door  string
	stage int
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
func (d *Detector) Sources() int { return len(d.sources) }

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
	for addr, os := range old.sources {
		for _, a := range os.attempts {
			j := remap[a.door]
			if j < 0 {
				continue
			}
			src := d.sources[addr]
			if src == nil {
				if src = d.newSource(addr, a.start); src == nil {
					return
				}
			}
			a.door = j
			src.attempts = append(src.attempts, a)
		}
	}
}

func sameDoor(a, b *Door) bool {
	return a.Name == b.Name && slices.Equal(a.Seq, b.Seq) && a.Timeout == b.Timeout &&
		a.FlagMask == b.FlagMask && a.FlagWant == b.FlagWant && a.Target == b.Target
}
