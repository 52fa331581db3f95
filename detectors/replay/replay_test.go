package replay_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/doorward/doorward/detectors"
	"github.com/doorward/doorward/detectors/decode"
	"github.com/doorward/doorward/detectors/pcaptest"
	"github.com/doorward/doorward/detectors/replay"
)

var base = time.Date(2024, 5, 1, 12, 0, 0, 987654321, time.UTC)

var frames = []pcaptest.Frame{
	{Time: base, Src: netip.MustParseAddrPort("192.0.2.7:40000"), Dst: netip.MustParseAddrPort("198.51.100.1:7000"), Proto: detectors.TCP, Flags: detectors.SYN},
	{Time: base.Add(time.Second), Src: netip.MustParseAddrPort("192.0.2.7:40001"), Dst: netip.MustParseAddrPort("198.51.100.1:8000"), Proto: detectors.UDP, Payload: []byte("knock")},
	{Time: base.Add(2 * time.Second), Src: netip.MustParseAddrPort("[2001:db8::7]:40002"), Dst: netip.MustParseAddrPort("[2001:db8::1]:9000"), Proto: detectors.TCP, Flags: detectors.SYN, VLAN: 5},
	{Time: base.Add(3 * time.Hour), Src: netip.MustParseAddrPort("[2001:db8::7]:40003"), Dst: netip.MustParseAddrPort("[2001:db8::1]:9001"), Proto: detectors.UDP},
}

type view struct {
	Time     time.Time
	Src, Dst netip.AddrPort
	Proto    detectors.Proto
	Flags    detectors.TCPFlags
	Payload  string
}

func frameView(f pcaptest.Frame) view {
	return view{f.Time, f.Src, f.Dst, f.Proto, f.Flags, string(f.Payload)}
}

func packetView(p *detectors.Packet) view {
	return view{p.Time, netip.AddrPortFrom(p.Src, p.SrcPort), netip.AddrPortFrom(p.Dst, p.DstPort), p.Proto, p.Flags, string(p.Payload)}
}

type writer func(io.Writer, decode.LinkType, []pcaptest.Frame) error

var formats = map[string]writer{"pcap": pcaptest.WritePcap, "pcapng": pcaptest.WritePcapNG}

func writeFile(t testing.TB, w writer, link decode.LinkType, fr []pcaptest.Frame) string {
	t.Helper()
	var buf bytes.Buffer
	if err := w(&buf, link, fr); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "capture")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func readAll(t *testing.T, s *replay.Source) []view {
	t.Helper()
	var got []view
	var p detectors.Packet
	for {
		err := s.ReadPacket(&p)
		if err == io.EOF {
			return got
		}
		if err != nil {
			t.Fatalf("ReadPacket: %v", err)
		}
		got = append(got, packetView(&p))
	}
}

func wantAll(fr []pcaptest.Frame) []view {
	var w []view
	for _, f := range fr {
		w = append(w, frameView(f))
	}
	return w
}

func equal(a, b []view) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] || !a[i].Time.Equal(b[i].Time) {
			return false
		}
	}
	return true
}

func TestReplay(t *testing.T) {
	for name, w := range formats {
		for _, link := range []decode.LinkType{decode.Ethernet, decode.LinuxSLL, decode.LinuxSLL2, decode.Raw} {
			t.Run(fmt.Sprintf("%s/%v", name, link), func(t *testing.T) {
				path := writeFile(t, w, link, frames)
				s, err := replay.Open(path)
				if err != nil {
					t.Fatal(err)
				}
				defer s.Close()
				if got, want := s.String(), "pcap:"+path; got != want {
					t.Errorf("String() = %q, want %q", got, want)
				}
				if got, want := readAll(t, s), wantAll(frames); !equal(got, want) {
					t.Errorf("got  %+v\nwant %+v", got, want)
				}
				var p detectors.Packet
				if err := s.ReadPacket(&p); err != io.EOF {
					t.Errorf("ReadPacket after EOF = %v, want io.EOF", err)
				}
				if err := s.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
				if err := s.Close(); err != nil {
					t.Errorf("second Close: %v", err)
				}
				if err := s.ReadPacket(&p); !errors.Is(err, detectors.ErrClosed) {
					t.Errorf("ReadPacket after Close = %v, want ErrClosed", err)
				}
			})
		}
	}
}

// TestReplaySkips mixes frames that do not decode (ARP, ICMP, a truncated
// header) between knocks; only the knocks come out.
func TestReplaySkips(t *testing.T) {
	var buf bytes.Buffer
	pw := pcapgo.NewWriterNanos(&buf)
	if err := pw.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	write := func(data []byte) {
		t.Helper()
		if err := pw.WritePacket(gopacket.CaptureInfo{Timestamp: base, CaptureLength: len(data), Length: len(data)}, data); err != nil {
			t.Fatal(err)
		}
	}
	arp := append(make([]byte, 12), 0x08, 0x06)
	arp = append(arp, make([]byte, 28)...)
	icmp := pcaptest.Encode(decode.Ethernet, frames[0])
	icmp[14+9] = 1
	short := pcaptest.Encode(decode.Ethernet, frames[0])
	write(arp)
	write(pcaptest.Encode(decode.Ethernet, frames[0]))
	write(icmp)
	write(short[:30])
	write(nil)
	write(pcaptest.Encode(decode.Ethernet, frames[1]))
	write(arp)
	path := filepath.Join(t.TempDir(), "mixed.pcap")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := replay.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	want := wantAll(frames[:2])
	want[0].Time, want[1].Time = base, base
	if got := readAll(t, s); !equal(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
}

// TestReplayCutShort reads a file whose writer died mid-record: what was
// written comes out, then io.EOF.
func TestReplayCutShort(t *testing.T) {
	for name, w := range formats {
		t.Run(name, func(t *testing.T) {
			path := writeFile(t, w, decode.Ethernet, frames)
			data, _ := os.ReadFile(path)
			if err := os.WriteFile(path, data[:len(data)-10], 0o600); err != nil {
				t.Fatal(err)
			}
			s, err := replay.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if got, want := readAll(t, s), wantAll(frames[:3]); !equal(got, want) {
				t.Errorf("got  %+v\nwant %+v", got, want)
			}
		})
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	file := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	var ieee802 bytes.Buffer
	pw := pcapgo.NewWriter(&ieee802)
	pw.WriteFileHeader(65535, layers.LinkTypeIEEE802_11) // 105
	var ng bytes.Buffer
	nw, _ := pcapgo.NewNgWriter(&ng, layers.LinkTypePPP)
	nw.Flush()
	tests := []struct {
		name, path, want string
	}{
		{"missing", filepath.Join(dir, "nope"), "no such file"},
		{"empty", file("empty", nil), "not a capture file"},
		{"text", file("text", []byte("hello, world\n")), "not a pcap or pcapng file"},
		{"wifi pcap", file("wifi", ieee802.Bytes()), "unsupported link type 105"},
		{"ppp pcapng", file("ppp", ng.Bytes()), "unsupported link type 9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := replay.Open(tt.path)
			if err == nil {
				s.Close()
				t.Fatalf("Open succeeded, want error containing %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "replay") {
				t.Errorf("Open error %q, want it to contain %q", err, tt.want)
			}
		})
	}
}

// TestCloseUnblocksPipe streams a capture through a FIFO, as
// `tcpdump -w - | doorward -r /dev/stdin` would, and closes while a read
// waits for more.
func TestCloseUnblocksPipe(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	var hdr bytes.Buffer
	if err := pcaptest.WritePcap(&hdr, decode.Raw, frames[:1]); err != nil {
		t.Fatal(err)
	}
	wrote := make(chan *os.File, 1)
	go func() {
		w, err := os.OpenFile(path, os.O_WRONLY, 0)
		if err != nil {
			wrote <- nil
			return
		}
		w.Write(hdr.Bytes())
		wrote <- w // kept open: the reader must block, not see EOF
	}()
	s, err := replay.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	w := <-wrote
	if w == nil {
		t.Fatal("could not open the FIFO for writing")
	}
	defer w.Close()
	var p detectors.Packet
	if err := s.ReadPacket(&p); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.ReadPacket(&p) }()
	time.Sleep(20 * time.Millisecond)
	s.Close()
	select {
	case err := <-done:
		if !errors.Is(err, detectors.ErrClosed) {
			t.Errorf("blocked ReadPacket returned %v, want ErrClosed", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Close did not unblock ReadPacket")
	}
}

func TestReadPacketAllocs(t *testing.T) {
	many := make([]pcaptest.Frame, 500)
	for i := range many {
		many[i] = frames[i%len(frames)]
	}
	for name, w := range formats {
		t.Run(name, func(t *testing.T) {
			s, err := replay.Open(writeFile(t, w, decode.Ethernet, many))
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			var p detectors.Packet
			s.ReadPacket(&p) // let the reader size its buffer
			n := testing.AllocsPerRun(400, func() {
				if err := s.ReadPacket(&p); err != nil {
					t.Fatal(err)
				}
			})
			if n != 0 {
				t.Errorf("%v allocations per ReadPacket, want 0", n)
			}
		})
	}
}

func BenchmarkReadPacket(b *testing.B) {
	many := make([]pcaptest.Frame, 10000)
	for i := range many {
		many[i] = frames[i%len(frames)]
	}
	for name, w := range formats {
		b.Run(name, func(b *testing.B) {
			path := writeFile(b, w, decode.Ethernet, many)
			b.ReportAllocs()
			var s *replay.Source
			var p detectors.Packet
			for b.Loop() {
				if s == nil {
					b.StopTimer()
					var err error
					if s, err = replay.Open(path); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
				}
				if err := s.ReadPacket(&p); err != nil {
					b.StopTimer()
					s.Close()
					s = nil
					b.StartTimer()
				}
			}
			if s != nil {
				s.Close()
			}
		})
	}
}

// FuzzReplay feeds arbitrary files through the readers and the decoder; a
// corrupt capture must end in an error or io.EOF, not a panic or a hang.
func FuzzReplay(f *testing.F) {
	for _, w := range formats {
		var buf bytes.Buffer
		w(&buf, decode.Ethernet, frames)
		f.Add(buf.Bytes())
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(dir, "fuzz")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := replay.Open(path)
		if err != nil {
			return
		}
		defer s.Close()
		var p detectors.Packet
		for range len(data) + 1 {
			if s.ReadPacket(&p) != nil {
				return
			}
		}
		t.Fatal("more packets than bytes")
	})
}
