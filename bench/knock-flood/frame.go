package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
)

// Header sizes. Frames carry no IP or TCP options.
const (
	ethHdrLen = 14
	ipHdrLen  = 20
	tcpHdrLen = 20
	udpHdrLen = 8

	protoTCP = 6
	protoUDP = 17

	tcpFlagSYN = 0x02
)

// template is what stays fixed across the packets of one flood; build
// fills in what varies (source address and port, destination port, TCP
// sequence number, IP ID) and the checksums.
type template struct {
	l2      bool    // prepend an Ethernet header (AF_PACKET); false: the frame starts at the IP header (IP_HDRINCL)
	srcMAC  [6]byte // Ethernet source, when l2
	dstMAC  [6]byte // Ethernet destination, when l2
	proto   uint8   // protoTCP (a SYN) or protoUDP
	dst     [4]byte
	payload []byte // UDP payload (TCP SYNs carry none)
}

// newTemplate checks the fields that build relies on.
func newTemplate(l2 bool, srcMAC, dstMAC [6]byte, proto uint8, dst netip.Addr, payload []byte) (*template, error) {
	if !dst.Is4() {
		return nil, fmt.Errorf("destination %s: only IPv4 is supported", dst)
	}
	switch proto {
	case protoTCP:
		if len(payload) != 0 {
			return nil, errors.New("TCP SYNs carry no payload")
		}
	case protoUDP:
		if len(payload) > 1400 {
			return nil, errors.New("UDP payload longer than 1400 bytes")
		}
	default:
		return nil, fmt.Errorf("protocol %d: only TCP (6) and UDP (17)", proto)
	}
	return &template{l2: l2, srcMAC: srcMAC, dstMAC: dstMAC, proto: proto, dst: dst.As4(), payload: payload}, nil
}

// l4Len is the length of the transport header and payload.
func (t *template) l4Len() int {
	if t.proto == protoTCP {
		return tcpHdrLen
	}
	return udpHdrLen + len(t.payload)
}

// size is the length of one frame.
func (t *template) size() int {
	n := ipHdrLen + t.l4Len()
	if t.l2 {
		n += ethHdrLen
	}
	return n
}

// build writes one complete frame into b (at least size() bytes) and
// returns its length.
func (t *template) build(b []byte, src [4]byte, sport, dport uint16, seq uint32, ipID uint16) int {
	n := t.size()
	b = b[:n]
	if t.l2 {
		copy(b[0:6], t.dstMAC[:])
		copy(b[6:12], t.srcMAC[:])
		binary.BigEndian.PutUint16(b[12:14], 0x0800)
		b = b[ethHdrLen:]
	}
	l4 := t.l4Len()
	ip := b[:ipHdrLen]
	ip[0] = 0x45 // version 4, IHL 5
	ip[1] = 0
	binary.BigEndian.PutUint16(ip[2:4], uint16(ipHdrLen+l4))
	binary.BigEndian.PutUint16(ip[4:6], ipID)
	binary.BigEndian.PutUint16(ip[6:8], 0x4000) // DF
	ip[8] = 64
	ip[9] = t.proto
	ip[10], ip[11] = 0, 0
	copy(ip[12:16], src[:])
	copy(ip[16:20], t.dst[:])
	binary.BigEndian.PutUint16(ip[10:12], checksum(ip, 0))

	seg := b[ipHdrLen : ipHdrLen+l4]
	binary.BigEndian.PutUint16(seg[0:2], sport)
	binary.BigEndian.PutUint16(seg[2:4], dport)
	if t.proto == protoTCP {
		binary.BigEndian.PutUint32(seg[4:8], seq)
		binary.BigEndian.PutUint32(seg[8:12], 0) // ack
		seg[12] = (tcpHdrLen / 4) << 4
		seg[13] = tcpFlagSYN
		binary.BigEndian.PutUint16(seg[14:16], 64240) // window
		seg[16], seg[17] = 0, 0                       // checksum
		seg[18], seg[19] = 0, 0                       // urgent pointer
		binary.BigEndian.PutUint16(seg[16:18], checksum(seg, pseudoSum(src, t.dst, protoTCP, l4)))
	} else {
		binary.BigEndian.PutUint16(seg[4:6], uint16(l4))
		seg[6], seg[7] = 0, 0
		copy(seg[udpHdrLen:], t.payload)
		c := checksum(seg, pseudoSum(src, t.dst, protoUDP, l4))
		if c == 0 {
			c = 0xffff // RFC 768: a computed zero is sent as all ones
		}
		binary.BigEndian.PutUint16(seg[6:8], c)
	}
	return n
}

// pseudoSum is the unfolded ones'-complement sum of the IPv4 pseudo-header.
func pseudoSum(src, dst [4]byte, proto uint8, l4Len int) uint32 {
	s := uint32(src[0])<<8 | uint32(src[1])
	s += uint32(src[2])<<8 | uint32(src[3])
	s += uint32(dst[0])<<8 | uint32(dst[1])
	s += uint32(dst[2])<<8 | uint32(dst[3])
	s += uint32(proto)
	s += uint32(l4Len)
	return s
}

// checksum is the Internet checksum (RFC 1071) of b, starting from the
// unfolded partial sum initial.
func checksum(b []byte, initial uint32) uint16 {
	s := initial
	for len(b) >= 2 {
		s += uint32(b[0])<<8 | uint32(b[1])
		b = b[2:]
	}
	if len(b) == 1 {
		s += uint32(b[0]) << 8
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}

// rng is xorshift64*: fast, and good enough to scatter source addresses.
type rng uint64

func (r *rng) next() uint64 {
	x := uint64(*r)
	x ^= x >> 12
	x ^= x << 25
	x ^= x >> 27
	*r = rng(x)
	return x * 2685821657736338717
}

// sourcePicker draws addresses uniformly from an IPv4 prefix.
type sourcePicker struct {
	base, mask uint32 // mask: the host bits
}

func newSourcePicker(p netip.Prefix) (sourcePicker, error) {
	if !p.Addr().Is4() {
		return sourcePicker{}, fmt.Errorf("source prefix %s: only IPv4 is supported", p)
	}
	p = p.Masked()
	a := p.Addr().As4()
	var mask uint32
	if p.Bits() < 32 {
		mask = ^uint32(0) >> p.Bits()
	}
	return sourcePicker{base: binary.BigEndian.Uint32(a[:]), mask: mask}, nil
}

func (s sourcePicker) pick(r uint32) [4]byte {
	var a [4]byte
	binary.BigEndian.PutUint32(a[:], s.base|r&s.mask)
	return a
}
