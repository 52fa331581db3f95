package knockdaemon_test

import (
	"cmp"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/doorward/doorward/actions"
	"github.com/doorward/doorward/detectors"
	"github.com/doorward/doorward/detectors/decode"
	"github.com/doorward/doorward/detectors/knockdaemon"
	"github.com/doorward/doorward/detectors/pcaptest"
	wire "github.com/doorward/doorward/formats/knockdaemon"
)

const hotConf = `
[ssh]
	Type = knockdaemon
	Portspan = 1024-5000,6000-25000,26000-35789
	Knock = IP,PORT,FLAG0,CHECKSUM
	Key = password
	Max_Sources = 1024
`

type hotPath struct {
	disp   *detectors.Dispatcher
	det    *knockdaemon.Detector
	pkt    detectors.Packet
	frames [][]byte
	opened int
}

func newHotPath(t testing.TB, frames []pcaptest.Frame) *hotPath {
	return newHotPathConf(t, hotConf, frames)
}

func newHotPathConf(t testing.TB, conf string, frames []pcaptest.Frame) *hotPath {
	doors, err := fromConfig(t, conf, 0)
	if err != nil {
		t.Fatal(err)
	}
	h := &hotPath{det: knockdaemon.New(doors, knockdaemon.Options{Logf: func(string, ...any) {}})}
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
		conf   string
	}{
		{"miss", []pcaptest.Frame{hit(netip.MustParseAddr("10.0.0.2"), 40000, 22)}, ""},
		{"noise", noiseFrames(5000), ""},
		{"flood", floodFrames(4096), ""},
		// Windows that start with "Salted__" on a door that did not ask
		// for that header: no key derivation (which allocates a key
		// schedule), so no allocation, however often the magic comes.
		{"salted", saltedFrames(5000), ""},
		// The authenticated mode checks a tag on every full window.
		{"noise-mac", noiseFrames(5000), hotConf + "\tMac_Key = mac secret\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHotPathConf(t, cmp.Or(tc.conf, hotConf), tc.frames)
			now := time.Unix(1_000_000, 0)
			i := 0
			step := func() { now = now.Add(time.Microsecond); h.packet(i, now); i++ }
			for range 20000 {
				step()
			}
			// AllocsPerRun rounds down: count every allocation of 10000
			// packets, so one every few packets shows too.
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			for range 10000 {
				step()
			}
			runtime.ReadMemStats(&after)
			if n := after.Mallocs - before.Mallocs; n > 20 {
				t.Errorf("%d allocations in 10000 packets", n)
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

// randomFloodFrames: spoofed one-hit senders random over all of IPv4 at
// random span ports, as trafgen sends them.
func randomFloodFrames(n int) []pcaptest.Frame {
	rng := rand.New(rand.NewPCG(14, 2))
	out := make([]pcaptest.Frame, n)
	for i := range out {
		x := rng.Uint32()
		out[i] = hit(netip.AddrFrom4([4]byte{byte(x >> 24), byte(x >> 16), byte(x >> 8), byte(x)}), 40000, uint16(1024+rng.IntN(3900)))
	}
	return out
}

func BenchmarkHotPath(b *testing.B) {
	for _, tc := range []struct {
		name   string
		frames []pcaptest.Frame
		conf   string
	}{
		{"miss", []pcaptest.Frame{hit(netip.MustParseAddr("10.0.0.2"), 40000, 22)}, ""},
		{"noise", noiseFrames(5000), ""},
		{"flood", floodFrames(4096), ""},
		{"knock", knockFrames(b, netip.MustParseAddr("10.0.0.2")), ""},
		// The default table (16,384 senders), four tables' worth of
		// random sources.
		{"flood-random", randomFloodFrames(1 << 16), strings.Replace(hotConf, "Max_Sources = 1024", "Max_Sources = 16384", 1)},
	} {
		b.Run(tc.name, func(b *testing.B) {
			h := newHotPathConf(b, cmp.Or(tc.conf, hotConf), tc.frames)
			now := time.Unix(1_000_000, 0)
			for i := range max(20000, len(tc.frames)) { // fill the table
				now = now.Add(time.Microsecond)
				h.packet(i, now)
			}
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				now = now.Add(time.Microsecond)
				h.packet(i, now)
			}
		})
	}
}

// saltedFrames is the costliest stream for a door that accepts the
// Salted__ header: on a 15-bit span, every 5 hits spell the magic again
// (64 bits) and 11 free bits, so every 5th hit completes a window of
// either knock length that starts with the magic, each time with a new
// salt, and the daemon derives a key for each.
func saltedFrames(n int) []pcaptest.Frame {
	sp, err := wire.ParseSpan("1024-5000,6000-25000,26000-35789")
	if err != nil {
		panic(err)
	}
	magic := uint64(0x53616c7465645f5f) // "Salted__"
	r := rand.New(rand.NewPCG(3, 4))
	out := make([]pcaptest.Frame, 0, n)
	for len(out) < n {
		// 75 bits: the magic, then 11 random bits; five 15-bit hits.
		bits := [2]uint64{magic, uint64(r.IntN(1<<11)) << 53}
		for k := range 5 {
			pos := 15 * k
			var v uint64
			for b := range 15 {
				bit := pos + b
				v = v<<1 | bits[bit/64]>>(63-bit%64)&1
			}
			out = append(out, hit(netip.MustParseAddr("10.0.0.2"), uint16(40000+len(out)%1000), sp.Port(int(v))))
		}
	}
	return out[:n]
}

// BenchmarkSalted is the pair of item 4: a hostile Salted__ hit against a
// plain hit (random span ports from one sender: every hit tried as a
// knock). The first must stay within 2x the second.
func BenchmarkSalted(b *testing.B) {
	magic := hotConf + "\tHeader = magic\n"
	for _, tc := range []struct {
		name, conf string
		frames     []pcaptest.Frame
	}{
		{"plain", hotConf, noiseFrames(5000)},
		{"hostile", hotConf, saltedFrames(5000)},
		// A door that opted in to Crypt::CBC's rule pays a derivation
		// per new salt: the documented price of Header = magic.
		{"hostile-header-magic", magic, saltedFrames(5000)},
		// The authenticated mode: a tag (HMAC-SHA256) checked per window.
		{"plain-mac", hotConf + "\tMac_Key = mac secret\n", noiseFrames(5000)},
	} {
		b.Run(tc.name, func(b *testing.B) {
			h := newHotPathConf(b, tc.conf, tc.frames)
			now := time.Unix(1_000_000, 0)
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				now = now.Add(time.Microsecond)
				h.packet(i, now)
			}
			if h.opened != 0 {
				b.Fatalf("%d knocks decoded", h.opened)
			}
		})
	}
}
