package detectors_test

import (
	"testing"
	"time"

	"github.com/doorward/doorward/actions"
	"github.com/doorward/doorward/detectors"
)

// whole is a detector that cannot split its sweep; parted one that can.
type whole struct{ expires int }

func (*whole) Rules() []detectors.Rule                        { return nil }
func (*whole) Observe(*detectors.Packet, func(actions.Event)) {}
func (w *whole) Expire(time.Time)                             { w.expires++ }

type parted struct {
	whole
	parts []int
}

func (p *parted) ExpirePart(_ time.Time, part, parts int) { p.parts = append(p.parts, part) }

// TestExpirePart: a sweep in parts reaches every part of a PartExpirer,
// and a detector that is not one exactly once, with the first part.
func TestExpirePart(t *testing.T) {
	w, p := &whole{}, &parted{}
	d := detectors.NewDispatcher([]detectors.Detector{w, p}, func(actions.Event) {})
	for i := range 4 {
		d.ExpirePart(time.Now(), i, 4)
	}
	if w.expires != 1 {
		t.Errorf("Expire ran %d times over the 4 parts, want 1", w.expires)
	}
	if len(p.parts) != 4 || p.parts[0] != 0 || p.parts[3] != 3 || p.expires != 0 {
		t.Errorf("the PartExpirer swept parts %v and ran Expire %d times, want [0 1 2 3] and 0", p.parts, p.expires)
	}
}
