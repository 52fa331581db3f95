package sequence_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/doorward/doorward/actions"
	"github.com/doorward/doorward/detectors"
	"github.com/doorward/doorward/detectors/decode"
	"github.com/doorward/doorward/detectors/pcaptest"
	"github.com/doorward/doorward/detectors/sequence"
)

// TestExpirePart: sweeping the table a part at a time, every part in turn,
// times out the same attempts as one Expire, logs the same lines and
// leaves the same sources, whatever the number of parts.
func TestExpirePart(t *testing.T) {
	frames := randomFloodFrames(3000)
	t0 := time.Unix(1_000_000, 0)
	run := func(parts int) (lines []string, left int) {
		doors := []sequence.Door{{Key: "ssh", Name: "ssh", Timeout: 5 * time.Second, FlagMask: detectors.SYN | detectors.ACK, FlagWant: detectors.SYN,
			Seq: []sequence.Step{{Port: 7000, Proto: detectors.TCP}, {Port: 8000, Proto: detectors.TCP}, {Port: 9000, Proto: detectors.TCP}}}}
		det := sequence.New(doors, sequence.Options{MaxSources: 4096, LogRate: -1,
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
