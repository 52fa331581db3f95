package portspan_test

import (
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/doorward/doorward/actions"
	"github.com/doorward/doorward/detectors"
	"github.com/doorward/doorward/detectors/decode"
	"github.com/doorward/doorward/detectors/pcaptest"
	"github.com/doorward/doorward/detectors/portspan"
	wire "github.com/doorward/doorward/formats/portspan"
)

const hotConf = `
[ssh]
	Type = portspan
	Portspan = 1024-5000,6000-25000,26000-35789
	Knock = IP,PORT,FLAG0,CHECKSUM
	Key = password
	Max_Sources = 1024
`

type hotPath struct {
	disp   *detectors.Dispatcher
	det    *portspan.Detector
	pkt    detectors.Packet
	frames [][]byte
	opened int
}

func newHotPath(t testing.TB, frames []pcaptest.Frame) *hotPath {
	doors, err := fromConfig(t, hotConf, 0)
	if err != nil {
		t.Fatal(err)
	}
	h := &hotPath{det: portspan.New(doors, portspan.Options{Logf: func(string, ...any) {}})}
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

func hit(src netip.Addr, sport, port uint16) pcaptest.Frame {
	return pcaptest.Frame{Src: netip.AddrPortFrom(src, sport), Dst: netip.AddrPortFrom(netip.MustParseAddr("10.0.0.1"), port), Proto: detectors.TCP, Flags: detectors.SYN}
}

// noiseFrames: one sender hitting random span ports, so its window is full
// and every hit is tried as a knock.
func noiseFrames(n int) []pcaptest.Frame {
	r := rand.New(rand.NewPCG(1, 2))
	out := make([]pcaptest.Frame, n)
	for i := range out {
		out[i] = hit(netip.MustParseAddr("10.0.0.2"), uint16(40000+i%1000), uint16(1024+r.IntN(3900)))
	}
	return out
}

// floodFrames: spoofed one-hit senders, 4× the table.
func floodFrames(n int) []pcaptest.Frame {
	out := make([]pcaptest.Frame, n)
	for i := range out {
		out[i] = hit(netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)}), 40000, uint16(1024+i%3000))
	}
	return out
}

func knockFrames(t testing.TB, src netip.Addr) []pcaptest.Frame {
	c, err := wire.Settings{Portspan: "1024-5000,6000-25000,26000-35789", Knock: "IP,PORT,FLAG0,CHECKSUM", Key: "password"}.Codec()
	if err != nil {
		t.Fatal(err)
	}
	rec := wire.Record{IP: src, Port: 22}
	ports, err := c.Encode(nil, &rec, strings.NewReader("12345678"))
	if err != nil {
		t.Fatal(err)
	}
	var out []pcaptest.Frame
	for i, p := range ports {
		out = append(out, hit(src, uint16(40000+i), p))
	}
	return out
}

func TestHotPathDoesNotAllocate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		frames []pcaptest.Frame
	}{
		{"miss", []pcaptest.Frame{hit(netip.MustParseAddr("10.0.0.2"), 40000, 22)}},
		{"noise", noiseFrames(5000)},
		{"flood", floodFrames(4096)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHotPath(t, tc.frames)
			now := time.Unix(1_000_000, 0)
			i := 0
			step := func() { now = now.Add(time.Microsecond); h.packet(i, now); i++ }
			for range 20000 {
				step()
			}
			if n := testing.AllocsPerRun(10000, step); n != 0 {
				t.Errorf("%v allocations per packet", n)
			}
			if h.opened != 0 {
				t.Errorf("%d knocks decoded from noise", h.opened)
			}
		})
	}
}

// A knock in progress survives a spoofed flood of any size: the flood's
// one-hit senders only ever evict each other.
func TestFloodDoesNotEvictKnockInProgress(t *testing.T) {
	src := netip.MustParseAddr("10.0.0.9")
	knock := knockFrames(t, src)
	flood := floodFrames(10000)
	frames := append(append(append([]pcaptest.Frame{}, knock[:2]...), flood...), knock[2:]...)
	h := newHotPath(t, frames)
	now := time.Unix(1_000_000, 0)
	for i := range frames {
		now = now.Add(time.Microsecond)
		h.packet(i, now)
		if n := h.det.Sources(); n > 1024 {
			t.Fatalf("%d senders tracked, Max_Sources 1024", n)
		}
	}
	if h.opened != 1 {
		t.Fatalf("knock opened %d times, want 1 (stats %+v)", h.opened, h.det.Stats("ssh"))
	}
	if st := h.det.Stats("ssh"); st.Evicted != 10000-1023 {
		t.Errorf("evicted %d, want %d", st.Evicted, 10000-1023)
	}
}

// Adopt keeps the hits already queued across a reload of an unchanged door.
func TestAdopt(t *testing.T) {
	src := netip.MustParseAddr("10.0.0.9")
	knock := knockFrames(t, src)
	old := newHotPath(t, knock)
	now := time.Unix(1_000_000, 0)
	for i := range 10 {
		old.packet(i, now)
	}
	h := newHotPath(t, knock)
	h.det.Adopt(old.det)
	if old.det.Sources() != 0 || h.det.Sources() != 1 {
		t.Fatalf("after Adopt: old %d senders, new %d", old.det.Sources(), h.det.Sources())
	}
	for i := 10; i < len(knock); i++ {
		h.packet(i, now)
	}
	if h.opened != 1 {
		t.Errorf("adopted knock opened %d times, want 1", h.opened)
	}
}

func BenchmarkHotPath(b *testing.B) {
	for _, tc := range []struct {
		name   string
		frames []pcaptest.Frame
	}{
		{"miss", []pcaptest.Frame{hit(netip.MustParseAddr("10.0.0.2"), 40000, 22)}},
		{"noise", noiseFrames(5000)},
		{"flood", floodFrames(4096)},
		{"knock", knockFrames(b, netip.MustParseAddr("10.0.0.2"))},
	} {
		b.Run(tc.name, func(b *testing.B) {
			h := newHotPath(b, tc.frames)
			now := time.Unix(1_000_000, 0)
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				now = now.Add(time.Microsecond)
				h.packet(i, now)
			}
		})
	}
}
