package doorman

import (
	"math/rand/v2"
	"testing"

	"github.com/doorward/doorward/actions"

	"github.com/doorward/doorward/detectors"
	"github.com/doorward/doorward/internal/ratelimit"
)

// BenchmarkObserve compares what a flood on the knock port costs with a
// packet no door wants (a plain miss, through the same dispatcher): a
// random payload and a well-formed one naming no guest stop at the parse
// and the guest list; a forgery naming a real guest costs one HMAC, the
// least a check of the secret can cost (issue 14: a hostile payload is a
// miss plus a small constant).
func BenchmarkObserve(b *testing.B) {
	h := newHarness(b, b.TempDir())
	h.det.lim = ratelimit.New(1e-9, 1) // the lines a flood causes are suppressed
	var told int
	h.det.tally = func(string, actions.Outcome, string) { told++ } // as the daemon's: an atomic add
	disp := detectors.NewDispatcher([]detectors.Detector{h.det}, h.emit)
	random := make([]byte, 100)
	r := rand.New(rand.NewPCG(7, 7))
	for i := range random {
		random[i] = byte(r.Uint32())
	}
	for _, bc := range []struct {
		name    string
		port    uint16
		payload []byte
	}{
		{"miss", 9, random},
		{"random", 1001, random},
		{"unknown-guest", 1001, []byte("22 nobody 1 4270a3248a23c209b37d35bb060e1cd6")},
		{"forged", 1001, []byte("22 martink 1 4270a3248a23c209b37d35bb060e1cd6")},
	} {
		p := &detectors.Packet{Time: t0, Src: client, Dst: server, SrcPort: 40000, DstPort: bc.port, Proto: detectors.UDP, Payload: bc.payload}
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				disp.Dispatch(p)
			}
		})
	}
}
