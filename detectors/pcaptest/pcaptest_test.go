package pcaptest_test

import (
	"bytes"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/doorward/doorward/detectors"
	"github.com/doorward/doorward/detectors/decode"
	"github.com/doorward/doorward/detectors/pcaptest"
)

var frames = []pcaptest.Frame{
	{Src: netip.MustParseAddrPort("192.0.2.7:40000"), Dst: netip.MustParseAddrPort("198.51.100.1:7000"), Proto: detectors.TCP, Flags: detectors.SYN},
	{Src: netip.MustParseAddrPort("192.0.2.7:40001"), Dst: netip.MustParseAddrPort("198.51.100.1:8000"), Proto: detectors.UDP, Payload: []byte("odd")},
	{Src: netip.MustParseAddrPort("[2001:db8::7]:40002"), Dst: netip.MustParseAddrPort("[2001:db8::1]:9000"), Proto: detectors.TCP, Flags: detectors.SYN | detectors.ACK, Payload: []byte("x")},
	{Src: netip.MustParseAddrPort("[2001:db8::7]:40003"), Dst: netip.MustParseAddrPort("[2001:db8::1]:5300"), Proto: detectors.UDP, Payload: []byte("even"), VLAN: 42},
}

func init() {
	base := time.Date(2024, 5, 1, 12, 0, 0, 123456789, time.UTC)
	for i := range frames {
		frames[i].Time = base.Add(time.Duration(i) * 1500 * time.Millisecond)
	}
}

type view struct {
	Src, Dst netip.AddrPort
	Proto    detectors.Proto
	Flags    detectors.TCPFlags
	Payload  string
}

func frameView(f pcaptest.Frame) view {
	return view{f.Src, f.Dst, f.Proto, f.Flags, string(f.Payload)}
}

func packetView(p *detectors.Packet) view {
	return view{netip.AddrPortFrom(p.Src, p.SrcPort), netip.AddrPortFrom(p.Dst, p.DstPort), p.Proto, p.Flags, string(p.Payload)}
}

var links = []decode.LinkType{decode.Ethernet, decode.Raw, decode.LinuxSLL, decode.LinuxSLL2, decode.Null, decode.Loop}

func TestEncodeDecodes(t *testing.T) {
	for _, link := range links {
		for i, f := range frames {
			t.Run(fmt.Sprintf("%v/%d", link, i), func(t *testing.T) {
				var p detectors.Packet
				if !decode.Decode(link, pcaptest.Encode(link, f), &p) {
					t.Fatal("Decode = false")
				}
				if got, want := packetView(&p), frameView(f); got != want {
					t.Errorf("got  %+v\nwant %+v", got, want)
				}
			})
		}
	}
}

// TestEncodeChecksums has gopacket check lengths and checksums, so the
// encoder is not only consistent with our own decoder.
func TestEncodeChecksums(t *testing.T) {
	for i, f := range frames {
		pkt := gopacket.NewPacket(pcaptest.Encode(decode.Ethernet, f), layers.LayerTypeEthernet, gopacket.Default)
		if el := pkt.ErrorLayer(); el != nil {
			t.Fatalf("frame %d: %v", i, el.Error())
		}
		type verifier interface {
			VerifyChecksum() (error, gopacket.ChecksumVerificationResult)
		}
		n := 0
		for _, l := range pkt.Layers() {
			v, ok := l.(verifier)
			if !ok {
				continue
			}
			n++
			if c, ok := l.(interface {
				SetNetworkLayerForChecksum(gopacket.NetworkLayer) error
			}); ok {
				if err := c.SetNetworkLayerForChecksum(pkt.NetworkLayer()); err != nil {
					t.Fatal(err)
				}
			}
			err, res := v.VerifyChecksum()
			if err != nil || !res.Valid {
				t.Errorf("frame %d %v: checksum %#x, want %#x (%v)", i, l.LayerType(), res.Actual, res.Correct, err)
			}
		}
		if want := map[bool]int{true: 2, false: 1}[f.Src.Addr().Is4()]; n != want {
			t.Errorf("frame %d: verified %d checksums, want %d", i, n, want)
		}
		if f.VLAN != 0 {
			if d, ok := pkt.Layer(layers.LayerTypeDot1Q).(*layers.Dot1Q); !ok || d.VLANIdentifier != f.VLAN {
				t.Errorf("frame %d: no 802.1Q tag %d", i, f.VLAN)
			}
		}
	}
}

func TestWriteRoundTrip(t *testing.T) {
	type reader interface {
		ReadPacketData() ([]byte, gopacket.CaptureInfo, error)
	}
	formats := map[string]struct {
		write func(*bytes.Buffer, decode.LinkType) error
		open  func(*bytes.Buffer) (reader, layers.LinkType, error)
	}{
		"pcap": {
			func(b *bytes.Buffer, l decode.LinkType) error { return pcaptest.WritePcap(b, l, frames) },
			func(b *bytes.Buffer) (reader, layers.LinkType, error) {
				r, err := pcapgo.NewReader(b)
				if err != nil {
					return nil, 0, err
				}
				return r, r.LinkType(), nil
			},
		},
		"pcapng": {
			func(b *bytes.Buffer, l decode.LinkType) error { return pcaptest.WritePcapNG(b, l, frames) },
			func(b *bytes.Buffer) (reader, layers.LinkType, error) {
				r, err := pcapgo.NewNgReader(b, pcapgo.DefaultNgReaderOptions)
				if err != nil {
					return nil, 0, err
				}
				return r, r.LinkType(), nil
			},
		},
	}
	for name, format := range formats {
		for _, link := range links {
			t.Run(fmt.Sprintf("%s/%v", name, link), func(t *testing.T) {
				var buf bytes.Buffer
				if err := format.write(&buf, link); err != nil {
					t.Fatal(err)
				}
				r, lt, err := format.open(&buf)
				if err != nil {
					t.Fatal(err)
				}
				if decode.LinkType(lt) != link {
					t.Errorf("link type %v, want %v", lt, link)
				}
				for i, f := range frames {
					data, ci, err := r.ReadPacketData()
					if err != nil {
						t.Fatalf("frame %d: %v", i, err)
					}
					if !ci.Timestamp.Equal(f.Time) {
						t.Errorf("frame %d: time %v, want %v", i, ci.Timestamp, f.Time)
					}
					if !bytes.Equal(data, pcaptest.Encode(link, f)) {
						t.Errorf("frame %d: bytes differ from Encode", i)
					}
				}
				if _, _, err := r.ReadPacketData(); err == nil {
					t.Error("more frames than written")
				}
			})
		}
	}
}
