package sequence_test

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/doorward/doorward/actions"
	"github.com/doorward/doorward/detectors"
	"github.com/doorward/doorward/detectors/sequence"
)

// TestFullTableEvictsFirstHitsOnly: a flood of spoofed first hits cannot
// push out a knocker who is past the first hit, and a new knocker still
// gets a place by displacing the oldest first-hit-only source.
func TestFullTableEvictsFirstHitsOnly(t *testing.T) {
	doors := []sequence.Door{{Key: "d", Name: "d", Timeout: time.Minute, Seq: []sequence.Step{
		{Port: 7000, Proto: detectors.TCP}, {Port: 8000, Proto: detectors.TCP}, {Port: 9000, Proto: detectors.TCP},
	}}}
	d := sequence.New(doors, sequence.Options{MaxSources: 4})
	var opened []string
	emit := func(ev actions.Event) { opened = append(opened, ev.Addr.String()) }
	at := t0
	hit := func(src string, port uint16) {
		at = at.Add(time.Millisecond)
		d.Observe(&detectors.Packet{Time: at, Src: netip.MustParseAddr(src), Dst: netip.MustParseAddr("10.0.0.1"),
			Proto: detectors.TCP, Flags: detectors.SYN, DstPort: port}, emit)
	}
	hit("10.9.9.9", 7000) // the legitimate knocker
	hit("10.9.9.9", 8000)
	for i := range 1000 { // the flood
		hit(fmt.Sprintf("192.0.2.%d", i%250), 7000)
		hit(fmt.Sprintf("198.51.100.%d", i%250), 7000)
	}
	if d.Sources() != 4 {
		t.Fatalf("%d sources tracked, want the bound 4", d.Sources())
	}
	hit("10.8.8.8", 7000) // a second knocker arrives during the flood
	hit("10.8.8.8", 8000)
	hit("10.9.9.9", 9000)
	hit("10.8.8.8", 9000)
	if want := []string{"10.9.9.9", "10.8.8.8"}; !slices.Equal(opened, want) {
		t.Errorf("opened %v, want %v", opened, want)
	}
	if d.Evicted == 0 {
		t.Errorf("no eviction counted")
	}
}

// TestEvictionIsOldestFirst: under a flood bigger than the table, a
// knocker whose second hit comes within the table's worth of flood packets
// still opens, because the oldest first hits go first.
func TestEvictionIsOldestFirst(t *testing.T) {
	doors := []sequence.Door{{Key: "d", Name: "d", Timeout: time.Minute, Seq: []sequence.Step{
		{Port: 7000, Proto: detectors.TCP}, {Port: 8000, Proto: detectors.TCP},
	}}}
	const max = 100
	d := sequence.New(doors, sequence.Options{MaxSources: max})
	opened := 0
	emit := func(actions.Event) { opened++ }
	at := t0
	hit := func(src netip.Addr, port uint16) {
		at = at.Add(time.Microsecond)
		d.Observe(&detectors.Packet{Time: at, Src: src, Dst: netip.MustParseAddr("10.0.0.1"),
			Proto: detectors.TCP, Flags: detectors.SYN, DstPort: port}, emit)
	}
	flood := func(n, from int) {
		for i := range n {
			hit(netip.AddrFrom4([4]byte{198, 18, byte((from + i) >> 8), byte(from + i)}), 7000)
		}
	}
	flood(10*max, 0) // the table is full of spoofed first hits, evicting as it goes
	for k := range 20 {
		legit := netip.AddrFrom4([4]byte{10, 9, 0, byte(k)})
		hit(legit, 7000)
		flood(max-10, 1000+k*max) // less than a table's worth in between
		hit(legit, 8000)
	}
	if opened != 20 {
		t.Errorf("%d of 20 knocks opened during the flood", opened)
	}
}
