// Package decode turns one captured frame into a detectors.Packet.
//
// It is hand-written rather than built on gopacket's layers because it runs
// once per packet on every source: it allocates nothing, copies nothing (the
// payload aliases the frame), and reads only the handful of fields a knock
// detector needs. Anything it does not understand is "not a knock candidate"
// (false), never an error: the input is attacker-controlled and a malformed
// frame is just noise.
package decode

import (
	"encoding/binary"
	"net/netip"

	"github.com/doorward/doorward/detectors"
)

// LinkType is a pcap LINKTYPE_ number, the value stored in pcap and pcapng
// file headers, so a replay source can pass the file's header through.
type LinkType uint16

const (
	Null      LinkType = 0   // BSD loopback: 4-byte address family in the capturing host's byte order
	Ethernet  LinkType = 1   // Ethernet II, optionally 802.1Q/802.1ad tagged
	Raw       LinkType = 101 // bare IPv4 or IPv6 (tun, WireGuard, SOCK_DGRAM packet sockets)
	Loop      LinkType = 108 // OpenBSD loopback: like Null but the family is big-endian
	LinuxSLL  LinkType = 113 // Linux cooked capture v1 (tcpdump -i any, older libpcap)
	IPv4      LinkType = 228 // bare IPv4 only
	IPv6      LinkType = 229 // bare IPv6 only
	LinuxSLL2 LinkType = 276 // Linux cooked capture v2 (tcpdump -i any, libpcap ≥ 1.10)

	// rawDLT12 and rawDLT14 are the numbers some systems wrote for raw IP
	// before LINKTYPE_RAW was fixed at 101; files in the wild still carry them.
	rawDLT12 LinkType = 12
	rawDLT14 LinkType = 14
)

// Normalize maps historical aliases to their canonical number so callers can
// compare against the constants above.
func (l LinkType) Normalize() LinkType {
	switch l {
	case rawDLT12, rawDLT14:
		return Raw
	}
	return l
}

// Supported reports whether Decode understands frames of this link type.
func (l LinkType) Supported() bool {
	switch l.Normalize() {
	case Null, Ethernet, Raw, Loop, LinuxSLL, IPv4, IPv6, LinuxSLL2:
		return true
	}
	return false
}

func (l LinkType) String() string {
	switch l.Normalize() {
	case Null:
		return "null"
	case Ethernet:
		return "ethernet"
	case Raw:
		return "raw"
	case Loop:
		return "loop"
	case LinuxSLL:
		return "linux-sll"
	case IPv4:
		return "ipv4"
	case IPv6:
		return "ipv6"
	case LinuxSLL2:
		return "linux-sll2"
	}
	return "linktype(" + itoa(uint16(l)) + ")"
}

func itoa(v uint16) string {
	var b [5]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			return string(b[i:])
		}
	}
}

const (
	etherTypeIPv4   = 0x0800
	etherTypeIPv6   = 0x86dd
	etherType8021Q  = 0x8100
	etherType8021AD = 0x88a8
	etherTypeQinQ   = 0x9100 // pre-standard 802.1ad, still emitted by some switches

	// maxVLANTags bounds the tag walk; real networks stack at most two.
	maxVLANTags = 8
	// maxExtHeaders bounds the IPv6 extension header walk so a packet made of
	// nothing but hop-by-hop options costs a fixed amount of work.
	maxExtHeaders = 8
)

// Decode fills p from one frame of the given link type and reports whether
// the frame is a TCP or UDP packet worth showing to a detector.
//
// On true, every field but Time is set; Payload aliases data. On false,
// p.Proto is ProtoNone and the other fields are unspecified, so callers must
// not look at them. p.Time is never touched: only the source knows when the
// frame was captured.
//
// Fragments other than the first are rejected because they carry no ports.
// A packet whose IP length exceeds the captured bytes (a short snap length) is
// decoded from what was captured, as long as the transport header is whole.
func Decode(link LinkType, data []byte, p *detectors.Packet) bool {
	p.Proto = detectors.ProtoNone
	switch link.Normalize() {
	case Ethernet:
		if len(data) < 14 {
			return false
		}
		return decodeEtherType(binary.BigEndian.Uint16(data[12:]), data[14:], p)
	case Raw:
		return decodeIP(data, p)
	case LinuxSLL:
		if len(data) < 16 {
			return false
		}
		return decodeEtherType(binary.BigEndian.Uint16(data[14:]), data[16:], p)
	case LinuxSLL2:
		if len(data) < 20 {
			return false
		}
		return decodeEtherType(binary.BigEndian.Uint16(data[0:]), data[20:], p)
	case Null:
		if len(data) < 4 {
			return false
		}
		// The family is in the byte order of the machine that wrote the
		// capture, which we do not know; AF_ values are small, so whichever
		// reading fits in the low bytes is the right one.
		fam := binary.LittleEndian.Uint32(data)
		if fam > 0xffff {
			fam = binary.BigEndian.Uint32(data)
		}
		return isAFInet(fam) && decodeIP(data[4:], p)
	case Loop:
		if len(data) < 4 {
			return false
		}
		return isAFInet(binary.BigEndian.Uint32(data)) && decodeIP(data[4:], p)
	case IPv4:
		return len(data) > 0 && data[0]>>4 == 4 && decodeIP(data, p)
	case IPv6:
		return len(data) > 0 && data[0]>>4 == 6 && decodeIP(data, p)
	}
	return false
}

// isAFInet accepts AF_INET (2 everywhere) and AF_INET6, whose value differs
// by the operating system that wrote the capture.
func isAFInet(fam uint32) bool {
	switch fam {
	case 2, // AF_INET
		10, // Linux AF_INET6
		24, // NetBSD, OpenBSD, BSD/OS AF_INET6
		28, // FreeBSD, DragonFly AF_INET6
		30: // Darwin AF_INET6
		return true
	}
	return false
}

// decodeEtherType skips any VLAN tags and dispatches on the inner type. Cooked
// captures reuse it because libpcap re-inserts stripped tags after the SLL
// header.
func decodeEtherType(typ uint16, data []byte, p *detectors.Packet) bool {
	for range maxVLANTags {
		if typ != etherType8021Q && typ != etherType8021AD && typ != etherTypeQinQ {
			break
		}
		if len(data) < 4 {
			return false
		}
		typ = binary.BigEndian.Uint16(data[2:])
		data = data[4:]
	}
	switch typ {
	case etherTypeIPv4:
		return len(data) > 0 && data[0]>>4 == 4 && decodeIPv4(data, p)
	case etherTypeIPv6:
		return len(data) > 0 && data[0]>>4 == 6 && decodeIPv6(data, p)
	}
	return false
}

func decodeIP(data []byte, p *detectors.Packet) bool {
	if len(data) == 0 {
		return false
	}
	switch data[0] >> 4 {
	case 4:
		return decodeIPv4(data, p)
	case 6:
		return decodeIPv6(data, p)
	}
	return false
}

func decodeIPv4(data []byte, p *detectors.Packet) bool {
	if len(data) < 20 {
		return false
	}
	ihl := int(data[0]&0x0f) * 4
	if ihl < 20 || len(data) < ihl {
		return false
	}
	// Total length 0 is what Linux writes for GSO/GRO packets over 64 KiB
	// (BIG TCP); the captured length is then the only length there is.
	end := int(binary.BigEndian.Uint16(data[2:]))
	switch {
	case end == 0 || end > len(data):
		end = len(data)
	case end < ihl:
		return false
	}
	if binary.BigEndian.Uint16(data[6:])&0x1fff != 0 {
		return false
	}
	p.Src = netip.AddrFrom4([4]byte(data[12:16]))
	p.Dst = netip.AddrFrom4([4]byte(data[16:20]))
	return decodeTransport(data[9], data[:end], ihl, p)
}

func decodeIPv6(data []byte, p *detectors.Packet) bool {
	if len(data) < 40 || v4Mapped(data[8:24]) || v4Mapped(data[24:40]) {
		return false
	}
	end := 40 + int(binary.BigEndian.Uint16(data[4:]))
	if end == 40 || end > len(data) { // 0: jumbogram or BIG TCP
		end = len(data)
	}
	data = data[:end]
	next, off := data[6], 40
walk:
	for range maxExtHeaders {
		switch next {
		case byte(detectors.TCP), byte(detectors.UDP):
			break walk
		case 0, 43, 60: // hop-by-hop, routing, destination options
			if off+2 > end {
				return false
			}
			next, off = data[off], off+(int(data[off+1])+1)*8
		case 44: // fragment
			if off+8 > end {
				return false
			}
			if binary.BigEndian.Uint16(data[off+2:])&0xfff8 != 0 {
				return false
			}
			next, off = data[off], off+8
		case 51: // authentication header: length in 4-byte units, minus 2
			if off+2 > end {
				return false
			}
			next, off = data[off], off+(int(data[off+1])+2)*4
		default: // ESP 50, no next header 59, anything unknown
			return false
		}
	}
	if off > end {
		return false
	}
	p.Src = netip.AddrFrom16([16]byte(data[8:24]))
	p.Dst = netip.AddrFrom16([16]byte(data[24:40]))
	return decodeTransport(next, data, off, p)
}

// v4Mapped reports whether a is an IPv4-mapped address (::ffff:a.b.c.d).
// RFC 4291 2.5.5.2: such addresses must not appear on the wire, and Linux's
// TCP and UDP drop packets from them; one that does is forged, and must
// reach no door, neither as an IPv6 knocker nor (after an Unmap anywhere
// downstream) as the IPv4 address a.b.c.d it names.
func v4Mapped(a []byte) bool {
	return binary.BigEndian.Uint64(a) == 0 && binary.BigEndian.Uint32(a[8:]) == 0xffff
}

// decodeTransport reads the TCP or UDP header at data[off:]; data ends where
// the IP packet ends.
func decodeTransport(proto byte, data []byte, off int, p *detectors.Packet) bool {
	end := len(data)
	switch detectors.Proto(proto) {
	case detectors.TCP:
		if off+20 > end {
			return false
		}
		doff := int(data[off+12]>>4) * 4
		if doff < 20 || off+doff > end {
			return false
		}
		p.Flags = detectors.TCPFlags(data[off+13] & 0x3f)
		p.Payload = data[off+doff : end : end]
	case detectors.UDP:
		if off+8 > end {
			return false
		}
		// A UDP length shorter than the header is malformed; 0 is legal for
		// IPv6 jumbograms and longer than captured means a short snap length.
		switch ulen := int(binary.BigEndian.Uint16(data[off+4:])); {
		case ulen == 0 || off+ulen > end:
		case ulen < 8:
			return false
		default:
			end = off + ulen
		}
		p.Flags = 0
		p.Payload = data[off+8 : end : end]
	default:
		return false
	}
	p.SrcPort = binary.BigEndian.Uint16(data[off:])
	p.DstPort = binary.BigEndian.Uint16(data[off+2:])
	p.Length = len(data)
	p.Proto = detectors.Proto(proto)
	return true
}
