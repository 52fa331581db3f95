package detectors

import (
	"time"

	"github.com/doorward/doorward/actions"
)

// Dispatcher routes each packet to the detectors that asked for its
// (protocol, destination port), with one table lookup and no scan over doors.
// It is used by one goroutine at a time, like the detectors it holds.
type Dispatcher struct {
	dets []Detector
	// index[proto][port] is 0 for "nobody", else 1 + an index into sets.
	// 2×65536 bytes; a map would cost a hash per packet.
	index [2][65536]uint8
	sets  [][]Detector
	emit  func(actions.Event)
}

// NewDispatcher indexes dets by the ports of their Rules. Up to 255
// distinct detector combinations are supported (there are three kinds).
func NewDispatcher(dets []Detector, emit func(actions.Event)) *Dispatcher {
	d := &Dispatcher{dets: dets, emit: emit}
	d.Reindex()
	return d
}

// Reindex rebuilds the port index from the detectors' current Rules, after
// a detector's doors changed (a one-time sequence moved on).
func (d *Dispatcher) Reindex() {
	dets := d.dets
	d.index = [2][65536]uint8{}
	d.sets = d.sets[:0]
	want := map[[2]int][]int{} // (proto slot, port) → detector indexes
	for i, det := range dets {
		for _, r := range det.Rules() {
			slot := protoSlot(r.Proto)
			if slot < 0 {
				continue
			}
			for _, port := range r.Ports {
				k := [2]int{slot, int(port)}
				if l := want[k]; len(l) == 0 || l[len(l)-1] != i {
					want[k] = append(l, i)
				}
			}
		}
	}
	setIDs := map[string]uint8{}
	for k, l := range want {
		name := ""
		for _, i := range l {
			name += string(rune('A' + i))
		}
		id, ok := setIDs[name]
		if !ok {
			set := make([]Detector, len(l))
			for j, i := range l {
				set[j] = dets[i]
			}
			d.sets = append(d.sets, set)
			id = uint8(len(d.sets))
			setIDs[name] = id
		}
		d.index[k[0]][k[1]] = id
	}
}

func protoSlot(p Proto) int {
	switch p {
	case TCP:
		return 0
	case UDP:
		return 1
	}
	return -1
}

// Dispatch hands p to every interested detector.
func (d *Dispatcher) Dispatch(p *Packet) {
	slot := protoSlot(p.Proto)
	if slot < 0 {
		return
	}
	id := d.index[slot][p.DstPort]
	if id == 0 {
		return
	}
	for _, det := range d.sets[id-1] {
		det.Observe(p, d.emit)
	}
}

// Wants reports whether any detector asked for (proto, port).
func (d *Dispatcher) Wants(proto Proto, port uint16) bool {
	slot := protoSlot(proto)
	return slot >= 0 && d.index[slot][port] != 0
}

// Expire lets every detector drop timed-out attempts.
func (d *Dispatcher) Expire(now time.Time) {
	for _, det := range d.dets {
		det.Expire(now)
	}
}

// ExpirePart is Expire over the part-th of parts slices of every
// detector's tables (PartExpirer); a detector that cannot split its sweep
// does all of it with part 0.
func (d *Dispatcher) ExpirePart(now time.Time, part, parts int) {
	for _, det := range d.dets {
		if pe, ok := det.(PartExpirer); ok {
			pe.ExpirePart(now, part, parts)
		} else if part == 0 {
			det.Expire(now)
		}
	}
}

// Rules is the union of every detector's rules, for the capture filter.
func (d *Dispatcher) Rules() []Rule {
	var out []Rule
	for _, det := range d.dets {
		out = append(out, det.Rules()...)
	}
	return out
}
