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
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/doorward/doorward/actions"
	dmaction "github.com/doorward/doorward/actions/doorman"
	"github.com/doorward/doorward/actions/filestore"
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
	Waitfor  time.Duration
	LogLevel cfg.Level

	archivePath string // Hash_Archive, opened by Commit
	archiveSize int
	// archive is the hash archive, a HashArchive space of the Store; nil
	// until the Detector's Commit opened it.
	archive actions.Tokens

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
	// LogSuppressed, if set, also counts the lines left out (metrics).
	LogSuppressed *atomic.Uint64
	// MaxPending bounds the knocks waiting for their SYN ([options]
	// MaxSources); 0 means DefaultMaxPending.
	MaxPending int
	// Store holds the hash archives (HashArchive token spaces, at each
	// door's Hash_Archive path for the file backend); nil: the file
	// backend's files, in a Store of the detector's own (tests).
	Store actions.Store
	// Tally, if set, is told each knock the checks refuse, with one of
	// actions/doorman's Reasons (the daemon's metrics). A valid knock is
	// not told: the action tells whether it opened the door.
	Tally actions.Tally
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
	store    actions.Store
	tally    actions.Tally
	token    [16]byte // the digest being spent
}

// New builds the detector. Door knock ports must be distinct (FromDoors
// checks it).
func New(doors []*Door, opt Options) *Detector {
	d := &Detector{doors: doors, logf: opt.Logf, store: opt.Store, tally: opt.Tally}
	if d.store == nil {
		d.store = filestore.New(filestore.Options{})
	}
	maxPending := opt.MaxPending
	if maxPending <= 0 {
		maxPending = DefaultMaxPending
	}
	d.pending = srctable.New[pending, struct{}](maxPending, 0)
	if d.logf == nil {
		d.logf = actions.Discard
	}
	d.lim = ratelimit.Configured(opt.LogRate, float64(opt.LogBurst), DefaultLogRate, DefaultLogBurst, opt.LogSuppressed)
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
		d.tally.Knock(door.Key, actions.Refused, dmaction.ReasonBadPacket)
		if d.allow(door, cfg.Warn, p.Time) {
			d.log(door, cfg.Warn, "Bad packet from %s \"%s ..\"", p.Src, hex16(p.Payload))
		}
		return
	default: // fewer than four fields: doormand skips (or crashes)
		d.tally.Knock(door.Key, actions.Refused, dmaction.ReasonBadPacket)
		return
	}
	src := p.Src
	if d.allow(door, cfg.Info, p.Time) {
		d.log(door, cfg.Info, "knock from %s : %s %s %s %s", src, esc(k.Service), esc(k.Group), esc(k.Tag), esc(k.Hash))
	}
	g := door.Guests.Lookup(k.Group)
	if g == nil {
		d.tally.Knock(door.Key, actions.Refused, dmaction.ReasonUnknownGuest)
		if d.allow(door, cfg.Warn, p.Time) {
			d.log(door, cfg.Warn, "Unknown guest '%s'", esc(k.Group))
		}
		return
	}
	port := doorman.Atoi(k.Service)
	if !g.HasPort(port) {
		d.tally.Knock(door.Key, actions.Refused, dmaction.ReasonPortNotAllowed)
		if d.allow(door, cfg.Warn, p.Time) {
			d.log(door, cfg.Warn, "Guest %s at %s not registered for port %s.", g.Name, src, esc(k.Service))
		}
		return
	}
	if !g.Allows(src) {
		d.tally.Knock(door.Key, actions.Refused, dmaction.ReasonAddrNotAllowed)
		if d.allow(door, cfg.Warn, p.Time) {
			d.log(door, cfg.Warn, "Guest %s is not registered for address %s.", g.Name, src)
		}
		return
	}
	digest, ok := k.Verify(door.secrets[g])
	if !ok {
		d.tally.Knock(door.Key, actions.Refused, dmaction.ReasonBadHMAC)
		if d.allow(door, cfg.Warn, p.Time) {
			d.log(door, cfg.Warn, "Guest %s at %s used incorrect secret.", g.Name, src)
		}
		return
	}
	if door.archive == nil {
		// Not committed: nothing can remember the knock, refuse it.
		d.tally.Knock(door.Key, actions.Refused, dmaction.ReasonNoArchive)
		return
	}
	// One Spend checks and records the digest: two detectors (a reload's)
	// or two hosts sharing the archive cannot both accept the knock.
	// The digest goes through a field: a local array whose slice escapes
	// would cost every knock, forged ones too, an allocation.
	d.token = digest
	spent, err := door.archive.Spend(p.Time, d.token[:])
	if err != nil && !errors.Is(err, actions.ErrUnavailable) {
		// The knock is remembered in memory until the next start: it
		// is still rejected if replayed now. Refusing valid knocks
		// because a disk is full would lock everyone out. A shared
		// store that is unreachable knows nothing (Fresh is false: the
		// knock is refused) and logged the outage once itself.
		d.log(door, cfg.Error, "%v", err)
	}
	if !spent.Fresh && errors.Is(err, actions.ErrUnavailable) {
		d.tally.Knock(door.Key, actions.Refused, dmaction.ReasonNoState)
		return
	}
	if !spent.Fresh {
		d.tally.Knock(door.Key, actions.Refused, dmaction.ReasonReplay)
		if err == nil && d.allow(door, cfg.Warn, p.Time) {
			d.log(door, cfg.Warn, "PROBABLE REPLAY ATTEMPT from %s: port=%s guest=%s tag=%s hash=%s; original timestamp=%s",
				src, esc(k.Service), g.Name, esc(k.Tag), esc(k.Hash), spent.At.UTC().Format("2006-01-02 15:04:05 GMT"))
		}
		return
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
func (d *Detector) Expire(now time.Time) { d.ExpirePart(now, 0, 1) }

// ExpirePart is Expire over the part-th of parts slices of the table of
// knocks waiting for their SYN (detectors.PartExpirer).
func (d *Detector) ExpirePart(now time.Time, part, parts int) {
	t := now.UnixNano()
	for ref := range d.pending.Part(part, parts) {
		if t > d.pending.Deadline(ref) {
			d.pending.Delete(ref)
		}
	}
}

// Pending is how many knocks wait for their SYN (for tests).
func (d *Detector) Pending() int { return d.pending.Len() }

// Adopt takes over a previous detector's state after a reload: knocks
// waiting for their SYN (for doors that still exist). The archives' records
// need no adopting: both detectors hold the same spaces of one Store.
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
}

// Commit opens the doors' hash archives, HashArchive spaces of the Store,
// creating or resizing their files (detectors.Committer): FromDoors only
// read them, so that a config rejected after its detectors were built
// leaves the running archives alone. The daemon calls it once the config
// is accepted, before Adopt. A reload's detector opens the same spaces as
// the running one, so every knock either accepts is in both: nothing is
// merged in Adopt.
func (d *Detector) Commit() error {
	opened := map[string]actions.Tokens{}
	for _, door := range d.doors {
		if door.archive != nil { // committed already
			continue
		}
		a := opened[door.archivePath]
		if a == nil {
			var info actions.SpaceInfo
			var err error
			sp := actions.Space{Name: door.archivePath, File: door.archivePath, Layout: actions.HashArchive, Size: door.archiveSize}
			if a, info, err = d.store.Tokens(sp); err != nil {
				d.Close()
				return fmt.Errorf("%s: %w", door.Name, err)
			}
			switch {
			case info.Created:
				d.log(door, cfg.Notice, "created hash archive %s (%d records)", door.archivePath, door.archiveSize)
			case info.Resized:
				d.log(door, cfg.Notice, "resized hash archive %s from %d to %d records, %d records kept", door.archivePath, info.From, door.archiveSize, info.Kept)
			}
			opened[door.archivePath] = a
		}
		door.archive = a
	}
	return nil
}

// Close releases the hash archives: the detector was replaced by a
// reload, its config was rejected, or the daemon stops. A file stays open
// while a successor holds its space.
func (d *Detector) Close() error {
	var errs []error
	seen := map[actions.Tokens]bool{}
	for _, door := range d.doors {
		if a := door.archive; a != nil && !seen[a] {
			seen[a] = true
			errs = append(errs, a.Close())
		}
		door.archive = nil
	}
	return errors.Join(errs...)
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
