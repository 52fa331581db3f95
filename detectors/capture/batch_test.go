//go:build linux

package capture

import (
	"net/netip"
	"testing"
	"time"

	"github.com/doorward/doorward/detectors"
	"github.com/doorward/doorward/detectors/decode"
	"github.com/doorward/doorward/detectors/pcaptest"
)

// blockFrames are a knock with a payload, a packet on a port nobody asked
// for, and a knock whose payload is longer than the buffer it is read into.
func blockFrames() (frames []pcaptest.Frame, want []detectors.Packet) {
	at := time.Unix(1700000000, 5000)
	dst := netip.MustParseAddr("192.0.2.1")
	for i, tc := range []struct {
		port    uint16
		payload string
	}{{9000, "knock"}, {9001, "not for us"}, {9000, "a payload longer than eight bytes"}} {
		f := pcaptest.Frame{Time: at, Src: netip.AddrPortFrom(pcaptest.Spoofed(i), 40000),
			Dst: netip.AddrPortFrom(dst, tc.port), Proto: detectors.UDP, Payload: []byte(tc.payload)}
		frames = append(frames, f)
		if tc.port == 9000 {
			var p detectors.Packet
			decode.Decode(decode.Raw, pcaptest.EncodeIP(f), &p)
			p.Time = at
			p.Payload = p.Payload[:min(len(p.Payload), 8)]
			want = append(want, p)
		}
	}
	return frames, want
}

// blockSource is a Source over one block of blockFrames, wanting UDP port
// 9000, with four packets to read into, each with payload bytes of buffer.
func blockSource(t *testing.T, payload int) (*Source, []detectors.Packet, []detectors.Packet) {
	t.Helper()
	frames, want := blockFrames()
	var data [][]byte
	for _, f := range frames {
		data = append(data, pcaptest.EncodeIP(f))
	}
	blk, n := LayoutBlock(4096, data, frames[0].Time)
	if n != len(frames) {
		t.Fatalf("laid out %d of %d frames", n, len(frames))
	}
	s, err := OpenBlocks([][]byte{blk}, []detectors.Rule{{Proto: detectors.UDP, Ports: []uint16{9000}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	pkts := make([]detectors.Packet, 4)
	for i := range pkts {
		pkts[i].Payload = make([]byte, 0, payload)
	}
	return s, pkts, want
}

// TestReadBatch reads a block laid out as the kernel lays it out: the
// packets the rules want, each payload cut to its buffer, nothing else, and
// the next call goes round to the block again (OpenBlocks refills it).
func TestReadBatch(t *testing.T) {
	s, pkts, want := blockSource(t, 8)
	for round := range 2 {
		n, err := s.ReadBatch(pkts)
		if err != nil {
			t.Fatal(err)
		}
		if got := view(pkts[:n]); got != view(want) {
			t.Errorf("round %d: read\n%s\nwant\n%s", round, got, view(want))
		}
	}
	// A batch smaller than the block stops where it is full; the rest of
	// the block comes next.
	for i, w := range want {
		if n, err := s.ReadBatch(pkts[:1]); err != nil || n != 1 || view(pkts[:1]) != view(want[i:i+1]) {
			t.Errorf("one at a time, #%d: %d %v %s, want %s", i, n, err, view(pkts[:1]), view([]detectors.Packet{w}))
		}
	}
	s.Close()
	if _, err := s.ReadBatch(pkts); err != detectors.ErrClosed {
		t.Errorf("ReadBatch after Close: %v, want ErrClosed", err)
	}
}

func view(pkts []detectors.Packet) string {
	s := ""
	for _, p := range pkts {
		s += p.Time.UTC().Format(time.RFC3339Nano) + " " + netip.AddrPortFrom(p.Src, p.SrcPort).String() + " > " +
			netip.AddrPortFrom(p.Dst, p.DstPort).String() + " " + p.Proto.String() + " " + string(p.Payload) + "\n"
	}
	return s
}

// TestReadBatchAllocs holds the batch read path to zero allocations.
func TestReadBatchAllocs(t *testing.T) {
	s, pkts, _ := blockSource(t, 64)
	if n := testing.AllocsPerRun(100, func() {
		if _, err := s.ReadBatch(pkts); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("ReadBatch allocates %v times per block", n)
	}
}

// TestReadBatchLive reads a live ring in batches: every packet sent, in
// order, with its payload.
func TestReadBatchLive(t *testing.T) {
	s, c := loopSender(t)
	const sent = 300
	sendN(t, s, c, sent)
	pkts := make([]detectors.Packet, 64)
	for i := range pkts {
		pkts[i].Payload = make([]byte, 0, 512)
	}
	got := 0
	for got < sent {
		n, err := s.ReadBatch(pkts)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range pkts[:n] {
			if string(p.Payload) != "knock-benchmark!" || p.DstPort != 9000 {
				t.Fatalf("packet %d: %+v", got, p)
			}
			got++
		}
	}
}
