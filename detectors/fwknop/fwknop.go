// Package fwknop detects fwknop single-packet authorization (SPA): one UDP
// datagram to the SPA port (62201 by default), Rijndael-encrypted and
// HMAC-authenticated by a key of an access.conf stanza, asking to open
// ports for an address (formats/fwknop holds the wire format).
//
// The checks are fwknopd's, in fwknopd's order (server/incoming_spa.c):
// cheap checks on the payload once (formats/fwknop.Precheck: length,
// base64 alphabet, the stripped prefixes), then, for each stanza in file
// order whose SOURCE (and DESTINATION) match the packet: expiry, HMAC and
// decryption (Open), replay, age, the allow-IP, the username, the message
// type and the ports; the first stanza that grants access ends the search.
// Every refusal is logged with its reason, through a rate limiter, and
// the line is built only when the limiter lets it through: a flood of
// random payloads costs the Precheck and nothing else.
//
// Unlike fwknopd, SPA packets over IPv6 are accepted, and an allow-IP that
// is an IPv6 address opens the door for it.
package fwknop

import (
	"encoding/base64"
	"errors"
	"fmt"
	fwaction "github.com/doorward/doorward/actions/fwknop"
	"net/netip"
	"strings"
	"sync/atomic"
	"time"

	"github.com/doorward/doorward/actions"
	"github.com/doorward/doorward/detectors"
	"github.com/doorward/doorward/formats/fwknop"
	"github.com/doorward/doorward/formats/proto"
	"github.com/doorward/doorward/internal/ratelimit"
)

// Log rate defaults, as the other detectors': a line per packet is what a
// flood causes.
const (
	DefaultLogRate  = 20
	DefaultLogBurst = 100
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
	// Store holds the replay cache (a Ring token space); nil: a memory
	// one of the detector's own (tests).
	Store actions.Store
	// Replay: time comes from a capture; no fwknopd digest.cache is
	// imported (replay reads no host state).
	Replay bool
	// Tally, if set, is told each knock the checks refuse, with one of
	// actions/fwknop's Reasons (the daemon's metrics).
	Tally actions.Tally
}

// port is the stanzas listening on one SPA port, in file order, each with
// its Opener: the keyed HMAC kept from packet to packet, so that random
// base64 on the port is refused without an allocation.
type port struct {
	num      uint16
	stanzas  []*Stanza
	openers  []*fwknop.Opener // openers[i] holds stanzas[i].Keys
	anyAging bool
}

// Detector owns every fwknop door. Not safe for concurrent use.
type Detector struct {
	ports    []port
	stanzas  []*Stanza
	logf     actions.Logf
	lim      *ratelimit.Limiter
	store    actions.Store
	opt      Options
	cache    *replayCache
	expired  []bool // by stanza index: "Access stanza has expired" logged
	tally    actions.Tally
	tokenBuf [32]byte
}

// New builds the detector for stanzas (from FromDoors).
func New(stanzas []*Stanza, opt Options) *Detector {
	d := &Detector{stanzas: stanzas, logf: opt.Logf, store: opt.Store, opt: opt, expired: make([]bool, len(stanzas)), tally: opt.Tally}
	if d.logf == nil {
		d.logf = actions.Discard
	}
	d.lim = ratelimit.Configured(opt.LogRate, float64(opt.LogBurst), DefaultLogRate, DefaultLogBurst, opt.LogSuppressed)
	for _, s := range stanzas {
		i := 0
		for i < len(d.ports) && d.ports[i].num != s.Port {
			i++
		}
		if i == len(d.ports) {
			d.ports = append(d.ports, port{num: s.Port})
		}
		d.ports[i].stanzas = append(d.ports[i].stanzas, s)
		d.ports[i].openers = append(d.ports[i].openers, fwknop.NewOpener(&s.Keys))
	}
	return d
}

// Rules: UDP to every SPA port.
func (d *Detector) Rules() []detectors.Rule {
	r := detectors.Rule{Proto: detectors.UDP}
	for _, p := range d.ports {
		r.Ports = append(r.Ports, p.num)
	}
	if len(r.Ports) == 0 {
		return nil
	}
	return []detectors.Rule{r}
}

// Expire: nothing waits for a later packet; a single packet decides.
func (d *Detector) Expire(time.Time) {}

// Observe checks one packet. Until a stanza's key authenticates it, it
// allocates nothing (log lines aside, which the limiter bounds).
func (d *Detector) Observe(p *detectors.Packet, emit func(actions.Event)) {
	if p.Proto != detectors.UDP {
		return
	}
	var at *port
	for i := range d.ports {
		if d.ports[i].num == p.DstPort {
			at = &d.ports[i]
			break
		}
	}
	if at == nil {
		return
	}
	stanzas := at.stanzas
	if err := fwknop.Precheck(p.Payload); err != nil {
		if d.allow(p.Time) {
			d.logf("fwknop: [%s] not an SPA packet (%d bytes to port %d): %v", p.Src, len(p.Payload), p.DstPort, err)
		}
		return
	}
	src, dst := p.Src.Unmap(), p.Dst.Unmap()
	matched := false
	for _, s := range stanzas {
		if matchAny(s.Source, src) {
			matched = true
			break
		}
	}
	if !matched {
		if d.allow(p.Time) {
			d.logf("fwknop: No access data found for source IP: %s", src)
		}
		return
	}
	spent := false // the packet's digest went into the replay cache
	for i, s := range stanzas {
		if !matchAny(s.Source, src) || (s.Dest != nil && !matchAny(s.Dest, dst)) {
			continue
		}
		if !s.Expire.IsZero() && p.Time.After(s.Expire) {
			d.tally.Knock(s.Key, actions.Refused, fwaction.ReasonExpired)
			if i := s.Num - 1; i < len(d.expired) && !d.expired[i] {
				d.expired[i] = true
				d.log(s, src, "Access stanza has expired")
			}
			continue
		}
		msg, err := at.openers[i].Open(p.Payload)
		if err != nil {
			reason := fwaction.ReasonDecrypt
			if errors.Is(err, fwknop.ErrHMAC) {
				reason = fwaction.ReasonBadHMAC
			}
			d.tally.Knock(s.Key, actions.Refused, reason)
			if d.allow(p.Time) {
				if errors.Is(err, fwknop.ErrHMAC) {
					d.log(s, src, "Non-corresponding HMAC for this stanza")
				} else {
					d.log(s, src, "Error creating fko context: %v", err)
				}
			}
			continue
		}
		if !spent {
			fresh, at, err := d.spend(s, p)
			if errors.Is(err, actions.ErrUnavailable) {
				// A shared cache that cannot be reached knows nothing:
				// fail closed. It logs its outage once itself, so no
				// line per packet here.
				d.tally.Knock(s.Key, actions.Refused, fwaction.ReasonNoState)
				return
			}
			if err != nil {
				// Remembered in memory until the next start: a replay is
				// still refused now. Refusing valid knocks because a disk
				// is full would lock everyone out.
				d.log(s, src, "replay cache: %v", err)
			}
			if !fresh {
				d.tally.Knock(s.Key, actions.Refused, fwaction.ReasonReplay)
				if d.allow(p.Time) {
					first := "at an unknown time"
					if !at.IsZero() {
						first = at.UTC().Format("2006-01-02 15:04:05 UTC")
					}
					d.log(s, src, "Replay detected from source IP: %s, Destination proto/port: 17/%d, first seen %s", src, p.DstPort, first)
				}
				return // fwknopd stops at a replay, whichever stanza
			}
			spent = true
		}
		timeout := s.AccessTimeout
		if msg.ClientTimeout > 0 {
			timeout = min(time.Duration(msg.ClientTimeout)*time.Second, s.MaxTimeout)
		}
		if s.CmdOpen != "" && msg.ClientTimeout == 0 && s.CmdTimer > 0 {
			timeout = s.CmdTimer
		}
		if s.Aging {
			diff := p.Time.Unix() - msg.Time
			if diff < 0 {
				diff = -diff
			}
			if diff > int64(s.MaxAge/time.Second) {
				d.tally.Knock(s.Key, actions.Refused, fwaction.ReasonTooOld)
				if d.allow(p.Time) {
					d.log(s, src, "SPA data time difference is too great (%d seconds).", diff)
				}
				continue
			}
		}
		if msg.Type == fwknop.MsgCommand {
			d.tally.Knock(s.Key, actions.Refused, fwaction.ReasonCommand)
			if d.allow(p.Time) {
				d.log(s, src, "command message refused: command messages are not supported")
			}
			continue
		}
		allowIP, ports, err := fwknop.ParseAccess(msg.Access)
		if err != nil {
			d.tally.Knock(s.Key, actions.Refused, fwaction.ReasonBadAccess)
			if d.allow(p.Time) {
				d.log(s, src, "Invalid source IP in SPA message, ignoring SPA packet: %v", err)
			}
			return
		}
		if allowIP.IsUnspecified() {
			if s.RequireSource {
				d.tally.Knock(s.Key, actions.Refused, fwaction.ReasonSourceRequired)
				if d.allow(p.Time) {
					d.log(s, src, "Got %s when valid source IP was required.", allowIP)
				}
				continue
			}
			allowIP = src
		}
		allowIP = allowIP.Unmap()
		if s.HasRequireUser && msg.User != s.RequireUser {
			d.tally.Knock(s.Key, actions.Refused, fwaction.ReasonUsername)
			if d.allow(p.Time) {
				d.log(s, src, "Username in SPA data (%s) does not match required username: %s", esc(msg.User), esc(s.RequireUser))
			}
			continue
		}
		if msg.Type != fwknop.MsgAccess && msg.Type != fwknop.MsgClientTimeoutAccess {
			d.tally.Knock(s.Key, actions.Refused, fwaction.ReasonNAT)
			if d.allow(p.Time) {
				d.log(s, src, "SPA packet requested NAT access, but is not enabled/supported")
			}
			continue
		}
		if !portsAllowed(s, ports) {
			d.tally.Knock(s.Key, actions.Refused, fwaction.ReasonPort)
			if d.allow(p.Time) {
				d.log(s, src, "One or more requested protocol/ports was denied per access.conf: %s", portList(ports))
			}
			continue
		}
		d.log(s, src, "SPA accepted: opening %s for %s for %v", portList(ports), allowIP, timeout)
		if s.CmdOpen != "" {
			// fwknopd's command cycle looks at the first port only.
			ports = ports[:1]
		}
		for _, pt := range ports {
			emit(actions.Event{
				Kind: actions.Knock, Door: s.Key, Addr: allowIP, Port: pt.Port, Time: p.Time,
				Sender: src, Dst: dst, Guest: msg.User,
				Record: NewRecord(pt, timeout),
			})
		}
		return
	}
}

// NewRecord is how an fwknop knock tells the action what one requested
// port is (actions.Record: the detector decoded and validated it): Port,
// the door's open time in seconds as Time, and the protocol number
// (6, 17) as FLAG0. actions/fwknop reads it back with Request.
func NewRecord(pt fwknop.Port, timeout time.Duration) *actions.Record {
	r := &actions.Record{Has: actions.HasPort | actions.HasTime | actions.HasFlag(0), Port: pt.Port, Time: uint32(timeout / time.Second)}
	r.Flags[0] = uint8(pt.Proto)
	return r
}

// portsAllowed is acc_check_port_access: no requested port may be in
// RESTRICT_PORTS, and with OPEN_PORTS every one must be in it.
func portsAllowed(s *Stanza, ports []fwknop.Port) bool {
	if len(ports) == 0 {
		return false
	}
	for _, p := range ports {
		if hasPort(s.Refuse, p) {
			return false
		}
		if s.Open != nil && !hasPort(s.Open, p) {
			return false
		}
	}
	return true
}

func hasPort(l []fwknop.Port, p fwknop.Port) bool {
	for _, q := range l {
		if q == p {
			return true
		}
	}
	return false
}

func portList(ports []fwknop.Port) string {
	var b strings.Builder
	for i, p := range ports {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%s/%d", proto.Proto(p.Proto), p.Port)
	}
	return b.String()
}

func matchAny(l []netip.Prefix, a netip.Addr) bool {
	for _, p := range l {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// spend records the packet's replay digest: fresh, or when it was first
// seen. A detector not yet committed has no cache and refuses (fresh false).
func (d *Detector) spend(s *Stanza, p *detectors.Packet) (fresh bool, at time.Time, err error) {
	c := d.cache
	if c == nil {
		return false, time.Time{}, nil
	}
	tok, ok := digestToken(fwknop.ReplayDigest(p.Payload))
	if !ok {
		return false, time.Time{}, errors.New("bad replay digest")
	}
	d.tokenBuf = tok
	tokens := c.durable
	if !s.Persist {
		tokens = c.memory
	}
	sp, err := tokens.Spend(p.Time, d.tokenBuf[:spentSize])
	return sp.Fresh, sp.At, err
}

// digestToken turns fwknopd's replay digest (base64 SHA-256, as its
// digest.cache keeps it) into the token the replay cache keeps: its first
// 16 bytes, as many as a ring slot holds (internal/spent).
func digestToken(s string) (tok [32]byte, ok bool) {
	s = strings.TrimRight(s, "=")
	n, err := base64.RawStdEncoding.Decode(tok[:], []byte(s))
	return tok, err == nil && n >= spentSize
}

// allow applies the rate limiter; it reports a line suppressed earlier first.
func (d *Detector) allow(now time.Time) bool {
	ok, suppressed := d.lim.Allow(now)
	if ok && suppressed > 0 {
		d.logf("fwknop: %d log lines about SPA packets suppressed (more than %g a second)", suppressed, d.lim.Rate)
	}
	return ok
}

// log writes one line about a stanza, in fwknopd's form.
func (d *Detector) log(s *Stanza, src netip.Addr, format string, args ...any) {
	d.logf("%s: [%s] (stanza #%d) %s", s.Name, src, s.Num, fmt.Sprintf(format, args...))
}

// esc makes a decrypted field safe for a log line (it came from an
// authenticated client, but still not from the admin).
func esc(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if c := s[i]; c > 0x20 && c < 0x7f {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "\\x%02x", c)
		}
	}
	return b.String()
}
