//go:build linux

package capture

import (
	"net"
	"testing"
	"time"

	"github.com/doorward/doorward/detectors"
)

// loopSender opens a capture of UDP port 9000 on lo inside a fresh
// namespace and returns it with a socket there that sends to that port.
func loopSender(tb testing.TB) (*Source, net.Conn) {
	tb.Helper()
	srv, _ := netnsPair(tb)
	var s *Source
	var c net.Conn
	var l net.PacketConn
	err := inNetns(srv, func() (err error) {
		s, err = Open("lo", []detectors.Rule{{Proto: detectors.UDP, Ports: []uint16{9000}}},
			Options{PollTimeout: 50 * time.Millisecond})
		if err != nil {
			return err
		}
		// A socket on the port keeps the kernel from answering with ICMP
		// errors, which fail the sender's writes; what it receives it drops
		// once its buffer is full, after the capture has seen it.
		if l, err = net.ListenPacket("udp", "127.0.0.1:9000"); err != nil {
			return err
		}
		c, err = net.Dial("udp", "127.0.0.1:9000")
		return err
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close(); l.Close(); s.Close() })
	return s, c
}

// settle is how long the last block sent takes to reach userspace: more
// than the default 20ms block timeout.
const settle = 50 * time.Millisecond

// sendN sends n packets and waits until they are readable. A packet the
// kernel dropped would block a reader waiting for it, so drops fail here.
func sendN(tb testing.TB, s *Source, c net.Conn, n int) {
	tb.Helper()
	payload := []byte("knock-benchmark!")
	for range n {
		if _, err := c.Write(payload); err != nil {
			tb.Fatal(err)
		}
	}
	time.Sleep(settle)
	if _, dropped, err := s.Stats(); err != nil || dropped != 0 {
		tb.Fatalf("Stats: %d dropped, %v", dropped, err)
	}
}

// TestReadPacketAllocs holds the live read path (ring walk, decode, match,
// payload copy) to zero allocations per packet, as the Source contract asks.
func TestReadPacketAllocs(t *testing.T) {
	s, c := loopSender(t)
	const runs = 200
	sendN(t, s, c, runs+50) // AllocsPerRun makes one extra warm-up call
	var p detectors.Packet
	n := testing.AllocsPerRun(runs, func() {
		if err := s.ReadPacket(&p); err != nil {
			t.Fatal(err)
		}
	})
	if n != 0 {
		t.Errorf("ReadPacket allocates %v times per packet, want 0", n)
	}
	if string(p.Payload) != "knock-benchmark!" || p.DstPort != 9000 {
		t.Errorf("last packet read: %+v", p)
	}
}

// BenchmarkReadPacket measures the userspace cost of one captured packet:
// the packets are put in the ring with the timer stopped, so only
// ReadPacket is timed.
func BenchmarkReadPacket(b *testing.B) {
	s, c := loopSender(b)
	const batch = 1000 // well inside the default ring, even if a slow sender spreads it over every block
	var p detectors.Packet
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; {
		n := min(batch, b.N-done)
		b.StopTimer()
		sendN(b, s, c, n)
		b.StartTimer()
		for range n {
			if err := s.ReadPacket(&p); err != nil {
				b.Fatal(err)
			}
		}
		done += n
	}
}
