package sequence_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/doorward/doorward/actions"
	"github.com/doorward/doorward/actions/filestore"
	"github.com/doorward/doorward/detectors"
	"github.com/doorward/doorward/detectors/decode"
	"github.com/doorward/doorward/detectors/pcaptest"
	"github.com/doorward/doorward/detectors/sequence"
	"github.com/doorward/doorward/formats/rotating"
)

// floodStart is the packet time the rotating flood benchmarks start at.
var floodStart = time.Unix(1_000_000, 0)

// rotatingHotPath is hotPath with one door, fixed (7000,8000,9000) or
// rotating over 20000-40000, on a committed detector.
func rotatingHotPath(tb testing.TB, rot bool, frames []pcaptest.Frame) *hotPath {
	door := sequence.Door{Key: "ssh", Name: "ssh", Timeout: 5 * time.Second, FlagMask: detectors.SYN | detectors.ACK, FlagWant: detectors.SYN,
		Seq: []sequence.Step{{Port: 7000, Proto: detectors.TCP}, {Port: 8000, Proto: detectors.TCP}, {Port: 9000, Proto: detectors.TCP}}}
	if rot {
		door.Seq = nil
		door.Rotating = &sequence.Rotating{Skew: 1, Params: rotParams(tb)}
	}
	h := &hotPath{}
	h.det = sequence.New([]sequence.Door{door}, sequence.Options{MaxSources: 1024, Logf: func(string, ...any) {}, Store: filestore.Memory()})
	if err := h.det.Commit(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { h.det.Close() })
	h.disp = detectors.NewDispatcher([]detectors.Detector{h.det}, func(actions.Event) { h.opened++ })
	for _, f := range frames {
		h.frames = append(h.frames, pcaptest.Encode(decode.Raw, f))
	}
	return h
}

func rotParams(tb testing.TB) rotating.Params {
	ports, err := rotating.ParsePorts("20000-40000")
	if err != nil {
		tb.Fatal(err)
	}
	return rotating.Params{Secret: []byte("0123456789abcdef"), Door: "ssh", Period: 30, Length: 4, Ports: ports}
}

// spoofed are n first knocks from as many sources, to port(i).
func spoofed(n int, port func(i int) uint16) []pcaptest.Frame {
	out := make([]pcaptest.Frame, n)
	for i := range out {
		out[i] = syn(netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)}), port(i))
	}
	return out
}

// rotatingFloods compare a flood at a fixed door with floods at a rotating
// one: over its whole range (what a scanner sends), and at the current
// window's first port (the worst case: every packet starts an attempt,
// as every packet to 7000 does at the fixed door).
func rotatingFloods(tb testing.TB) []struct {
	name  string
	rot   bool
	flood []pcaptest.Frame
} {
	p := rotParams(tb)
	first, err := rotating.Derive(nil, &p, rotating.Window(floodStart, p.Period))
	if err != nil {
		tb.Fatal(err)
	}
	return []struct {
		name  string
		rot   bool
		flood []pcaptest.Frame
	}{
		{"fixed-first-port", false, spoofed(4096, func(int) uint16 { return 7000 })},
		{"rotating-range", true, spoofed(4096, func(i int) uint16 { return uint16(20000 + i*7919%20001) })},
		{"rotating-first-port", true, spoofed(4096, func(int) uint16 { return first[0].Port })},
	}
}

func TestRotatingHotPathDoesNotAllocate(t *testing.T) {
	for _, tc := range rotatingFloods(t) {
		t.Run(tc.name, func(t *testing.T) {
			checkNoAllocs(t, rotatingHotPath(t, tc.rot, tc.flood), floodStart)
		})
	}
}

// BenchmarkRotatingFlood: a flood at a rotating door's range costs what
// one at a fixed door costs, per packet (decode + dispatch + detector).
func BenchmarkRotatingFlood(b *testing.B) {
	for _, tc := range rotatingFloods(b) {
		b.Run(tc.name, func(b *testing.B) {
			benchPackets(b, rotatingHotPath(b, tc.rot, tc.flood), floodStart)
		})
	}
}
