package main

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

func TestChecksumKnownVector(t *testing.T) {
	// The IPv4 header of Wikipedia's "IPv4 header checksum" example.
	hdr := []byte{0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7}
	if got := checksum(hdr, 0); got != 0xb861 {
		t.Fatalf("checksum = %#04x, want 0xb861", got)
	}
	binary.BigEndian.PutUint16(hdr[10:], 0xb861)
	if got := checksum(hdr, 0); got != 0 {
		t.Fatalf("checksum over a header with its checksum = %#04x, want 0", got)
	}
	// Odd length: the last byte is padded with a zero.
	if got, want := checksum([]byte{0x01, 0x02, 0x03}, 0), ^uint16(0x0102+0x0300); got != want {
		t.Fatalf("odd-length checksum = %#04x, want %#04x", got, want)
	}
}

// reference builds the same packet with gopacket, whose checksum code is
// independent of ours.
func reference(t *testing.T, tm *template, src [4]byte, sport, dport uint16, seq uint32, id uint16) []byte {
	t.Helper()
	ip := &layers.IPv4{Version: 4, IHL: 5, Id: id, Flags: layers.IPv4DontFragment, TTL: 64,
		SrcIP: net.IP(src[:]), DstIP: net.IP(tm.dst[:])}
	var ls []gopacket.SerializableLayer
	if tm.l2 {
		ls = append(ls, &layers.Ethernet{SrcMAC: tm.srcMAC[:], DstMAC: tm.dstMAC[:], EthernetType: layers.EthernetTypeIPv4})
	}
	if tm.proto == protoTCP {
		ip.Protocol = layers.IPProtocolTCP
		tcp := &layers.TCP{SrcPort: layers.TCPPort(sport), DstPort: layers.TCPPort(dport), Seq: seq, DataOffset: 5, SYN: true, Window: 64240}
		tcp.SetNetworkLayerForChecksum(ip)
		ls = append(ls, ip, tcp)
	} else {
		ip.Protocol = layers.IPProtocolUDP
		udp := &layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: layers.UDPPort(dport)}
		udp.SetNetworkLayerForChecksum(ip)
		ls = append(ls, ip, udp, gopacket.Payload(tm.payload))
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestBuildMatchesGopacket(t *testing.T) {
	src := [6]byte{0x02, 0, 0, 0, 0, 1}
	dst := [6]byte{0x02, 0, 0, 0, 0, 2}
	for _, tc := range []struct {
		name    string
		l2      bool
		proto   uint8
		payload []byte
	}{
		{"ethernet tcp", true, protoTCP, nil},
		{"ip tcp", false, protoTCP, nil},
		{"ethernet udp", true, protoUDP, []byte{0}},
		{"ip udp odd payload", false, protoUDP, []byte{1, 2, 3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tm, err := newTemplate(tc.l2, src, dst, tc.proto, netip.MustParseAddr("10.233.0.1"), tc.payload)
			if err != nil {
				t.Fatal(err)
			}
			picker, _ := newSourcePicker(netip.MustParsePrefix("198.18.0.0/15"))
			r := rng(42)
			buf := make([]byte, tm.size())
			for range 1000 {
				x := r.next()
				s := picker.pick(uint32(x))
				sport, dport, seq, id := uint16(x>>32), uint16(x>>40)|1, uint32(r.next()), uint16(x>>48)
				n := tm.build(buf, s, sport, dport, seq, id)
				want := reference(t, tm, s, sport, dport, seq, id)
				// gopacket pads Ethernet frames to 60 bytes; veth and
				// AF_PACKET need no padding, so only the rest must match.
				if len(want) > n && bytes.Count(want[n:], []byte{0}) == len(want)-n {
					want = want[:n]
				}
				if !bytes.Equal(buf[:n], want) {
					t.Fatalf("frame differs from gopacket's\n got %x\nwant %x", buf[:n], want)
				}
				verifyChecksums(t, buf[:n], tm.l2)
			}
		})
	}
}

// verifyChecksums checks that the IP header and the transport segment
// each sum to zero (with the pseudo-header), the receiver's test.
func verifyChecksums(t *testing.T, b []byte, l2 bool) {
	t.Helper()
	if l2 {
		b = b[ethHdrLen:]
	}
	if c := checksum(b[:ipHdrLen], 0); c != 0 {
		t.Fatalf("IP header does not verify: %#04x", c)
	}
	var s, d [4]byte
	copy(s[:], b[12:16])
	copy(d[:], b[16:20])
	seg := b[ipHdrLen:]
	if c := checksum(seg, pseudoSum(s, d, b[9], len(seg))); c != 0 {
		t.Fatalf("transport checksum does not verify: %#04x", c)
	}
}

func TestSourcePicker(t *testing.T) {
	p := netip.MustParsePrefix("198.18.0.0/15")
	sp, err := newSourcePicker(p)
	if err != nil {
		t.Fatal(err)
	}
	r := rng(7)
	seen := map[[4]byte]bool{}
	for range 10000 {
		a := sp.pick(uint32(r.next()))
		if !p.Contains(netip.AddrFrom4(a)) {
			t.Fatalf("%v outside %s", a, p)
		}
		seen[a] = true
	}
	if len(seen) < 9000 {
		t.Fatalf("only %d distinct addresses of 10000 draws from a /15", len(seen))
	}
	one, _ := newSourcePicker(netip.MustParsePrefix("192.0.2.7/32"))
	if a := one.pick(0xffffffff); a != [4]byte{192, 0, 2, 7} {
		t.Fatalf("/32 picked %v", a)
	}
	if _, err := newSourcePicker(netip.MustParsePrefix("2001:db8::/32")); err == nil {
		t.Fatal("IPv6 prefix accepted")
	}
}

func TestTemplateRejects(t *testing.T) {
	var m [6]byte
	if _, err := newTemplate(true, m, m, protoTCP, netip.MustParseAddr("::1"), nil); err == nil {
		t.Error("IPv6 destination accepted")
	}
	if _, err := newTemplate(true, m, m, protoTCP, netip.MustParseAddr("127.0.0.1"), []byte{1}); err == nil {
		t.Error("TCP payload accepted")
	}
	if _, err := newTemplate(true, m, m, 1, netip.MustParseAddr("127.0.0.1"), nil); err == nil {
		t.Error("ICMP accepted")
	}
}

func BenchmarkBuild(b *testing.B) {
	tm, _ := newTemplate(true, [6]byte{}, [6]byte{}, protoTCP, netip.MustParseAddr("10.233.0.1"), nil)
	picker, _ := newSourcePicker(netip.MustParsePrefix("198.18.0.0/15"))
	buf := make([]byte, tm.size())
	r := rng(1)
	for b.Loop() {
		x := r.next()
		tm.build(buf, picker.pick(uint32(x)), uint16(x>>32), 7000, uint32(x), uint16(x>>48))
	}
}

// TestBase64Payload: the SPA flood's payload is all base64 characters, so
// an fwknop daemon's cheap checks pass it on to the HMAC.
func TestBase64Payload(t *testing.T) {
	r := rng(7)
	p := base64Payload(&r, 204)
	if len(p) != 204 || strings.Trim(string(p), "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/") != "" {
		t.Errorf("payload %q", p)
	}
	if p := base64Payload(&r, 0); string(p) != "\x00" {
		t.Errorf("no base64: payload %q, want one zero byte", p)
	}
}
