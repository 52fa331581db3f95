// Package pcaptest builds frames and capture files for tests of the packet
// path, so a test states the packet it means (addresses, ports, flags) and not
// a hex dump. Frames carry correct lengths and checksums, so they are also
// fit for tools that verify them (tcpdump, Wireshark) when a test fails and
// someone opens the file.
package pcaptest

import (
	"encoding/binary"
	"fmt"
	"io"
	"net/netip"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/doorward/doorward/detectors"
	"github.com/doorward/doorward/detectors/decode"
)

// Frame is one packet to encode. The address family of Src and Dst picks
// IPv4 or IPv6; both must be of the same family.
type Frame struct {
	Time    time.Time
	Src     netip.AddrPort
	Dst     netip.AddrPort
	Proto   detectors.Proto // TCP or UDP
	Flags   detectors.TCPFlags
	Payload []byte
	VLAN    uint16 // 802.1Q VLAN ID; 0 means untagged
}

// Fixed header values, chosen so frames are deterministic byte for byte.
var (
	srcMAC = [6]byte{0x02, 0x00, 0x00, 0x00, 0x00, 0x01}
	dstMAC = [6]byte{0x02, 0x00, 0x00, 0x00, 0x00, 0x02}
)

const (
	ttl      = 64
	ipID     = 0x1234
	tcpSeq   = 1000
	tcpWin   = 65535
	ngIfName = "pcaptest0"
)

// Encode returns f as one frame of the given link type. It panics on a frame
// that cannot be encoded (mixed families, a protocol other than TCP or UDP,
// an IPv6 frame on LinkType IPv4), since that is a bug in the test.
func Encode(link decode.LinkType, f Frame) []byte {
	ip := encodeIP(f)
	v6 := f.Src.Addr().Is6()
	ethType := uint16(0x0800)
	if v6 {
		ethType = 0x86dd
	}
	var hdr []byte
	switch link.Normalize() {
	case decode.Raw:
	case decode.IPv4:
		if v6 {
			panic("pcaptest: IPv6 frame on link type IPv4")
		}
	case decode.IPv6:
		if !v6 {
			panic("pcaptest: IPv4 frame on link type IPv6")
		}
	case decode.Ethernet:
		hdr = append(hdr, dstMAC[:]...)
		hdr = append(hdr, srcMAC[:]...)
		hdr = appendEtherType(hdr, f.VLAN, ethType)
	case decode.LinuxSLL:
		hdr = binary.BigEndian.AppendUint16(hdr, 0) // PACKET_HOST
		hdr = binary.BigEndian.AppendUint16(hdr, 1) // ARPHRD_ETHER
		hdr = binary.BigEndian.AppendUint16(hdr, 6)
		hdr = append(hdr, srcMAC[:]...)
		hdr = append(hdr, 0, 0)
		hdr = appendEtherType(hdr, f.VLAN, ethType)
	case decode.LinuxSLL2:
		proto := ethType
		if f.VLAN != 0 {
			proto = 0x8100
		}
		hdr = binary.BigEndian.AppendUint16(hdr, proto)
		hdr = append(hdr, 0, 0)                     // reserved
		hdr = binary.BigEndian.AppendUint32(hdr, 2) // ifindex
		hdr = binary.BigEndian.AppendUint16(hdr, 1) // ARPHRD_ETHER
		hdr = append(hdr, 0, 6)                     // PACKET_HOST, address length
		hdr = append(hdr, srcMAC[:]...)
		hdr = append(hdr, 0, 0)
		if f.VLAN != 0 {
			hdr = binary.BigEndian.AppendUint16(hdr, f.VLAN&0x0fff)
			hdr = binary.BigEndian.AppendUint16(hdr, ethType)
		}
	case decode.Null:
		fam := uint32(2)
		if v6 {
			fam = 30 // as a macOS capture would say
		}
		hdr = binary.LittleEndian.AppendUint32(hdr, fam)
	case decode.Loop:
		fam := uint32(2)
		if v6 {
			fam = 24
		}
		hdr = binary.BigEndian.AppendUint32(hdr, fam)
	default:
		panic(fmt.Sprintf("pcaptest: cannot encode link type %v", link))
	}
	return append(hdr, ip...)
}

// appendEtherType writes the type field, preceded by an 802.1Q tag if vlan
// is set.
func appendEtherType(b []byte, vlan, typ uint16) []byte {
	if vlan != 0 {
		b = binary.BigEndian.AppendUint16(b, 0x8100)
		b = binary.BigEndian.AppendUint16(b, vlan&0x0fff)
	}
	return binary.BigEndian.AppendUint16(b, typ)
}

// EncodeIP returns the IP packet of f with no link header.
func EncodeIP(f Frame) []byte { return encodeIP(f) }

func encodeIP(f Frame) []byte {
	src, dst := f.Src.Addr(), f.Dst.Addr()
	if !src.IsValid() || !dst.IsValid() || src.Is4() != dst.Is4() {
		panic(fmt.Sprintf("pcaptest: addresses %v and %v are not of one family", f.Src, f.Dst))
	}
	l4 := encodeTransport(f)
	var ip []byte
	if src.Is4() {
		ip = make([]byte, 20, 20+len(l4))
		ip[0] = 0x45
		binary.BigEndian.PutUint16(ip[2:], uint16(20+len(l4)))
		binary.BigEndian.PutUint16(ip[4:], ipID)
		binary.BigEndian.PutUint16(ip[6:], 0x4000) // don't fragment
		ip[8] = ttl
		ip[9] = byte(f.Proto)
		s, d := src.As4(), dst.As4()
		copy(ip[12:], s[:])
		copy(ip[16:], d[:])
		binary.BigEndian.PutUint16(ip[10:], ^fold(sum(0, ip)))
	} else {
		ip = make([]byte, 40, 40+len(l4))
		ip[0] = 0x60
		binary.BigEndian.PutUint16(ip[4:], uint16(len(l4)))
		ip[6] = byte(f.Proto)
		ip[7] = ttl
		s, d := src.As16(), dst.As16()
		copy(ip[8:], s[:])
		copy(ip[24:], d[:])
	}
	csumOff := 16
	if f.Proto == detectors.UDP {
		csumOff = 6
	}
	c := ^fold(sum(pseudoHeader(src, dst, f.Proto, len(l4)), l4))
	if c == 0 && f.Proto == detectors.UDP {
		c = 0xffff // 0 means "no checksum" in UDP
	}
	binary.BigEndian.PutUint16(l4[csumOff:], c)
	return append(ip, l4...)
}

func encodeTransport(f Frame) []byte {
	var b []byte
	switch f.Proto {
	case detectors.TCP:
		b = make([]byte, 20, 20+len(f.Payload))
		binary.BigEndian.PutUint32(b[4:], tcpSeq)
		if f.Flags&detectors.ACK != 0 {
			binary.BigEndian.PutUint32(b[8:], 1)
		}
		b[12] = 5 << 4
		b[13] = byte(f.Flags & 0x3f)
		binary.BigEndian.PutUint16(b[14:], tcpWin)
	case detectors.UDP:
		b = make([]byte, 8, 8+len(f.Payload))
		binary.BigEndian.PutUint16(b[4:], uint16(8+len(f.Payload)))
	default:
		panic(fmt.Sprintf("pcaptest: cannot encode protocol %v", f.Proto))
	}
	binary.BigEndian.PutUint16(b[0:], f.Src.Port())
	binary.BigEndian.PutUint16(b[2:], f.Dst.Port())
	return append(b, f.Payload...)
}

func pseudoHeader(src, dst netip.Addr, proto detectors.Proto, n int) uint32 {
	var s uint32
	s = sum(s, src.AsSlice())
	s = sum(s, dst.AsSlice())
	return s + uint32(proto) + uint32(n)>>16 + uint32(n)&0xffff
}

func sum(s uint32, b []byte) uint32 {
	for len(b) >= 2 {
		s += uint32(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		s += uint32(b[0]) << 8
	}
	return s
}

func fold(s uint32) uint16 {
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return uint16(s)
}

func captureInfo(f Frame, data []byte) gopacket.CaptureInfo {
	return gopacket.CaptureInfo{Timestamp: f.Time, CaptureLength: len(data), Length: len(data)}
}

// WritePcap writes frames as a classic pcap file with nanosecond timestamps,
// so Frame.Time survives a round trip exactly.
func WritePcap(w io.Writer, link decode.LinkType, frames []Frame) error {
	pw := pcapgo.NewWriterNanos(w)
	if err := pw.WriteFileHeader(262144, layers.LinkType(link)); err != nil {
		return err
	}
	for _, f := range frames {
		data := Encode(link, f)
		if err := pw.WritePacket(captureInfo(f, data), data); err != nil {
			return err
		}
	}
	return nil
}

// WritePcapNG writes frames as a pcapng file with one interface.
func WritePcapNG(w io.Writer, link decode.LinkType, frames []Frame) error {
	intf := pcapgo.DefaultNgInterface
	intf.Name = ngIfName
	intf.LinkType = layers.LinkType(link)
	nw, err := pcapgo.NewNgWriterInterface(w, intf, pcapgo.DefaultNgWriterOptions)
	if err != nil {
		return err
	}
	for _, f := range frames {
		data := Encode(link, f)
		if err := nw.WritePacket(captureInfo(f, data), data); err != nil {
			return err
		}
	}
	return nw.Flush()
}

// Spoofed is the i-th address of a spoofed flood: spread over all of IPv4
// (a multiplicative hash of i, never 0.x.x.x), as a flood with random
// sources is, so that no prefix holds more than a few of them, and
// reproducible.
func Spoofed(i int) netip.Addr {
	x := uint32(i+1) * 2654435761
	return netip.AddrFrom4([4]byte{byte(x>>24) | 1, byte(x >> 16), byte(x >> 8), byte(x)})
}
