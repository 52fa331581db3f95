// Package doorman detects doorman single-packet knocks (J.B. Ward's
// doormand): one UDP datagram "<port> <group> <tag> <hash>" to the door's
// knock port, authenticated with HMAC-MD5 and checked against the anti-
// replay archive, then the client's first SYN to the port it opened.
//
// Knocks are seen at the link layer, as doormand sees them with libpcap:
// the knock port is normally dropped by the firewall, so an ordinary UDP
// socket would never receive them.
//
// The checks and their log lines are doormand's, in doormand's order
// (../../../shared/specs/doorman.md §1.3): lengths, guest, port, source
// address, HMAC in constant time, replay. Every line an unauthenticated
// packet can cause goes through a rate limiter and is built only when
// allowed, and the checks allocate nothing, so a flood costs CPU but no
// memory and no log spam. Payload bytes in log lines are escaped.
//
// Only IPv4 knocks are considered, as in doormand: its guest list has
// IPv4 addresses only, and its scripts take IPv4 arguments.
package doorman

import (
	"errors"
	"fmt"
	"iter"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/doorward/doorward/actions"
	cfg "github.com/doorward/doorward/config/doorman"
	"github.com/doorward/doorward/detectors"
	"github.com/doorward/doorward/formats/doorman"

	"github.com/doorward/doorward/internal/ratelimit"
	"github.com/doorward/doorward/internal/srctable"
)

// Door is one doorman door as the detector needs it.
type Door struct {
	Key      string // actions.Event.Door
	Name     string // for log lines
	Port     uint16 // UDP knock port
	Guests   *cfg.Guestlist
	Archive  *doorman.Archive // nil until the Detector's Commit (file archives)
	Waitfor  time.Duration
	LogLevel cfg.Level

	archivePath string // Hash_Archive, opened by Commit
	archiveSize int

	secrets map[*cfg.Guest][]byte
}

// Log rate defaults: a line per packet is what a flood causes.
const (
	DefaultLogRate  = 20 // lines per second
	DefaultLogBurst = 100
	// DefaultMaxPending bounds the (address, port) pairs waiting for their
	// SYN. Only authenticated knocks create one; when the table is full
	// the next one takes the place of an expired one, else of the oldest
	// (internal/srctable's policy: none of them makes progress).
	DefaultMaxPending = 4096
	// synSlack is how much longer than Waitfor the detector still
	// reports a SYN: the action's Waitfor starts when the broad rule is
	// in place, after the add script ran. The action decides.
	synSlack = 5 * time.Second
)

// Options are the detector's seams.
type Options struct {
	Logf actions.Logf
	// LogRate and LogBurst limit the lines packets can cause; 0 means
	// the defaults, a negative LogRate no limit.
	LogRate  float64
	LogBurst int
	// MaxPending bounds the knocks waiting for their SYN ([options]
	// MaxSources); 0 means DefaultMaxPending.
	MaxPending int
}

// pending is a knock waiting for its SYN, keyed by address and port. The
// deadline is the table entry's.
type pending struct {
	door int // index in Detector.doors
}

// Detector owns every doorman door. Not safe for concurrent use.
type Detector struct {
	doors    []*Door
	svc      []uint16 // TCP ports guests may open: where the SYNs go
	pending  *srctable.Table[pending, struct{}]
	logf     actions.Logf
	lim      *ratelimit.Limiter
	overflow uint64
}

// New builds the detector. Door knock ports must be distinct (FromDoors
// checks it).
func New(doors []*Door, opt Options) *Detector {
	d := &Detector{doors: doors, logf: opt.Logf}
	maxPending := opt.MaxPending
	if maxPending <= 0 {
		maxPending = DefaultMaxPending
	}
	d.pending = srctable.New[pending, struct{}](maxPending, 0)
	if d.logf == nil {
		d.logf = actions.Discard
	}
	rate, burst := opt.LogRate, float64(opt.LogBurst)
	if rate == 0 {
		rate, burst = DefaultLogRate, DefaultLogBurst
	}
	if rate > 0 {
		d.lim = ratelimit.New(rate, max(burst, 1))
	} // a negative rate leaves d.lim nil: no limit
	seen := map[uint16]bool{}
	for _, door := range doors {
		door.secrets = map[*cfg.Guest][]byte{}
		for _, g := range door.Guests.Guests {
			door.secrets[g] = []byte(g.Secret)
			for _, p := range g.Ports {
				if !seen[p] {
					seen[p] = true
					d.svc = append(d.svc, p)
				}
			}
		}
	}
	slices.Sort(d.svc)
	return d
}

// Rules: UDP to every knock port, and TCP SYNs (SYN set, ACK clear) to
// every port a guest may open, for the broad-to-narrow step.
func (d *Detector) Rules() []detectors.Rule {
	var knock []uint16
	for _, door := range d.doors {
		knock = append(knock, door.Port)
	}
	rules := []detectors.Rule{{Proto: detectors.UDP, Ports: knock}}
	if len(d.svc) > 0 {
		rules = append(rules, detectors.Rule{Proto: detectors.TCP, Ports: d.svc, FlagMask: detectors.SYN | detectors.ACK, FlagWant: detectors.SYN})
	}
	return rules
}

// Observe checks one packet. It allocates only for a valid knock (the
// event) and for log lines the limiter lets through.
func (d *Detector) Observe(p *detectors.Packet, emit func(actions.Event)) {
	if !p.Src.Is4() {
		return // IPv4 only, as doormand
	}
	switch p.Proto {
	case detectors.UDP:
		for _, door := range d.doors {
			if door.Port == p.DstPort {
				d.knock(door, p, emit)
				return
			}
		}
	case detectors.TCP:
		if p.Flags&(detectors.SYN|detectors.ACK) != detectors.SYN {
			return
		}
		ref, ok := d.pending.Find(srctable.AddrPortKey(p.Src, p.DstPort))
		if !ok {
			return
		}
		door, deadline := d.doors[d.pending.Val(ref).door], d.pending.Deadline(ref)
		d.pending.Delete(ref)
		if p.Time.UnixNano() > deadline {
			return
		}
		emit(actions.Event{Kind: actions.Connect, Door: door.Key, Addr: p.Src, Port: p.DstPort, SrcPort: p.SrcPort, Time: p.Time, Sender: p.Src})
	}
}

func (d *Detector) knock(door *Door, p *detectors.Packet, emit func(actions.Event)) {
	k, err := doorman.Parse(p.Payload)
	switch err {
	case nil:
	case doorman.ErrLengths:
		if d.allow(door, cfg.Warn, p.Time) {
			d.log(door, cfg.Warn, "Bad packet from %s \"%s ..\"", p.Src, hex16(p.Payload))
		}
		return
	default: // fewer than four fields: doormand skips (or crashes)
		return
	}
	src := p.Src
	if d.allow(door, cfg.Info, p.Time) {
		d.log(door, cfg.Info, "knock from %s : %s %s %s %s", src, esc(k.Service), esc(k.Group), esc(k.Tag), esc(k.Hash))
	}
	g := door.Guests.Lookup(k.Group)
	if g == nil {
		if d.allow(door, cfg.Warn, p.Time) {
			d.log(door, cfg.Warn, "Unknown guest '%s'", esc(k.Group))
		}
		return
	}
	port := doorman.Atoi(k.Service)
	if !g.HasPort(port) {
		if d.allow(door, cfg.Warn, p.Time) {
			d.log(door, cfg.Warn, "Guest %s at %s not registered for port %s.", g.Name, src, esc(k.Service))
		}
		return
	}
	if !g.Allows(src) {
		if d.allow(door, cfg.Warn, p.Time) {
			d.log(door, cfg.Warn, "Guest %s is not registered for address %s.", g.Name, src)
		}
		return
	}
	digest, ok := k.Verify(door.secrets[g])
	if !ok {
		if d.allow(door, cfg.Warn, p.Time) {
			d.log(door, cfg.Warn, "Guest %s at %s used incorrect secret.", g.Name, src)
		}
		return
	}
	if door.Archive == nil {
		return // not committed: nothing can remember the knock, refuse it
	}
	if at, seen := door.Archive.Lookup(digest); seen {
		if d.allow(door, cfg.Warn, p.Time) {
			d.log(door, cfg.Warn, "PROBABLE REPLAY ATTEMPT from %s: port=%s guest=%s tag=%s hash=%s; original timestamp=%s",
				src, esc(k.Service), g.Name, esc(k.Tag), esc(k.Hash), at.UTC().Format("2006-01-02 15:04:05 GMT"))
		}
		return
	}
	if err := door.Archive.Add(digest, p.Time); err != nil {
		// The knock is remembered in memory until the next start: it
		// is still rejected if replayed now. Refusing valid knocks
		// because a disk is full would lock everyone out.
		d.log(door, cfg.Error, "%v", err)
	}
	if d.allow(door, cfg.Debug, p.Time) {
		d.log(door, cfg.Debug, "knock from %s was valid.", src)
	}
	d.expect(door, src, uint16(port), p.Time)
	emit(actions.Event{
		Kind: actions.Knock, Door: door.Key, Addr: src, Port: uint16(port), Time: p.Time, Sender: src,
		// The guest's name as the guest list spells it (the packet's
		// token matched it exactly) and the knocked address, for the
		// action's log lines and its scripts' $4.
		Guest: g.Name, Dst: p.Dst,
	})
}

// expect remembers that src may now send its SYN to port.
func (d *Detector) expect(door *Door, src netip.Addr, port uint16, now time.Time) {
	k := srctable.AddrPortKey(src, port)
	t, deadline := now.UnixNano(), now.Add(door.Waitfor+synSlack).UnixNano()
	ref, _, ev := d.pending.FindOrInsert(k, t, deadline)
	if ev == srctable.Live {
		d.overflow++
		if d.overflow&(d.overflow-1) == 0 {
			d.log(door, cfg.Error, "%d valid knocks are waiting for their SYN; stopped watching for the oldest to watch for %s's (%d times so far)", d.pending.Max(), src, d.overflow)
		}
	}
	d.pending.Val(ref).door = slices.Index(d.doors, door)
	d.pending.Hit(ref, t, deadline, false)
}

// Expire forgets knocks whose SYN did not come in time.
func (d *Detector) Expire(now time.Time) {
	t := now.UnixNano()
	for ref := range d.pending.All() {
		if t > d.pending.Deadline(ref) {
			d.pending.Delete(ref)
		}
	}
}

// Pending is how many knocks wait for their SYN (for tests).
func (d *Detector) Pending() int { return d.pending.Len() }

// Adopt takes over a previous detector's state after a reload: knocks
// waiting for their SYN (for doors that still exist), and the archives'
// records, so a knock accepted by the old config between the new one's
// load and its start is still refused when replayed.
func (d *Detector) Adopt(prev detectors.Detector) {
	old, ok := prev.(*Detector)
	if !ok {
		return
	}
	byKey := map[string]int{}
	for i, door := range d.doors {
		byKey[door.Key] = i
	}
	for oref := range old.pending.All() {
		i, ok := byKey[old.doors[old.pending.Val(oref).door].Key]
		if !ok {
			continue
		}
		k, deadline := old.pending.Key(oref), old.pending.Deadline(oref)
		ref, _, _ := d.pending.FindOrInsert(k, deadline, deadline)
		d.pending.Val(ref).door = i
		d.pending.Hit(ref, deadline, deadline, false)
	}
	merged := map[*doorman.Archive]bool{nil: true} // nil: old was never committed
	for _, od := range old.doors {
		if merged[od.Archive] {
			continue
		}
		merged[od.Archive] = true
		for _, nd := range d.doors {
			if nd.Archive != od.Archive && od.Archive.Path() != "" && nd.Archive.Path() == od.Archive.Path() {
				if err := nd.Archive.Merge(od.Archive); err != nil {
					d.log(nd, cfg.Error, "%v", err)
				}
				break
			}
		}
	}
}

// Commit opens the doors' hash archive files, creating or resizing them
// (detectors.Committer): FromDoors only read them, so that a config
// rejected after its detectors were built leaves the running archives
// alone. The daemon calls it once the config is accepted, before Adopt.
func (d *Detector) Commit() error {
	opened := map[string]*doorman.Archive{}
	for _, door := range d.doors {
		if door.Archive != nil { // in memory, or committed already
			continue
		}
		a := opened[door.archivePath]
		if a == nil {
			var info doorman.OpenInfo
			var err error
			if a, info, err = doorman.OpenArchive(door.archivePath, door.archiveSize); err != nil {
				d.Close()
				return fmt.Errorf("%s: %w", door.Name, err)
			}
			switch {
			case info.Created:
				d.log(door, cfg.Notice, "created hash archive %s (%d records)", a.Path(), a.Size())
			case info.Resized:
				d.log(door, cfg.Notice, "resized hash archive %s from %d to %d records, %d records kept", a.Path(), info.From, a.Size(), info.Kept)
			}
			opened[door.archivePath] = a
		}
		door.Archive = a
	}
	return nil
}

// Close closes the hash archive files: the detector was replaced by a
// reload, its config was rejected, or the daemon stops.
func (d *Detector) Close() error {
	var errs []error
	for _, a := range d.archives() {
		errs = append(errs, a.Close())
	}
	return errors.Join(errs...)
}

// archives yields each distinct archive once, with the first door using it.
func (d *Detector) archives() iter.Seq2[*Door, *doorman.Archive] {
	return func(yield func(*Door, *doorman.Archive) bool) {
		seen := map[*doorman.Archive]bool{nil: true} // nil: not committed
		for _, door := range d.doors {
			if !seen[door.Archive] {
				seen[door.Archive] = true
				if !yield(door, door.Archive) {
					return
				}
			}
		}
	}
}

// allow applies the door's log level and the rate limiter; it reports a
// line suppressed earlier first.
func (d *Detector) allow(door *Door, l cfg.Level, now time.Time) bool {
	if l > door.LogLevel {
		return false
	}
	ok, suppressed := d.lim.Allow(now)
	if ok && suppressed > 0 {
		d.log(door, cfg.Warn, "%d log lines about knocks suppressed (more than %g a second)", suppressed, d.lim.Rate)
	}
	return ok
}

// log writes one doormand-style line: "<door>: <level>: <message>", the
// level spelt as in doormand's logs ("warn: Unknown guest 'x'").
func (d *Detector) log(door *Door, l cfg.Level, format string, args ...any) {
	d.logf("%s: %s: %s", door.Name, l, fmt.Sprintf(format, args...))
}

// hex16 renders the first 16 payload bytes as doormand's "Bad packet"
// line does ("32 32 20 6d …"); a shorter payload shows what there is.
func hex16(b []byte) string {
	var s strings.Builder
	for i, c := range b[:min(len(b), 16)] {
		if i > 0 {
			s.WriteByte(' ')
		}
		fmt.Fprintf(&s, "%02x", c)
	}
	return s.String()
}

// esc makes a payload field safe for a log line: printable ASCII stays,
// anything else (a newline that would forge a log line, a terminal escape)
// becomes \xNN. doormand logs the bytes raw.
func esc(b []byte) string {
	var s strings.Builder
	for _, c := range b {
		if c > 0x20 && c < 0x7f {
			s.WriteByte(c)
		} else {
			fmt.Fprintf(&s, "\\x%02x", c)
		}
	}
	return s.String()
}
