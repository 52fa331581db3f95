package sequence_test

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/doorward/doorward/actions"
	"github.com/doorward/doorward/config/knockd"
	"github.com/doorward/doorward/detectors"
	"github.com/doorward/doorward/detectors/detectortest"
	"github.com/doorward/doorward/detectors/pcaptest"
	"github.com/doorward/doorward/detectors/sequence"
)

// The lockout floods of issue 12: spoofed sources fill the per-source
// table while a real knocker knocks. Each capture is generated here from
// the table's size and the door's Seq_Timeout alone (not from what the
// detector does), written to a pcap and replayed through the real replay
// source and dispatcher, as `knockd --replay` would.

const floodConf = `[ssh]
	sequence    = 7000,8000,9000
	tcpflags    = syn
	command     = true
`

var (
	server  = netip.MustParseAddr("10.0.0.1")
	knocker = netip.MustParseAddr("10.9.9.9")
)

func synAt(at time.Time, src netip.Addr, port uint16) pcaptest.Frame {
	return pcaptest.Frame{Time: at, Src: netip.AddrPortFrom(src, 40000), Dst: netip.AddrPortFrom(server, port),
		Proto: detectors.TCP, Flags: detectors.SYN}
}

// floodRun replays frames through a detector for floodConf with a table of
// max sources and returns the addresses the door opened for.
func floodRun(t *testing.T, max int, frames []pcaptest.Frame) []netip.Addr {
	t.Helper()
	cfg, err := knockd.Parse("knockd.conf", []byte(floodConf))
	if err != nil {
		t.Fatal(err)
	}
	var opened []netip.Addr
	var now time.Time
	var log strings.Builder
	det := sequence.New(mustDoors(t, cfg), sequence.Options{MaxSources: max, Logf: func(f string, a ...any) {
		if line := fmt.Sprintf(f, a...); strings.Contains(line, knocker.String()) || strings.Contains(line, "too many") {
			fmt.Fprintf(&log, "+%.3f %s\n", now.Sub(t0).Seconds(), line)
		}
	}})
	disp := detectors.NewDispatcher([]detectors.Detector{det}, func(ev actions.Event) { opened = append(opened, ev.Addr) })
	detectortest.ReplayEvery(t, detectortest.WriteFrames(t, frames), disp, &now, time.Second, nil)
	if t.Failed() || len(opened) == 0 {
		t.Logf("detector log (the knocker's lines and the table's):\n%s", log.String())
	}
	return opened
}

// knockDuring adds the knocker's three hits, gap apart from at, to frames
// (kept in time order).
func knockDuring(frames []pcaptest.Frame, at time.Time, gap time.Duration) []pcaptest.Frame {
	var out []pcaptest.Frame
	k := 0
	hits := []pcaptest.Frame{synAt(at, knocker, 7000), synAt(at.Add(gap), knocker, 8000), synAt(at.Add(2*gap), knocker, 9000)}
	for _, f := range frames {
		for k < len(hits) && !hits[k].Time.After(f.Time) {
			out = append(out, hits[k])
			k++
		}
		out = append(out, f)
	}
	return append(out, hits[k:]...)
}

func wantOnly(t *testing.T, opened []netip.Addr) {
	t.Helper()
	if len(opened) != 1 || opened[0] != knocker {
		t.Errorf("door opened for %v, want only the knocker %v", opened, knocker)
	}
}

// TestTwoStepFloodDoesNotLockOut: spoofed sources that each make the first
// two hits of the three-step sequence, at twice the rate that keeps the
// table full: 2·MaxSources new sources per Seq_Timeout, two packets each,
// so 4·MaxSources/Seq_Timeout packets a second (≈10k pps for the
// defaults; 5k sustains a full table). A knocker who arrives once the
// table has been full for half a Seq_Timeout still opens.
func TestTwoStepFloodDoesNotLockOut(t *testing.T) {
	const max = 1000
	timeout := knockd.DefaultSeqTimeout
	perSource := timeout / (2 * max)  // 2·max sources per Seq_Timeout
	n := int(2 * timeout / perSource) // two timeouts' worth
	var frames []pcaptest.Frame
	for i := range n {
		at := t0.Add(time.Duration(i) * perSource)
		frames = append(frames, synAt(at, pcaptest.Spoofed(i), 7000), synAt(at.Add(perSource/2), pcaptest.Spoofed(i), 8000))
	}
	// The knocker comes when the table has been full for a while, and
	// takes half a second per hit.
	frames = knockDuring(frames, t0.Add(timeout+timeout/2), 500*time.Millisecond)
	wantOnly(t, floodRun(t, max, frames))
}

// TestFirstHitFloodDoesNotLockOut: a first-hit flood at the fastest rate
// a gigabit link carries (about 500k spoofed SYNs a second, each from a
// new random source) into the default-sized table. The knocker's hits are
// 20 ms apart.
func TestFirstHitFloodDoesNotLockOut(t *testing.T) {
	const pps = 500_000
	const n = pps / 4 // a quarter of a second
	frames := make([]pcaptest.Frame, n)
	for i := range frames {
		frames[i] = synAt(t0.Add(time.Duration(i)*time.Second/pps), pcaptest.Spoofed(i), 7000)
	}
	frames = knockDuring(frames, t0.Add(100*time.Millisecond), 20*time.Millisecond)
	wantOnly(t, floodRun(t, sequence.DefaultMaxSources, frames))
}
