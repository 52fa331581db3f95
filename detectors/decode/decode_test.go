package decode_test

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"testing"
	"unsafe"

	"github.com/doorward/doorward/detectors"
	"github.com/doorward/doorward/detectors/decode"
	"github.com/doorward/doorward/detectors/pcaptest"
)

// view is the comparable projection of a Packet, so a table row is checked
// with one comparison.
type view struct {
	Src, Dst         netip.Addr
	SrcPort, DstPort uint16
	Proto            detectors.Proto
	Flags            detectors.TCPFlags
	Length           int
	Payload          string
}

func viewOf(p *detectors.Packet) view {
	return view{p.Src, p.Dst, p.SrcPort, p.DstPort, p.Proto, p.Flags, p.Length, string(p.Payload)}
}

var (
	c4 = netip.MustParseAddrPort("192.0.2.7:40000")
	s4 = netip.MustParseAddrPort("198.51.100.1:7000")
	c6 = netip.MustParseAddrPort("[2001:db8::7]:40000")
	s6 = netip.MustParseAddrPort("[2001:db8::1]:7000")
)

func syn(src, dst netip.AddrPort) pcaptest.Frame {
	return pcaptest.Frame{Src: src, Dst: dst, Proto: detectors.TCP, Flags: detectors.SYN}
}

func udp(src, dst netip.AddrPort, payload string) pcaptest.Frame {
	return pcaptest.Frame{Src: src, Dst: dst, Proto: detectors.UDP, Payload: []byte(payload)}
}

// want is what Decode should report for f, given the IP packet length.
func want(f pcaptest.Frame) view {
	return view{
		Src: f.Src.Addr(), Dst: f.Dst.Addr(),
		SrcPort: f.Src.Port(), DstPort: f.Dst.Port(),
		Proto: f.Proto, Flags: f.Flags,
		Length:  len(pcaptest.EncodeIP(f)),
		Payload: string(f.Payload),
	}
}

var linkTypes = []decode.LinkType{
	decode.Ethernet, decode.Raw, decode.LinuxSLL, decode.LinuxSLL2,
	decode.Null, decode.Loop, decode.IPv4, decode.IPv6,
}

// compatible reports whether the family-specific link types can carry f.
func compatible(link decode.LinkType, f pcaptest.Frame) bool {
	switch link {
	case decode.IPv4:
		return f.Src.Addr().Is4()
	case decode.IPv6:
		return f.Src.Addr().Is6()
	}
	return true
}

// withExt inserts IPv6 extension headers (each given with its own
// next-header byte left zero; it is filled in) between the fixed header and
// the transport header of a bare IPv6 packet.
func withExt(ip []byte, types []byte, exts ...[]byte) []byte {
	out := append([]byte(nil), ip[:40]...)
	next := ip[6]
	out[6] = types[0]
	n := 0
	for i, e := range exts {
		e = append([]byte(nil), e...)
		if i+1 < len(exts) {
			e[0] = types[i+1]
		} else {
			e[0] = next
		}
		out = append(out, e...)
		n += len(e)
	}
	out = append(out, ip[40:]...)
	binary.BigEndian.PutUint16(out[4:], uint16(len(out)-40))
	return out
}

var (
	hopByHop = []byte{0, 0, 1, 4, 0, 0, 0, 0}        // 8 bytes: PadN
	fragment = []byte{0, 0, 0x00, 0x01, 0, 0, 0, 42} // offset 0, more fragments
	laterFrg = []byte{0, 0, 0x05, 0x00, 0, 0, 0, 42} // offset 160
	destOpts = []byte{0, 1, 1, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	authHdr  = []byte{0, 2, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0} // (2+2)*4 = 16 bytes
)

func TestDecode(t *testing.T) {
	frames := map[string]pcaptest.Frame{
		"v4 syn":         syn(c4, s4),
		"v4 syn+ack":     {Src: c4, Dst: s4, Proto: detectors.TCP, Flags: detectors.SYN | detectors.ACK},
		"v4 tcp payload": {Src: c4, Dst: s4, Proto: detectors.TCP, Flags: detectors.PSH | detectors.ACK, Payload: []byte("knock")},
		"v4 udp":         udp(c4, s4, "open sesame"),
		"v4 udp empty":   udp(c4, s4, ""),
		"v6 syn":         syn(c6, s6),
		"v6 udp":         udp(c6, s6, "hello"),
		"v4 syn vlan":    {Src: c4, Dst: s4, Proto: detectors.TCP, Flags: detectors.SYN, VLAN: 100},
		"v6 udp vlan":    {Src: c6, Dst: s6, Proto: detectors.UDP, Payload: []byte("x"), VLAN: 4094},
		"v4 all flags":   {Src: c4, Dst: s4, Proto: detectors.TCP, Flags: 0x3f},
		"v6 link-local":  syn(netip.MustParseAddrPort("[fe80::1]:1"), netip.MustParseAddrPort("[fe80::2]:2")),
	}
	for name, f := range frames {
		for _, link := range linkTypes {
			if !compatible(link, f) || (f.VLAN != 0 && link != decode.Ethernet && link != decode.LinuxSLL && link != decode.LinuxSLL2) {
				continue
			}
			t.Run(fmt.Sprintf("%s/%v", name, link), func(t *testing.T) {
				var p detectors.Packet
				if !decode.Decode(link, pcaptest.Encode(link, f), &p) {
					t.Fatal("Decode = false")
				}
				if got, want := viewOf(&p), want(f); got != want {
					t.Errorf("got  %+v\nwant %+v", got, want)
				}
			})
		}
	}
}

// TestDecodeHandBuilt covers what pcaptest does not produce: stacked tags,
// IPv6 extension headers, IPv4 options and fragments, padding, and the
// malformed inputs that must be turned away.
func TestDecodeHandBuilt(t *testing.T) {
	v4 := pcaptest.EncodeIP(syn(c4, s4))
	v6 := pcaptest.EncodeIP(syn(c6, s6))
	u6 := pcaptest.EncodeIP(udp(c6, s6, "hi"))
	ether := func(ethType uint16, tags [][2]uint16, ip []byte) []byte {
		b := make([]byte, 12)
		for _, tag := range tags {
			b = binary.BigEndian.AppendUint16(b, tag[0])
			b = binary.BigEndian.AppendUint16(b, tag[1])
		}
		b = binary.BigEndian.AppendUint16(b, ethType)
		return append(b, ip...)
	}
	mod := func(b []byte, f func([]byte)) []byte {
		b = append([]byte(nil), b...)
		f(b)
		return b
	}
	withOptions := func(ip []byte) []byte { // IHL 6: one 4-byte option word
		out := append([]byte(nil), ip[:20]...)
		out = append(out, 1, 1, 1, 0) // NOP NOP NOP EOL
		out = append(out, ip[20:]...)
		out[0] = 0x46
		binary.BigEndian.PutUint16(out[2:], uint16(len(out)))
		return out
	}
	w4, w6, wu6 := want(syn(c4, s4)), want(syn(c6, s6)), want(udp(c6, s6, "hi"))
	ext := func(w view, n int) view { w.Length += n; return w }
	pad := func(b []byte, n int) []byte { return append(append([]byte(nil), b...), make([]byte, n)...) }
	tests := []struct {
		name string
		link decode.LinkType
		data []byte
		ok   bool
		want view
	}{
		{"802.1Q", decode.Ethernet, ether(0x0800, [][2]uint16{{0x8100, 10}}, v4), true, w4},
		{"802.1ad+802.1Q", decode.Ethernet, ether(0x0800, [][2]uint16{{0x88a8, 20}, {0x8100, 10}}, v4), true, w4},
		{"0x9100+802.1Q v6", decode.Ethernet, ether(0x86dd, [][2]uint16{{0x9100, 20}, {0x8100, 10}}, v6), true, w6},
		{"nine tags", decode.Ethernet, ether(0x0800, [][2]uint16{{0x8100, 1}, {0x8100, 1}, {0x8100, 1}, {0x8100, 1}, {0x8100, 1}, {0x8100, 1}, {0x8100, 1}, {0x8100, 1}, {0x8100, 1}}, v4), false, view{}},
		{"ethernet padding", decode.Ethernet, pad(ether(0x0800, nil, v4), 6), true, w4},
		{"arp", decode.Ethernet, ether(0x0806, nil, make([]byte, 28)), false, view{}},
		{"ethertype v4 carrying v6", decode.Ethernet, ether(0x0800, nil, v6), false, view{}},
		{"raw alias 12", 12, v4, true, w4},
		{"raw alias 14", 14, v6, true, w6},
		{"null big-endian family", decode.Null, append([]byte{0, 0, 0, 2}, v4...), true, w4},
		{"null linux AF_INET6", decode.Null, append([]byte{10, 0, 0, 0}, v6...), true, w6},
		{"null AF_UNSPEC", decode.Null, append([]byte{0, 0, 0, 0}, v4...), false, view{}},
		{"ipv4 link with v6", decode.IPv4, v6, false, view{}},
		{"unknown link", 105, v4, false, view{}},
		{"v4 options", decode.Raw, withOptions(v4), true, ext(w4, 4)},
		{"v4 ihl < 5", decode.Raw, mod(v4, func(b []byte) { b[0] = 0x44 }), false, view{}},
		{"v4 first fragment", decode.Raw, mod(v4, func(b []byte) { b[6] = 0x20 }), true, w4},
		{"v4 later fragment", decode.Raw, mod(v4, func(b []byte) { b[7] = 1 }), false, view{}},
		{"v4 total < ihl", decode.Raw, mod(v4, func(b []byte) { binary.BigEndian.PutUint16(b[2:], 19) }), false, view{}},
		{"v4 total 0 (big tcp)", decode.Raw, mod(v4, func(b []byte) { binary.BigEndian.PutUint16(b[2:], 0) }), true, w4},
		{"v4 icmp", decode.Raw, mod(v4, func(b []byte) { b[9] = 1 }), false, view{}},
		{"v4 tcp doff < 5", decode.Raw, mod(v4, func(b []byte) { b[32] = 0x40 }), false, view{}},
		{"v4 tcp doff past end", decode.Raw, mod(v4, func(b []byte) { b[32] = 0x60 }), false, view{}},
		{"version 5", decode.Raw, mod(v4, func(b []byte) { b[0] = 0x55 }), false, view{}},
		{"v6 hop-by-hop", decode.Raw, withExt(v6, []byte{0}, hopByHop), true, ext(w6, 8)},
		{"v6 hop-by-hop+fragment", decode.Raw, withExt(v6, []byte{0, 44}, hopByHop, fragment), true, ext(w6, 16)},
		{"v6 hop-by-hop+fragment udp", decode.Raw, withExt(u6, []byte{0, 44}, hopByHop, fragment), true, ext(wu6, 16)},
		{"v6 later fragment", decode.Raw, withExt(v6, []byte{44}, laterFrg), false, view{}},
		{"v6 routing+destopts+ah", decode.Raw, withExt(v6, []byte{43, 60, 51}, hopByHop, destOpts, authHdr), true, ext(w6, 40)},
		{"v6 esp", decode.Raw, withExt(v6, []byte{50}, hopByHop), false, view{}},
		{"v6 no next header", decode.Raw, withExt(v6, []byte{59}, hopByHop), false, view{}},
		{"v6 nine hop-by-hops", decode.Raw, withExt(v6, []byte{0, 0, 0, 0, 0, 0, 0, 0, 0}, hopByHop, hopByHop, hopByHop, hopByHop, hopByHop, hopByHop, hopByHop, hopByHop, hopByHop), false, view{}},
		{"v6 ext header past end", decode.Raw, mod(withExt(v6, []byte{0}, hopByHop), func(b []byte) { b[41] = 200 }), false, view{}},
		{"v6 payload length 0 (jumbo)", decode.Raw, mod(v6, func(b []byte) { b[4], b[5] = 0, 0 }), true, w6},
		{"v6 payload length too long", decode.Raw, mod(v6, func(b []byte) { b[4] = 0xff }), true, w6},
		{"v6 udp length < 8", decode.Raw, mod(u6, func(b []byte) { binary.BigEndian.PutUint16(b[44:], 7) }), false, view{}},
		{"v6 udp length trims", decode.Raw, mod(u6, func(b []byte) { binary.BigEndian.PutUint16(b[44:], 9) }), true, func() view { w := wu6; w.Payload = "h"; return w }()},
		{"empty", decode.Raw, nil, false, view{}},
		// RFC 4291 2.5.5.2: IPv4-mapped addresses never appear on the
		// wire; a packet "from ::ffff:192.0.2.7" is forged, and must not
		// reach a door as 192.0.2.7 (or at all).
		{"v6 from v4-mapped", decode.Raw, pcaptest.EncodeIP(syn(netip.MustParseAddrPort("[::ffff:192.0.2.7]:40000"), s6)), false, view{}},
		{"v6 to v4-mapped", decode.Raw, pcaptest.EncodeIP(syn(c6, netip.MustParseAddrPort("[::ffff:198.51.100.1]:7000"))), false, view{}},
		{"v6 from v4-mapped, ethernet", decode.Ethernet, ether(0x86dd, nil, pcaptest.EncodeIP(udp(netip.MustParseAddrPort("[::ffff:192.0.2.7]:40000"), s6, "x"))), false, view{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := detectors.Packet{Proto: detectors.UDP}
			ok := decode.Decode(tt.link, tt.data, &p)
			got := view{}
			if ok {
				got = viewOf(&p)
			} else if p.Proto != detectors.ProtoNone {
				t.Errorf("Decode = false left Proto = %v", p.Proto)
			}
			if ok != tt.ok || got != tt.want {
				t.Errorf("Decode = %v, %+v\nwant     %v, %+v", ok, got, tt.ok, tt.want)
			}
		})
	}
}

// TestDecodeTruncated cuts every frame at every length. A cut inside the
// headers must be rejected; a cut inside the payload is a short snap length
// and decodes with the payload that was captured.
func TestDecodeTruncated(t *testing.T) {
	frames := []pcaptest.Frame{
		syn(c4, s4), syn(c6, s6), udp(c4, s4, "payload"), udp(c6, s6, "payload"),
		{Src: c4, Dst: s4, Proto: detectors.TCP, Flags: detectors.SYN, VLAN: 7},
	}
	for _, f := range frames {
		for _, link := range linkTypes {
			if !compatible(link, f) {
				continue
			}
			full := pcaptest.Encode(link, f)
			hdr := len(full) - len(f.Payload)
			for n := range len(full) {
				var p detectors.Packet
				ok := decode.Decode(link, full[:n:n], &p)
				if n < hdr {
					if ok {
						t.Errorf("%v %v cut at %d of %d: Decode = true", link, f.Proto, n, len(full))
					}
					continue
				}
				w := want(f)
				w.Payload = w.Payload[:n-hdr]
				w.Length -= len(full) - n
				if got := viewOf(&p); !ok || got != w {
					t.Errorf("%v %v cut at %d: Decode = %v %+v, want %+v", link, f.Proto, n, ok, got, w)
				}
			}
		}
	}
}

func TestDecodeKeepsTime(t *testing.T) {
	var p detectors.Packet
	p.Time = p.Time.AddDate(2001, 0, 0)
	before := p.Time
	decode.Decode(decode.Raw, pcaptest.EncodeIP(syn(c4, s4)), &p)
	if p.Time != before {
		t.Errorf("Decode changed Time to %v", p.Time)
	}
}

func TestDecodePayloadAliases(t *testing.T) {
	data := pcaptest.Encode(decode.Ethernet, udp(c4, s4, "abc"))
	var p detectors.Packet
	if !decode.Decode(decode.Ethernet, data, &p) {
		t.Fatal("Decode = false")
	}
	if &p.Payload[0] != &data[len(data)-3] || cap(p.Payload) != 3 {
		t.Errorf("Payload does not alias the end of the frame with a capped capacity")
	}
}

func TestDecodeAllocs(t *testing.T) {
	for _, link := range linkTypes {
		for _, f := range []pcaptest.Frame{syn(c4, s4), syn(c6, s6)} {
			if !compatible(link, f) {
				continue
			}
			data := pcaptest.Encode(link, f)
			var p detectors.Packet
			if n := testing.AllocsPerRun(100, func() { decode.Decode(link, data, &p) }); n != 0 {
				t.Errorf("%v: %v allocations per Decode, want 0", link, n)
			}
		}
	}
}

func BenchmarkDecode(b *testing.B) {
	for _, link := range linkTypes {
		for _, f := range []pcaptest.Frame{syn(c4, s4), udp(c6, s6, "knock")} {
			if !compatible(link, f) {
				continue
			}
			data := pcaptest.Encode(link, f)
			fam := "v4"
			if f.Src.Addr().Is6() {
				fam = "v6"
			}
			b.Run(fmt.Sprintf("%v/%s-%v", link, fam, f.Proto), func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(len(data)))
				var p detectors.Packet
				for b.Loop() {
					if !decode.Decode(link, data, &p) {
						b.Fatal("Decode = false")
					}
				}
			})
		}
	}
}

func FuzzDecode(f *testing.F) {
	for i, link := range linkTypes {
		for _, fr := range []pcaptest.Frame{syn(c4, s4), udp(c6, s6, "x"), {Src: c4, Dst: s4, Proto: detectors.UDP, VLAN: 3}} {
			if compatible(link, fr) {
				f.Add(byte(i), pcaptest.Encode(link, fr))
			}
		}
	}
	f.Add(byte(1), withExt(pcaptest.EncodeIP(syn(c6, s6)), []byte{0, 44, 51}, hopByHop, fragment, authHdr))
	f.Fuzz(func(t *testing.T, l byte, data []byte) {
		link := linkTypes[int(l)%len(linkTypes)]
		var p detectors.Packet
		if !decode.Decode(link, data, &p) {
			if p.Proto != detectors.ProtoNone {
				t.Fatalf("false with Proto %v", p.Proto)
			}
			return
		}
		switch {
		case p.Proto != detectors.TCP && p.Proto != detectors.UDP:
			t.Fatalf("true with Proto %v", p.Proto)
		case !p.Src.IsValid() || p.Src.Is4() != p.Dst.Is4() || p.Src.Zone() != "" || p.Dst.Zone() != "":
			t.Fatalf("bad addresses %v %v", p.Src, p.Dst)
		case p.Length > len(data) || p.Length < len(p.Payload):
			t.Fatalf("Length %d of %d bytes, payload %d", p.Length, len(data), len(p.Payload))
		case p.Proto == detectors.UDP && p.Flags != 0:
			t.Fatalf("UDP with flags %v", p.Flags)
		case p.Flags > 0x3f:
			t.Fatalf("flags %#x", p.Flags)
		}
		if len(p.Payload) > 0 {
			start := uintptr(unsafe.Pointer(unsafe.SliceData(data)))
			at := uintptr(unsafe.Pointer(unsafe.SliceData(p.Payload)))
			if at < start || at+uintptr(cap(p.Payload)) > start+uintptr(len(data)) {
				t.Fatalf("payload does not alias the frame")
			}
		}
	})
}
