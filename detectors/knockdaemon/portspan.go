// Package knockdaemon detects knockdaemon's encrypted port-span knocks (spec
// ../shared/specs/knockdaemon.md §7): each sender's hits on a door's span
// of closed ports are queued, and the last L of them (L fixed by the
// door's record layout and encryption) are tried as a knock whenever a hit
// arrives. A knock that decodes, decrypts and checks out is emitted with
// every field of its record; its queue is then cleared.
//
// The Perl prototype kept one unbounded queue per address. Here every
// queue holds at most L hits, hits older than Hit_Timeout expire, and at
// most Max_Sources senders are tracked per door, in an internal/srctable
// table whose eviction rule keeps a real knock working under spoofed floods
// (see that package; a sender with two hits or more has made progress).
//
// The address to admit is the record's IP field, which may differ from the
// sender by design (knocking on behalf of another host, NAT); the sender is
// passed on as LOGIP. Require_IP_Match refuses such knocks.
//
// The legacy format carries its IV in the knock, so a captured knock can
// be replayed or altered (IV flips, blocks cut out). Every accepted knock
// is recorded in a spent store (a token space of actions.Store, fsynced before the event
// leaves) and a knock reusing any of its ciphertext is refused; with
// Mac_Key every knock must also carry a tag (formats/knockdaemon, mac.go).
package knockdaemon

import (
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/doorward/doorward/actions"
	"github.com/doorward/doorward/actions/filestore"
	kdaction "github.com/doorward/doorward/actions/knockdaemon"
	"github.com/doorward/doorward/detectors"
	wire "github.com/doorward/doorward/formats/knockdaemon"
	"github.com/doorward/doorward/internal/ratelimit"
	"github.com/doorward/doorward/internal/srctable"
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
	// LogSuppressed, if set, also counts the lines left out (metrics).
	LogSuppressed *atomic.Uint64
	// Store keeps the spent store, a Ring token space shared by every
	// door: the ciphertext of each accepted knock, so that no replay and
	// no forgery made of it is accepted again, across restarts (and, with
	// a shared backend, across hosts). The space is opened by Commit, once
	// the config is accepted, never while it is built or checked. nil: a
	// store of the detector's own, in memory when SpentPath is "" (tests).
	Store actions.Store
	// SpentPath is the spent store's file for the embedded backend (and
	// the log); "": SpentFile in the backend's state directory.
	SpentPath string
	// Tally, if set, is told each knock the detector refuses, with one of
	// actions/knockdaemon's Reasons (the daemon's metrics). A knock passed
	// on is not told: the action tells whether it opened the door.
	Tally actions.Tally
}

// SpentFile is the spent store's file name in the state directory.
const SpentFile = "portspan.spent"

// Detector holds every port-span door and the senders' queues.
type Detector struct {
	doors []*door
	logf  actions.Logf
	lim   *ratelimit.Limiter
	tally actions.Tally

	// The spent store: the state layer, the space's file and size as
	// configured, and the space (nil until Commit opens it). spentSize 0:
	// no door uses one.
	store     actions.Store
	spentPath string
	spentSize int
	spent     actions.Tokens
	keys      []wire.SpentKey
	tokens    [][]byte // keys as Spend's arguments, reused
}

// door is a Door with its queues.
type door struct {
	Door
	lengths []int // knock lengths in hits, longest first
	size    int   // hits kept per sender: lengths[0]

	sources *srctable.Table[queue, queued]

	rec     wire.Record
	scratch []uint16

	// saltedSeen is the codec's SaltedRefused when last looked at;
	// saltedHits counts the hits that made it grow.
	saltedSeen, saltedHits uint64

	// Evicted counts senders dropped to make room while their hits were
	// still fresh; Retransmits the hits
	// dropped as SYN retransmissions; Refused the decoded knocks refused
	// (Require_IP_Match, an address no firewall rule should name, spent).
	Evicted, Retransmits, Refused uint64
}

// queue is one sender's entry: a ring of the last size hits in its slab.
type queue struct {
	head, n int // index of the oldest hit; hits queued
	// The last hit, to recognise its retransmission.
	lastSrc, lastDst uint16
	lastTime         int64
}

// queued is one hit: its index in the span and its time (UnixNano).
type queued struct {
	idx uint16
	t   int64
}

// New builds a detector for doors, as FromDoors returns them.
func New(doors []Door, opt Options) *Detector {
	d := &Detector{logf: opt.Logf, store: opt.Store, spentPath: opt.SpentPath, tally: opt.Tally}
	if d.logf == nil {
		d.logf = actions.Discard
	}
	d.lim = ratelimit.Configured(opt.LogRate, opt.LogBurst, DefaultLogRate, DefaultLogBurst, opt.LogSuppressed)
	for _, cfg := range doors {
		dr := &door{Door: cfg, lengths: cfg.Codec.Lengths()}
		if dr.MaxSources <= 0 {
			dr.MaxSources = DefaultMaxSources
		}
		dr.size = dr.lengths[0]
		dr.sources = srctable.New[queue, queued](dr.MaxSources, dr.size)
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
	if d.store == nil {
		if d.spentPath == "" {
			// In memory, open from the start: nothing to commit.
			d.store = filestore.Memory()
			if d.spentSize > 0 {
				d.spent, _, _ = d.store.Tokens(d.space()) // cannot fail
			}
		} else {
			d.store = filestore.New(filestore.Options{Dir: filepath.Dir(d.spentPath)})
		}
	}
	return d
}

// space declares the spent store: a ring of the newest knocks' keys,
// synced before the knock's event leaves.
func (d *Detector) space() actions.Space {
	return actions.Space{Name: SpentFile, File: d.spentPath, Layout: actions.Ring, Size: d.spentSize, Sync: true}
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
	k := srctable.AddrKey(p.Src)
	ref, spot, ok := dr.sources.Lookup(k)
	if !ok {
		ref = d.newSource(dr, spot, p.Time)
	}
	src, hits := dr.sources.Val(ref), dr.sources.Slab(ref)
	if ok {
		if src.n > 0 && src.lastSrc == p.SrcPort && src.lastDst == p.DstPort && now-src.lastTime < int64(retransmitWindow) {
			// The same SYN again (same source port, same destination):
			// the kernel retransmitting a hit, not a new one. A real knock
			// repeating a port uses a new socket, hence a new source port.
			dr.Retransmits++
			return
		}
		dr.expireHits(src, hits, now)
	}
	if src.n == dr.size {
		src.head = (src.head + 1) % dr.size
		src.n--
	}
	hits[(src.head+src.n)%dr.size] = queued{idx, now}
	src.n++
	src.lastSrc, src.lastDst, src.lastTime = p.SrcPort, p.DstPort, now
	dr.sources.Hit(ref, now, now+int64(dr.HitTimeout), src.n > 1)

	for _, l := range dr.lengths {
		if src.n < l {
			continue
		}
		w := dr.scratch[:l]
		for j := range w {
			w[j] = hits[(src.head+src.n-l+j)%dr.size].idx
		}
		layout, ok := dr.Codec.DecodeIndexes(w, &dr.rec)
		if !ok {
			continue
		}
		// The queue is spent whatever happens next: its hits were a knock.
		dr.sources.Delete(ref)
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
	why, reason, ofKnock, quiet := "", "", false, false
	switch {
	case addr.IsUnspecified() || addr.IsMulticast() || addr == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		why, reason = "is not a unicast address", kdaction.ReasonNotUnicast
	case dr.RequireIPMatch && addr != sender:
		why, reason = "is not the sender (Require_IP_Match)", kdaction.ReasonIPMismatch
	case dr.SpentKnocks > 0:
		// Last: only a knock otherwise accepted is recorded.
		why, reason, quiet = d.spend(dr, p.Time)
		ofKnock = true
	}
	if why != "" {
		dr.Refused++
		d.tally.Knock(dr.Key, actions.Refused, reason)
		if !quiet && d.allow(p.Time) {
			if !ofKnock {
				why = addr.String() + " " + why
			}
			d.logf("%s: %s: port-span knock for %s refused: %s", sender, dr.Name, addr, why)
		}
		return
	}
	d.logf("%s: %s: port-span knock: %s", sender, dr.Name, l.Describe(&dr.rec))
	ev := actions.Event{Kind: actions.Knock, Door: dr.Key, Addr: addr, Time: p.Time, Sender: sender, Record: eventRecord(l, &dr.rec)}
	if l.Has(wire.FieldPort) {
		ev.Port = dr.rec.Port
	}
	emit(ev)
}

// eventRecord is r as an event carries it: the fields l has, typed.
func eventRecord(l wire.Layout, r *wire.Record) *actions.Record {
	er := &actions.Record{IP: r.IP, Port: r.Port, Time: r.Time, Flags: r.Flags, Checksum: r.Checksum}
	for _, f := range l.Fields() {
		switch f.Kind {
		case wire.FieldIP:
			er.Has |= actions.HasIP
		case wire.FieldPort:
			er.Has |= actions.HasPort
		case wire.FieldTime:
			er.Has |= actions.HasTime
		case wire.FieldFlag:
			er.Has |= actions.HasFlag(f.Flag)
		case wire.FieldChecksum:
			er.Has |= actions.HasChecksum
		}
	}
	return er
}

// expireHits drops the sender's hits older than the door's HitTimeout.
func (dr *door) expireHits(src *queue, hits []queued, now int64) {
	cut := now - int64(dr.HitTimeout)
	for src.n > 0 && hits[src.head].t <= cut {
		src.head = (src.head + 1) % dr.size
		src.n--
	}
}

// newSource starts a queue for a sender; a full table makes room as
// internal/srctable says. Its deadline is set by the hit that follows.
func (d *Detector) newSource(dr *door, at srctable.Spot, now time.Time) srctable.Ref {
	ref, ev := dr.sources.InsertAt(at, now.UnixNano(), now.UnixNano())
	if ev == srctable.Live {
		dr.Evicted++
		if dr.Evicted&(dr.Evicted-1) == 0 && d.allow(now) {
			d.logf("%s: too many senders at once (%d), evicted %d unfinished port-span knocks", dr.Name, dr.MaxSources, dr.Evicted)
		}
	}
	return ref
}

// Expire drops hits older than each door's HitTimeout and the senders left
// with none. Expiry is not logged: a span is thousands of ports, every
// port scan on the internet leaves a few hits in it, and a knock that
// timed out shows as a knock that never arrived.
func (d *Detector) Expire(now time.Time) { d.ExpirePart(now, 0, 1) }

// ExpirePart is Expire over the part-th of parts slices of every door's
// table of senders (detectors.PartExpirer).
func (d *Detector) ExpirePart(now time.Time, part, parts int) {
	t := now.UnixNano()
	for _, dr := range d.doors {
		for ref := range dr.sources.Part(part, parts) {
			src := dr.sources.Val(ref)
			if dr.expireHits(src, dr.sources.Slab(ref), t); src.n == 0 {
				dr.sources.Delete(ref)
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
		n += dr.sources.Len()
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
			return Stats{dr.sources.Len(), dr.Evicted, dr.Retransmits, dr.Refused}
		}
	}
	return Stats{}
}

// Adopt takes over old's queues for doors whose directives did not change,
// so a reload does not cost a knocker the hits already sent. The spent
// store needs no adopting: both detectors hold the same space of the one
// Store, so every knock old accepted is spent for d too.
func (d *Detector) Adopt(prev detectors.Detector) {
	old, ok := prev.(*Detector)
	if !ok {
		return
	}
	for _, dr := range d.doors {
		for _, od := range old.doors {
			if od.Key != dr.Key || od.sig != dr.sig || od.size != dr.size || od.MaxSources != dr.MaxSources {
				continue
			}
			dr.sources, od.sources = od.sources, dr.sources
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
