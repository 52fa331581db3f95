package sequence_test

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/doorward/doorward/actions"
	"github.com/doorward/doorward/detectors"
	"github.com/doorward/doorward/detectors/sequence"
)

// TestExpireLogsFirstTimeouts: when more attempts time out at once than
// the log limiter lets through, the lines logged are those of the
// earliest deadlines, equal deadlines in address order, and the next
// line allowed counts the rest, as if every timeout had been offered to
// the limiter in that order.
func TestExpireLogsFirstTimeouts(t *testing.T) {
	const burst = 7
	var lines []string
	logf := func(format string, args ...any) { lines = append(lines, fmt.Sprintf(format, args...)) }
	doors := []sequence.Door{{Key: "d", Name: "d", Timeout: 5 * time.Second,
		Seq: []sequence.Step{{Port: 7000, Proto: detectors.UDP}, {Port: 8000, Proto: detectors.UDP}}}}
	d := sequence.New(doors, sequence.Options{Logf: logf, LogRate: 1, LogBurst: burst})
	// 300 sources in groups of 20 (more than twice the burst) that knock
	// at the same instant, so deadlines tie and the address decides.
	rng := rand.New(rand.NewPCG(14, 3))
	start := time.Unix(1_000_000, 0)
	type src struct {
		due  time.Time
		addr netip.Addr
	}
	var srcs []src
	for i := range 300 {
		at := start.Add(time.Duration(i/20) * time.Millisecond)
		a := netip.AddrFrom4([4]byte{byte(rng.Uint32()), byte(i), byte(i >> 8), 1})
		d.Observe(&detectors.Packet{Time: at, Src: a, Dst: netip.MustParseAddr("10.0.0.1"), Proto: detectors.UDP, DstPort: 7000}, func(actions.Event) {})
		srcs = append(srcs, src{at.Add(5 * time.Second), a})
	}
	slices.SortFunc(srcs, func(a, b src) int {
		if c := a.due.Compare(b.due); c != 0 {
			return c
		}
		return a.addr.Compare(b.addr)
	})
	lines = nil
	d.Expire(start.Add(time.Minute))
	want := []string{fmt.Sprintf("%d knock log lines suppressed (more than 1 a second)", 300-burst)}
	for _, s := range srcs[:burst] {
		want = append(want, fmt.Sprintf("%s: d: sequence timeout (stage 1)", s.addr))
	}
	if !slices.Equal(lines, want) {
		t.Fatalf("after the timeouts, logged\n%q\nwant\n%q", lines, want)
	}
	lines = nil
	d.Observe(&detectors.Packet{Time: start.Add(2 * time.Minute), Src: netip.MustParseAddr("10.9.9.9"), Dst: netip.MustParseAddr("10.0.0.1"), Proto: detectors.UDP, DstPort: 7000}, func(actions.Event) {})
	if want := fmt.Sprintf("%d knock log lines suppressed (more than 1 a second)", 300-burst); len(lines) == 0 || lines[0] != want {
		t.Fatalf("the next line allowed: %q, want %q", lines, want)
	}
	if d.Sources() != 1 {
		t.Fatalf("%d sources left, want 1", d.Sources())
	}
}
