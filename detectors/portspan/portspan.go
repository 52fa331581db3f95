// Package portspan detects knockdaemon's encrypted port-span knocks (spec
// ../shared/specs/knockdaemon.md §7): each sender's hits on a door's span
// of closed ports are queued, and the last L of them (L fixed by the
// door's record layout and encryption) are tried as a knock whenever a hit
// arrives. A knock that decodes, decrypts and checks out is emitted with
// every field of its record; its queue is then cleared.
//
// The Perl prototype kept one unbounded queue per address. Here every
// queue holds at most L hits, hits older than Hit_Timeout expire, and at
// most Max_Sources senders are tracked per door, with an eviction rule a
// flood cannot turn against a knock in progress (see newSource).
//
// The address to admit is the record's IP field, which may differ from the
// sender by design (knocking on behalf of another host, NAT); the sender is
// passed on as LOGIP. Require_IP_Match refuses such knocks.
//
// The legacy format carries its IV in the knock, so a captured knock can
// be replayed or altered (IV flips, blocks cut out). Every accepted knock
// is recorded in a spent store (internal/spent, fsynced before the event
// leaves) and a knock reusing any of its ciphertext is refused; with
// Mac_Key every knock must also carry a tag (formats/portspan, mac.go).
package portspan

import (
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/doorward/doorward/actions"
	"github.com/doorward/doorward/detectors"
	wire "github.com/doorward/doorward/formats/portspan"
	"github.com/doorward/doorward/internal/ratelimit"
	"github.com/doorward/doorward/internal/spent"
)

// retransmitWindow is how long after a hit an exact repeat of it (same
// source port, same destination port) is taken for the kernel's SYN
// retransmission (after 1 s, then 2 s and 4 s more) rather than a new hit.
const retransmitWindow = 10 * time.Second

// Defaults for Options.LogRate and LogBurst, as in detectors/sequence.
const (
	DefaultLogRate  = 50
	DefaultLogBurst = 500
)

// Options tune a Detector.
type Options struct {
	Logf actions.Logf
	// LogRate and LogBurst limit the lines traffic can cause (refused
	// knocks, evictions) to LogRate a second after a burst of LogBurst.
	// 0: the defaults; a negative LogRate: unlimited.
	LogRate, LogBurst float64
	// SpentPath is the spent store's file, shared by every door: the
	// ciphertext of each accepted knock, so that no replay and no forgery
	// made of it is accepted again, across restarts. "" keeps it in
	// memory (replay, --check, tests). The file is opened by Commit, once
	// the config is accepted, never while it is built or checked.
	SpentPath string
}

// SpentFile is the spent store's file name in the state directory.
const SpentFile = "portspan.spent"

// Detector holds every port-span door and the senders' queues.
type Detector struct {
	doors []*door
	logf  actions.Logf
	lim   *ratelimit.Limiter

	// The spent store: its file and size as configured, and the store
	// (nil until Commit opens the file). spentSize 0: no door uses one.
	spentPath string
	spentSize int
	spent     *spent.Store
	keys      []wire.SpentKey
}

// spentOptions: a ring, the oldest knock out; synced by spend.
var spentOptions = spent.Options{What: "port-span spent store"}

// door is a Door with its queues.
type door struct {
	Door
	lengths []int // knock lengths in hits, longest first
	size    int   // hits kept per sender: lengths[0]

	sources map[netip.Addr]*source
	free    []*source
	// byHits[n] lists the senders with n queued hits, least recently hit
	// first: the eviction order.
	byHits []srcList

	rec     wire.Record
	scratch []uint16

	// saltedSeen is the codec's SaltedRefused when last looked at;
	// saltedHits counts the hits that made it grow.
	saltedSeen, saltedHits uint64

	// Evicted counts senders dropped to make room; Retransmits the hits
	// dropped as SYN retransmissions; Refused the decoded knocks refused
	// (Require_IP_Match, an address no firewall rule should name, spent).
	Evicted, Retransmits, Refused uint64
}

// source is one sender's queue: a ring of the last size hits, each kept as
// its index in the span.
type source struct {
	addr  netip.Addr
	idx   []uint16
	times []int64 // UnixNano of each hit
	head  int     // index of the oldest hit
	n     int
	// The last hit, to recognise its retransmission.
	lastSrc, lastDst uint16
	lastTime         int64

	// list is the index in byHits of the list holding the source: its hit
	// count when it was last listed.
	list       int
	prev, next *source
}

type srcList struct{ head, tail *source }

// New builds a detector for doors, as FromDoors returns them.
func New(doors []Door, opt Options) *Detector {
	d := &Detector{logf: opt.Logf, spentPath: opt.SpentPath}
	if d.logf == nil {
		d.logf = actions.Discard
	}
	switch rate, burst := opt.LogRate, opt.LogBurst; {
	case rate < 0:
	case rate == 0:
		d.lim = ratelimit.New(DefaultLogRate, DefaultLogBurst)
	default:
		d.lim = ratelimit.New(rate, max(burst, 1))
	}
	for _, cfg := range doors {
		dr := &door{Door: cfg, lengths: cfg.Codec.Lengths(), sources: map[netip.Addr]*source{}}
		if dr.MaxSources <= 0 {
			dr.MaxSources = DefaultMaxSources
		}
		dr.size = dr.lengths[0]
		dr.byHits = make([]srcList, dr.size+1)
		dr.scratch = make([]uint16, dr.size)
		d.doors = append(d.doors, dr)
		d.logf("%s", dr)
		if fs := cfg.Codec.Layouts[0].Fields(); fs[len(fs)-1].Kind != wire.FieldChecksum {
			d.logf("%s: warning: the knock does not end with CHECKSUM: corrupted knocks may decode", dr.Name)
		}
		if cfg.Codec.Crypt == nil {
			d.logf("%s: warning: Encrypt = no: anyone who sees a knock can forge one", dr.Name)
		} else if cfg.SpentKnocks == 0 {
			d.logf("%s: warning: Spent_Knocks = 0: a captured knock can be replayed (and, with an IV header, rewritten to open for another address)", dr.Name)
		}
		d.spentSize = max(d.spentSize, cfg.SpentKnocks*cfg.Codec.SpentKeysPerKnock())
	}
	if d.spentPath == "" && d.spentSize > 0 {
		d.spent = spent.NewMemory(d.spentSize, spentOptions)
	}
	return d
}

// SpentSize is the number of records the spent store needs (0: none), for
// a configuration check.
func (d *Detector) SpentSize() int { return d.spentSize }

// Rules asks for every port of each door's span: TCP with the door's flag
// filter, or UDP. A 32768-port span is a few ranges, which the capture
// filter compiles to a few comparisons.
func (d *Detector) Rules() []detectors.Rule {
	rules := make([]detectors.Rule, 0, len(d.doors))
	for _, dr := range d.doors {
		rules = append(rules, detectors.Rule{Proto: dr.Proto, Ports: dr.Codec.Span.Ports(), FlagMask: dr.FlagMask, FlagWant: dr.FlagWant})
	}
	return rules
}

// Observe queues the hit for every door whose span holds its port and tries
// the door's knock lengths on the sender's last hits.
func (d *Detector) Observe(p *detectors.Packet, emit func(actions.Event)) {
	for _, dr := range d.doors {
		if p.Proto != dr.Proto || p.Flags&dr.FlagMask != dr.FlagWant {
			continue
		}
		idx, ok := dr.Codec.Span.Index(p.DstPort)
		if !ok {
			continue
		}
		d.hit(dr, p, uint16(idx), emit)
	}
}

// hit queues a span hit (its index in the span) and tries the sender's
// last hits as a knock.
func (d *Detector) hit(dr *door, p *detectors.Packet, idx uint16, emit func(actions.Event)) {
	now := p.Time.UnixNano()
	src := dr.sources[p.Src]
	if src == nil {
		if src = d.newSource(dr, p.Src, p.Time); src == nil {
			return
		}
	} else {
		if src.n > 0 && src.lastSrc == p.SrcPort && src.lastDst == p.DstPort && now-src.lastTime < int64(retransmitWindow) {
			// The same SYN again (same source port, same destination):
			// the kernel retransmitting a hit, not a new one. A real knock
			// repeating a port uses a new socket, hence a new source port.
			dr.Retransmits++
			return
		}
		dr.expireHits(src, now)
	}
	if src.n == dr.size {
		src.head = (src.head + 1) % dr.size
		src.n--
	}
	i := (src.head + src.n) % dr.size
	src.idx[i], src.times[i] = idx, now
	src.n++
	src.lastSrc, src.lastDst, src.lastTime = p.SrcPort, p.DstPort, now
	dr.requeue(src)

	for _, l := range dr.lengths {
		if src.n < l {
			continue
		}
		w := dr.scratch[:l]
		for j := range w {
			w[j] = src.idx[(src.head+src.n-l+j)%dr.size]
		}
		layout, ok := dr.Codec.DecodeIndexes(w, &dr.rec)
		if !ok {
			continue
		}
		// The queue is spent whatever happens next: its hits were a knock.
		dr.release(src)
		d.knock(dr, layout, p, emit)
		return
	}
	if c := dr.Codec.Crypt; c != nil && c.SaltedRefused != dr.saltedSeen {
		d.saltedRefused(dr, p)
	}
}

// saltedRefused logs, now and then, that a door refused windows of hits
// beginning with a Salted__ header it does not take: either a knockclient
// on a newer Perl (the admin wants Header = magic) or a sender trying to
// make the daemon derive keys.
func (d *Detector) saltedRefused(dr *door, p *detectors.Packet) {
	dr.saltedSeen = dr.Codec.Crypt.SaltedRefused
	dr.saltedHits++
	if dr.saltedHits&(dr.saltedHits-1) == 0 && d.allow(p.Time) {
		d.logf("%s: %s: knock with a Salted__ header refused (%d so far): this door takes IV = %s; if your knockclients run Crypt::CBC 2.17 or later, set Header = magic", p.Src, dr.Name, dr.saltedHits, dr.Codec.Crypt.Header())
	}
}

// knock emits the event for a decoded record, unless the door refuses it.
func (d *Detector) knock(dr *door, l wire.Layout, p *detectors.Packet, emit func(actions.Event)) {
	sender := p.Src.Unmap()
	addr := sender
	if l.Has(wire.FieldIP) {
		addr = dr.rec.IP
	}
	// why says why the knock is refused: about the address it names
	// (logged after it), or, with ofKnock, about the knock itself.
	why, ofKnock := "", false
	switch {
	case addr.IsUnspecified() || addr.IsMulticast() || addr == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		why = "is not a unicast address"
	case dr.RequireIPMatch && addr != sender:
		why = "is not the sender (Require_IP_Match)"
	case dr.SpentKnocks > 0:
		// Last: only a knock otherwise accepted is recorded.
		why, ofKnock = d.spend(dr, p.Time), true
	}
	if why != "" {
		dr.Refused++
		if d.allow(p.Time) {
			if !ofKnock {
				why = addr.String() + " " + why
			}
			d.logf("%s: %s: port-span knock for %s refused: %s", sender, dr.Name, addr, why)
		}
		return
	}
	vals := l.Values(&dr.rec)
	if !l.Has(wire.FieldIP) {
		vals["IP"] = addr.String()
	}
	vals["LOGIP"] = sender.String()
	d.logf("%s: %s: port-span knock: %s", sender, dr.Name, describe(l, vals))
	ev := actions.Event{Kind: actions.Knock, Door: dr.Key, Addr: addr, Time: p.Time, Values: vals}
	if l.Has(wire.FieldPort) {
		ev.Port = dr.rec.Port
	}
	emit(ev)
}

// describe lists a record's fields in layout order: "IP=10.1.1.1 PORT=22".
func describe(l wire.Layout, vals map[string]string) string {
	var b strings.Builder
	for i, f := range l.Fields() {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(f.Name())
		b.WriteByte('=')
		b.WriteString(vals[f.Name()])
	}
	return b.String()
}

// expireHits drops the sender's hits older than the door's HitTimeout.
func (dr *door) expireHits(src *source, now int64) {
	cut := now - int64(dr.HitTimeout)
	before := src.n
	for src.n > 0 && src.times[src.head] <= cut {
		src.head = (src.head + 1) % dr.size
		src.n--
	}
	if src.n != before {
		// Fewer hits: to the front of its new list, the first to go. A
		// sender whose hits go stale is as good a victim as any.
		dr.byHits[src.list].remove(src)
		dr.push(src, true)
	}
}

// newSource starts a queue for addr. When the door's table is full it
// evicts the sender with the fewest queued hits, the least recently hit of
// those. A spoofed flood is made of one-hit senders, so it only ever evicts
// its own packets; a knock in progress, with two hits or more, is displaced
// only once every other tracked sender has more hits than it, which a
// flood has to build up hit by hit for Max_Sources addresses within
// Hit_Timeout. Each new sender starts with one hit and is the next victim,
// so a table full of one-hit senders costs nothing but the oldest of them.
func (d *Detector) newSource(dr *door, addr netip.Addr, now time.Time) *source {
	if len(dr.sources) >= dr.MaxSources {
		victim := dr.victim()
		if victim == nil {
			return nil // a table of size 0 cannot happen; be safe
		}
		dr.release(victim)
		dr.Evicted++
		if dr.Evicted&(dr.Evicted-1) == 0 && d.allow(now) {
			d.logf("%s: too many senders at once (%d), evicted %d unfinished port-span knocks", dr.Name, dr.MaxSources, dr.Evicted)
		}
	}
	var s *source
	if n := len(dr.free); n > 0 {
		s, dr.free = dr.free[n-1], dr.free[:n-1]
	} else {
		s = &source{idx: make([]uint16, dr.size), times: make([]int64, dr.size)}
	}
	s.addr = addr
	dr.sources[addr] = s
	dr.push(s, false)
	return s
}

func (dr *door) victim() *source {
	for i := range dr.byHits {
		if h := dr.byHits[i].head; h != nil {
			return h
		}
	}
	return nil
}

// requeue moves src to the back of the list for its hit count, after a hit.
func (dr *door) requeue(src *source) {
	dr.byHits[src.list].remove(src)
	dr.push(src, false)
}

// push lists src by its hit count, at the back (just hit) or the front
// (first to go).
func (dr *door) push(src *source, front bool) {
	src.list = src.n
	if front {
		dr.byHits[src.n].pushFront(src)
	} else {
		dr.byHits[src.n].pushBack(src)
	}
}

func (dr *door) release(src *source) {
	dr.byHits[src.list].remove(src)
	delete(dr.sources, src.addr)
	src.n, src.head, src.addr = 0, 0, netip.Addr{}
	if len(dr.free) < 1024 {
		dr.free = append(dr.free, src)
	}
}

func (l *srcList) pushBack(s *source) {
	s.prev, s.next = l.tail, nil
	if l.tail != nil {
		l.tail.next = s
	} else {
		l.head = s
	}
	l.tail = s
}

func (l *srcList) pushFront(s *source) {
	s.prev, s.next = nil, l.head
	if l.head != nil {
		l.head.prev = s
	} else {
		l.tail = s
	}
	l.head = s
}

func (l *srcList) remove(s *source) {
	if s.prev != nil {
		s.prev.next = s.next
	} else {
		l.head = s.next
	}
	if s.next != nil {
		s.next.prev = s.prev
	} else {
		l.tail = s.prev
	}
	s.prev, s.next = nil, nil
}

// Expire drops hits older than each door's HitTimeout and the senders left
// with none. Expiry is not logged: a span is thousands of ports, every
// port scan on the internet leaves a few hits in it, and a knock that
// timed out shows as a knock that never arrived.
func (d *Detector) Expire(now time.Time) {
	t := now.UnixNano()
	for _, dr := range d.doors {
		for _, src := range dr.sources {
			dr.expireHits(src, t)
			if src.n == 0 {
				dr.release(src)
			}
		}
	}
}

// allow reports whether a traffic-driven line may be logged at now.
func (d *Detector) allow(now time.Time) bool {
	ok, suppressed := d.lim.Allow(now)
	if ok && suppressed > 0 {
		d.logf("%d port-span log lines suppressed (more than %v a second)", suppressed, d.lim.Rate)
	}
	return ok
}

// Sources is how many senders have hits queued, over all doors.
func (d *Detector) Sources() int {
	n := 0
	for _, dr := range d.doors {
		n += len(dr.sources)
	}
	return n
}

// Stats are a door's counters, for tests and the shutdown summary.
type Stats struct {
	Sources                       int
	Evicted, Retransmits, Refused uint64
}

// Stats returns the counters of the door with key.
func (d *Detector) Stats(key string) Stats {
	for _, dr := range d.doors {
		if dr.Key == key {
			return Stats{len(dr.sources), dr.Evicted, dr.Retransmits, dr.Refused}
		}
	}
	return Stats{}
}

// Adopt takes over old's queues for doors whose directives did not change,
// so a reload does not cost a knocker the hits already sent, and the
// knocks old's spent store recorded (see adoptSpent).
func (d *Detector) Adopt(prev detectors.Detector) {
	old, ok := prev.(*Detector)
	if !ok {
		return
	}
	d.adoptSpent(old)
	for _, dr := range d.doors {
		for _, od := range old.doors {
			if od.Key != dr.Key || od.sig != dr.sig || od.size != dr.size || od.MaxSources != dr.MaxSources {
				continue
			}
			dr.sources, dr.free, dr.byHits = od.sources, od.free, od.byHits
			od.sources, od.free, od.byHits = map[netip.Addr]*source{}, nil, make([]srcList, od.size+1)
		}
	}
}

// String describes a door for logs: "ssh: port span 1024-1279, 8 bits a
// hit, 24 hits a knock".
func (dr *door) String() string {
	var ls []string
	for _, l := range dr.lengths {
		ls = append(ls, strconv.Itoa(l))
	}
	return dr.Name + ": port span " + dr.Codec.Span.String() + ", " + strconv.Itoa(dr.Codec.Span.Bits()) + " bits a hit, " + strings.Join(ls, " or ") + " hits a knock"
}
