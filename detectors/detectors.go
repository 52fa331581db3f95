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
)

// Proto is the transport protocol of a Packet. Values are IANA numbers so a
// decoder can store the IP header's protocol byte directly.
type Proto uint8

const (
	ProtoNone Proto = 0 // not a knock candidate
	TCP       Proto = 6
	UDP       Proto = 17
)

func (p Proto) String() string {
	switch p {
	case TCP:
		return "tcp"
	case UDP:
		return "udp"
	}
	return "none"
}

// TCPFlags are the low six TCP header flag bits, as on the wire.
type TCPFlags uint8

const (
	FIN TCPFlags = 1 << iota
	SYN
	RST
	PSH
	ACK
	URG
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
// All methods are called from one goroutine; a detector needs no locks.
type Detector interface {
	// Rules is the union of what this detector must see.
	Rules() []Rule
	// Observe looks at one packet the dispatcher routed here because its
	// (proto, port) appears in Rules. It must not block or keep p.
	Observe(p *Packet, emit func(actions.Event))
	// Expire drops attempts that timed out by now, logging as knockd does.
	Expire(now time.Time)
}
