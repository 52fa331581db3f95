package decode_test

import (
	"net/netip"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/doorward/doorward/detectors"
	"github.com/doorward/doorward/detectors/decode"
	"github.com/doorward/doorward/detectors/pcaptest"
)

// BenchmarkVersusGopacket is why decode is hand-written: the same Ethernet
// IPv4 TCP SYN through gopacket's DecodingLayerParser with reused layers
// (its fastest zero-allocation path), then copying out what a Packet holds,
// against decode.Decode. Run with -bench VersusGopacket.
func BenchmarkVersusGopacket(b *testing.B) {
	data := pcaptest.Encode(decode.Ethernet, syn(c4, s4))
	b.Run("decode", func(b *testing.B) {
		b.ReportAllocs()
		var p detectors.Packet
		for b.Loop() {
			if !decode.Decode(decode.Ethernet, data, &p) {
				b.Fatal("Decode = false")
			}
		}
	})
	b.Run("gopacket", func(b *testing.B) {
		b.ReportAllocs()
		var (
			eth   layers.Ethernet
			ip4   layers.IPv4
			ip6   layers.IPv6
			tcp   layers.TCP
			udp   layers.UDP
			pl    gopacket.Payload
			found = make([]gopacket.LayerType, 0, 8)
			p     detectors.Packet
		)
		parser := gopacket.NewDecodingLayerParser(layers.LayerTypeEthernet, &eth, &ip4, &ip6, &tcp, &udp, &pl)
		parser.IgnoreUnsupported = true
		for b.Loop() {
			if err := parser.DecodeLayers(data, &found); err != nil {
				b.Fatal(err)
			}
			src, _ := netip.AddrFromSlice(ip4.SrcIP)
			dst, _ := netip.AddrFromSlice(ip4.DstIP)
			p.Src, p.Dst = src.Unmap(), dst.Unmap()
			p.SrcPort, p.DstPort = uint16(tcp.SrcPort), uint16(tcp.DstPort)
			p.Proto = detectors.TCP
			if tcp.SYN {
				p.Flags = detectors.SYN
			}
		}
	})
}
