// Package detectors holds the contracts of the receiving side: a Source
// yields decoded packets, a Detector turns packets into knock events, and
// Rules describe what a detector wants to see so the kernel can drop the rest.
//
// Data flows one way: Source → Packet → Dispatcher → Detector → actions.Event.
// A detector never runs a command; it only emits events.
package detectors

import (
	"errors"
	"net/netip"
	"time"

	"github.com/doorward/doorward/actions"
	"github.com/doorward/doorward/formats/proto"
)

// Proto is the transport protocol of a Packet, and TCPFlags its TCP flag
// bits: the one definition is formats/proto's, which the sequence grammar
// (and so a door's config) shares; they are named here too because a
// Packet and a Rule are made of them.
type (
	Proto    = proto.Proto
	TCPFlags = proto.TCPFlags
)

const (
	ProtoNone = proto.None // not a knock candidate
	TCP       = proto.TCP
	UDP       = proto.UDP

	FIN = proto.FIN
	SYN = proto.SYN
	RST = proto.RST
	PSH = proto.PSH
	ACK = proto.ACK
	URG = proto.URG
)

// Packet is one decoded observation, from the wire or a firewall log line.
// It is owned by the caller and filled in place; it never escapes a call.
type Packet struct {
	Time    time.Time // capture time; the clock for timeouts in replay
	Src     netip.Addr
	Dst     netip.Addr
	SrcPort uint16
	DstPort uint16
	Proto   Proto    // ProtoNone: not TCP or UDP, ignore
	Flags   TCPFlags // valid iff Proto == TCP
	Length  int      // bytes of the IP packet as captured, for debug lines
	Payload []byte   // transport payload; aliases the source's buffer, valid until the next ReadPacket
}

// Reset clears p for reuse without dropping its Payload buffer.
func (p *Packet) Reset() {
	*p = Packet{Payload: p.Payload[:0]}
}

// ErrClosed is returned by ReadPacket after Close.
var ErrClosed = errors.New("source closed")

// Source yields packets. Implementations should:
//   - fill p in place and not allocate per packet;
//   - return io.EOF at the end of a finite source (a pcap file);
//   - return ErrClosed (or wrap it) once Close was called, and make Close
//     unblock a pending ReadPacket promptly;
//   - return other errors for a lost interface so the caller can reopen.
type Source interface {
	ReadPacket(p *Packet) error
	Close() error
	String() string
}

// Rule is one clause of what a detector wants to see: packets of Proto to one
// of Ports, optionally only to one of Dst, and for TCP only when
// flags&FlagMask == FlagWant. Capture ORs every rule into one kernel filter.
type Rule struct {
	Dst      []netip.Addr // empty: any local address
	Proto    Proto
	Ports    []uint16
	FlagMask TCPFlags
	FlagWant TCPFlags
}

// Detector owns every door of its kind, so dispatch is one call per kind.
// Its methods are called by one goroutine at a time (the runtime serialises
// them); a detector needs no locks.
type Detector interface {
	// Rules is the union of what this detector must see.
	Rules() []Rule
	// Observe looks at one packet the dispatcher routed here because its
	// (proto, port) appears in Rules. It must not block or keep p.
	Observe(p *Packet, emit func(actions.Event))
	// Expire drops attempts that timed out by now, logging as knockd does.
	Expire(now time.Time)
}

// A PartExpirer can spread Expire over time. A sweep of a full source
// table (65,536 sources) takes milliseconds, and whoever runs it holds
// the detectors meanwhile, so a knock that arrives then waits for it
// (issue 14: knock-to-command p99 within 2 ms): ExpirePart(now, i, n) is
// Expire over the i-th of n slices of the detector's tables, and calling
// it for i = 0 … n-1 in turn is one Expire. The live daemon sweeps a part
// at a time; replay, whose log must not depend on timing, calls Expire.
type PartExpirer interface {
	ExpirePart(now time.Time, part, parts int)
}
