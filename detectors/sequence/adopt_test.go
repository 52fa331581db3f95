package sequence_test

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/doorward/doorward/actions"
	"github.com/doorward/doorward/config/knockd"
	"github.com/doorward/doorward/detectors"
	"github.com/doorward/doorward/detectors/sequence"
)

// TestAdoptKeepsUnchangedDoors: after a reload, a knock in progress for a
// door whose definition did not change completes; one for a changed door
// starts over.
func TestAdoptKeepsUnchangedDoors(t *testing.T) {
	parse := func(src string) []sequence.Door {
		cfg, err := knockd.Parse("k.conf", []byte(src))
		if err != nil {
			t.Fatal(err)
		}
		return mustDoors(t, cfg)
	}
	before := parse("[same]\nsequence = 7000,8000,9000\n[changed]\nsequence = 7000,8000,9001\n")
	after := parse("[same]\nsequence = 7000,8000,9000\n[changed]\nsequence = 7000,8000,9001\nseq_timeout = 9\n[new]\nsequence = 8000,9000\n")

	var opened []string
	emit := func(ev actions.Event) { opened = append(opened, ev.Door) }
	src := netip.MustParseAddr("10.0.0.2")
	pkt := func(port uint16, at time.Duration) *detectors.Packet {
		return &detectors.Packet{Time: t0.Add(at), Src: src, Dst: netip.MustParseAddr("10.0.0.1"), Proto: detectors.TCP, DstPort: port, Flags: detectors.SYN}
	}
	old := sequence.New(before, sequence.Options{})
	old.Observe(pkt(7000, 0), emit)
	old.Observe(pkt(8000, time.Second), emit)

	d := sequence.New(after, sequence.Options{})
	d.Adopt(old)
	d.Observe(pkt(9000, 2*time.Second), emit)
	d.Observe(pkt(9001, 3*time.Second), emit)
	if want := []string{"same"}; !slices.Equal(opened, want) {
		t.Errorf("opened %q, want %q", opened, want)
	}
}
