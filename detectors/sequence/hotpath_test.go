package sequence_test

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/doorward/doorward/actions"
	"github.com/doorward/doorward/detectors"
	"github.com/doorward/doorward/detectors/decode"
	"github.com/doorward/doorward/detectors/pcaptest"
	"github.com/doorward/doorward/detectors/sequence"
)

// hotPath is the per-packet work of the daemon after the kernel filter:
// decode a raw IP packet into a reused Packet, route it by (proto, port),
// and let the sequence detector look at it.
type hotPath struct {
	disp   *detectors.Dispatcher
	det    *sequence.Detector
	pkt    detectors.Packet
	frames [][]byte
	opened int
}

func newHotPath(tb testing.TB, frames []pcaptest.Frame) *hotPath {
	return newHotPathMax(tb, frames, 1024)
}

// benchDoors is the benchmarks' door: SYNs to 7000, 8000, 9000 in 5 s.
func benchDoors() []sequence.Door {
	return []sequence.Door{{Key: "ssh", Name: "ssh", Timeout: 5 * time.Second, FlagMask: detectors.SYN | detectors.ACK, FlagWant: detectors.SYN,
		Seq: []sequence.Step{{Port: 7000, Proto: detectors.TCP}, {Port: 8000, Proto: detectors.TCP}, {Port: 9000, Proto: detectors.TCP}}}}
}

func newHotPathMax(tb testing.TB, frames []pcaptest.Frame, maxSources int) *hotPath {
	doors := benchDoors()
	h := &hotPath{}
	// Logging is on, as in the daemon; the detector's own limiter keeps a
	// flood from reaching it.
	h.det = sequence.New(doors, sequence.Options{MaxSources: maxSources, Logf: func(string, ...any) {}})
	h.disp = detectors.NewDispatcher([]detectors.Detector{h.det}, func(actions.Event) { h.opened++ })
	for _, f := range frames {
		h.frames = append(h.frames, pcaptest.Encode(decode.Raw, f))
	}
	return h
}

func (h *hotPath) packet(i int, now time.Time) {
	if decode.Decode(decode.Raw, h.frames[i%len(h.frames)], &h.pkt) {
		h.pkt.Time = now
		h.disp.Dispatch(&h.pkt)
	}
}

func syn(src netip.Addr, port uint16) pcaptest.Frame {
	server := netip.MustParseAddr("10.0.0.1")
	if src.Is6() {
		server = netip.MustParseAddr("fd00::1")
	}
	return pcaptest.Frame{Src: netip.AddrPortFrom(src, 40000), Dst: netip.AddrPortFrom(server, port), Proto: detectors.TCP, Flags: detectors.SYN}
}

// stepFrames are n sources from the /16 net making the first two hits
// each, none completing: knocks in progress (the legitimate per-packet
// path) or, with more sources than the table holds, a two-step flood.
func stepFrames(n int, net [2]byte) []pcaptest.Frame {
	var out []pcaptest.Frame
	for i := range n {
		src := netip.AddrFrom4([4]byte{net[0], net[1], byte(i >> 8), byte(i)})
		out = append(out, syn(src, 7000), syn(src, 8000))
	}
	return out
}

// floodFrames are spoofed first knocks from many sources: the attack.
func floodFrames(n int) []pcaptest.Frame {
	out := make([]pcaptest.Frame, n)
	for i := range out {
		out[i] = syn(netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)}), 7000)
	}
	return out
}

// randomFloodFrames are spoofed first knocks from n sources random over
// all of IPv4, as trafgen sends them.
func randomFloodFrames(n int) []pcaptest.Frame {
	rng := rand.New(rand.NewPCG(14, 1))
	out := make([]pcaptest.Frame, n)
	for i := range out {
		x := rng.Uint32()
		out[i] = syn(netip.AddrFrom4([4]byte{byte(x >> 24), byte(x >> 16), byte(x >> 8), byte(x)}), 7000)
	}
	return out
}

var cases = []struct {
	name   string
	frames []pcaptest.Frame
	// opens: a completed knock logs OPEN SESAME and emits an event, which
	// allocate (once per knock, not per packet, and never for a flood).
	opens bool
	max   int // the table's bound; 0: 1024
}{
	// A port no door uses: the dispatcher's table says no.
	{"miss", []pcaptest.Frame{syn(netip.MustParseAddr("10.0.0.2"), 22)}, false, 0},
	// A spoofed flood at the first port, 4× the table: every packet makes
	// or evicts an attempt.
	{"flood-first-port", floodFrames(4096), false, 0},
	// Spoofed sources making the first two hits each, 4× the table: every
	// source makes progress, so the table fills with two-hit sources.
	{"flood-two-step", stepFrames(4096, [2]byte{198, 19}), false, 0},
	// A whole knock, again and again, from one source.
	{"knock-steps", stepFrames(512, [2]byte{10, 1}), false, 0},
	{"knock", []pcaptest.Frame{syn(netip.MustParseAddr("10.0.0.2"), 7000), syn(netip.MustParseAddr("10.0.0.2"), 8000), syn(netip.MustParseAddr("10.0.0.2"), 9000)}, true, 0},
	{"knock-v6", []pcaptest.Frame{syn(netip.MustParseAddr("fd00::2"), 7000), syn(netip.MustParseAddr("fd00::2"), 8000), syn(netip.MustParseAddr("fd00::2"), 9000)}, true, 0},
	// The flood: first knocks from sources random over all of
	// IPv4 into the default table of 65,536, four tables' worth.
	{"flood-random", randomFloodFrames(1 << 18), false, sequence.DefaultMaxSources},
}

// TestHotPathDoesNotAllocate: after warm-up, decoding and dispatching a
// packet allocates nothing, whether it is noise, a flood or a real knock.
func TestHotPathDoesNotAllocate(t *testing.T) {
	for _, tc := range cases {
		if tc.opens {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			checkNoAllocs(t, newHotPathMax(t, tc.frames, cmp.Or(tc.max, 1024)), time.Unix(1_000_000, 0))
		})
	}
}

// BenchmarkHotPath measures decode + dispatch + detector per packet.
func BenchmarkHotPath(b *testing.B) {
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			benchPackets(b, newHotPathMax(b, tc.frames, cmp.Or(tc.max, 1024)), time.Unix(1_000_000, 0))
		})
	}
}

// BenchmarkExpire: the once-a-second sweep over a full default table of
// flood sources, when none is due (the flood is younger than the
// timeout) and when all are (the second after the flood), per sweep.
func BenchmarkExpire(b *testing.B) {
	frames := randomFloodFrames(sequence.DefaultMaxSources)
	for _, due := range []bool{false, true} {
		name := "none-due"
		if due {
			name = "all-due"
		}
		b.Run(name, func(b *testing.B) {
			h := newHotPathMax(b, frames, sequence.DefaultMaxSources)
			now := time.Unix(1_000_000, 0)
			fill := func() {
				for i := range frames {
					now = now.Add(time.Microsecond)
					h.packet(i, now)
				}
			}
			fill()
			b.ReportAllocs()
			for b.Loop() {
				if !due {
					h.det.Expire(now)
					continue
				}
				b.StopTimer()
				if h.det.Sources() == 0 {
					fill()
				}
				b.StartTimer()
				h.det.Expire(now.Add(time.Minute))
			}
		})
	}
	// What the live daemon does instead: a sixteenth of the table at a
	// time, so whoever waits for the detectors waits for that.
	b.Run("none-due-part16", func(b *testing.B) {
		h := newHotPathMax(b, frames, sequence.DefaultMaxSources)
		now := time.Unix(1_000_000, 0)
		for i := range frames {
			now = now.Add(time.Microsecond)
			h.packet(i, now)
		}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			h.det.ExpirePart(now, i%16, 16)
			i++
		}
	})
}

// stepper sends h's frames in turn, a microsecond apart from now on,
// after 20000 of them to fill the table, the free list and the maps.
func stepper(h *hotPath, now time.Time) func() {
	i := 0
	step := func() { now = now.Add(time.Microsecond); h.packet(i, now); i++ }
	for range 20000 {
		step()
	}
	return step
}

// checkNoAllocs fails t if a packet through h allocates.
func checkNoAllocs(t *testing.T, h *hotPath, now time.Time) {
	t.Helper()
	if n := testing.AllocsPerRun(10000, stepper(h, now)); n != 0 {
		t.Errorf("%v allocations per packet", n)
	}
}

// benchPackets measures a packet through h.
func benchPackets(b *testing.B, h *hotPath, now time.Time) {
	step := stepper(h, now)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		step()
	}
}

// TestExpirePart: sweeping the table a part at a time, every part in turn,
// times out the same attempts as one Expire, logs the same lines and
// leaves the same sources, whatever the number of parts.
func TestExpirePart(t *testing.T) {
	frames := randomFloodFrames(3000)
	t0 := time.Unix(1_000_000, 0)
	run := func(parts int) (lines []string, left int) {
		det := sequence.New(benchDoors(), sequence.Options{MaxSources: 4096, LogRate: -1,
			Logf: func(f string, a ...any) { lines = append(lines, fmt.Sprintf(f, a...)) }})
		disp := detectors.NewDispatcher([]detectors.Detector{det}, func(actions.Event) {})
		var p detectors.Packet
		for i, f := range frames {
			// Half the sources knocked 10 s ago (timed out), half 1 s ago.
			at := t0.Add(-10 * time.Second)
			if i%2 == 1 {
				at = t0.Add(-time.Second)
			}
			if !decode.Decode(decode.Raw, pcaptest.Encode(decode.Raw, f), &p) {
				t.Fatal("frame does not decode")
			}
			p.Time = at.Add(time.Duration(i) * time.Microsecond)
			disp.Dispatch(&p)
		}
		lines = lines[:0] // the stage lines
		if parts == 0 {
			det.Expire(t0)
		} else {
			for i := range parts {
				disp.ExpirePart(t0, i, parts)
			}
		}
		slices.Sort(lines)
		return lines, det.Sources()
	}
	want, wantLeft := run(0)
	if len(want) != 1500 || wantLeft != 1500 {
		t.Fatalf("one Expire: %d timeouts and %d sources left, want 1500 and 1500", len(want), wantLeft)
	}
	for _, parts := range []int{1, 2, 16, 64} {
		got, left := run(parts)
		if !slices.Equal(got, want) || left != wantLeft {
			t.Errorf("%d parts: %d timeouts logged, %d sources left; one Expire: %d, %d", parts, len(got), left, len(want), wantLeft)
		}
	}
}
