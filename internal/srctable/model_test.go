package srctable_test

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/doorward/doorward/internal/srctable"
)

// model is the eviction policy of the package doc written the plain way:
// two lists of keys in order of last activity, and what each key holds.
type model struct {
	max   int
	lists [2][]srctable.Key // probation, protected; least recently active first
	ents  map[srctable.Key]*modelEntry
}

type modelEntry struct {
	seg  int // 0 probation, 1 protected
	dead int64
	val  int
}

func (m *model) unlink(k srctable.Key) {
	l := &m.lists[m.ents[k].seg]
	*l = slices.Delete(*l, slices.Index(*l, k), slices.Index(*l, k)+1)
}

func (m *model) remove(k srctable.Key) {
	m.unlink(k)
	delete(m.ents, k)
}

// insert returns the eviction and its victim.
func (m *model) insert(k srctable.Key, now, dead int64, val int) (srctable.Eviction, srctable.Key) {
	ev, victim := srctable.None, srctable.Key{}
	if len(m.ents) >= m.max {
		prob, prot := m.lists[0], m.lists[1]
		switch {
		case len(prob) > 0 && m.ents[prob[0]].dead <= now:
			ev, victim = srctable.Expired, prob[0]
		case len(prot) > 0 && m.ents[prot[0]].dead <= now:
			ev, victim = srctable.Expired, prot[0]
		case len(prob) > 0:
			ev, victim = srctable.Live, prob[0]
		default:
			ev, victim = srctable.Live, prot[0]
		}
		m.remove(victim)
	}
	m.ents[k] = &modelEntry{seg: 0, dead: dead, val: val}
	m.lists[0] = append(m.lists[0], k)
	return ev, victim
}

func (m *model) hit(k srctable.Key, dead int64, progress bool) {
	e := m.ents[k]
	e.dead = dead
	m.unlink(k)
	if !progress {
		e.seg = 0
		m.lists[0] = append(m.lists[0], k)
		return
	}
	e.seg = 1
	m.lists[1] = append(m.lists[1], k)
	if len(m.lists[1]) > m.max/2 {
		d := m.lists[1][0]
		m.lists[1] = m.lists[1][1:]
		m.ents[d].seg = 0
		m.lists[0] = append(m.lists[0], d)
	}
}

// TestAgainstModel drives the table and the model with the same random
// operations, lookups followed later by inserts among them, and checks
// that they evict the same sources and then hold the same ones.
func TestAgainstModel(t *testing.T) {
	for _, max := range []int{1, 2, 3, 8, 33, 256, 3000} {
		rng := rand.New(rand.NewPCG(14, uint64(max)))
		tb := srctable.New[int, uint16](max, 2)
		m := &model{max: max, ents: map[srctable.Key]*modelEntry{}}
		keys := make([]srctable.Key, 3*max+2)
		for i := range keys {
			keys[i] = srctable.AddrKey(v4(i))
		}
		now, id := int64(0), 0
		// Deadlines spread over a few tables' worth of steps: the table
		// fills, and its victims are of both kinds.
		span := 4*max + 60
		evictions := map[srctable.Eviction]int{}
		absentKey := func(not srctable.Key) (srctable.Key, bool) {
			for range 20 {
				if k := keys[rng.IntN(len(keys))]; k != not && m.ents[k] == nil {
					return k, true
				}
			}
			return srctable.Key{}, false
		}
		presentKey := func(not srctable.Key) (srctable.Key, bool) {
			for range 20 {
				if k := keys[rng.IntN(len(keys))]; k != not && m.ents[k] != nil {
					return k, true
				}
			}
			return srctable.Key{}, false
		}
		// inserted checks an insertion against the model's.
		inserted := func(step int, k srctable.Key, r srctable.Ref, ev srctable.Eviction) {
			id++
			wantEv, victim := m.insert(k, now, now+int64(rng.IntN(span)), id)
			evictions[ev]++
			if ev != wantEv {
				t.Fatalf("max %d step %d: eviction %v, model %v", max, step, ev, wantEv)
			}
			if ev != srctable.None {
				if _, ok := tb.Find(victim); ok {
					t.Fatalf("max %d step %d: the model's victim %v is still there", max, step, victim.Addr())
				}
			}
			if r2, ok := tb.Find(k); !ok || r2 != r {
				t.Fatalf("max %d step %d: the new source %v is not found", max, step, k.Addr())
			}
			if *tb.Val(r) != 0 {
				t.Fatalf("max %d step %d: a new entry holds %d", max, step, *tb.Val(r))
			}
			*tb.Val(r) = id
			tb.Slab(r)[1] = uint16(id)
			tb.Hit(r, now, m.ents[k].dead, false) // as the detectors do
		}
		for step := range 30 * max {
			now += int64(rng.IntN(3))
			k := keys[rng.IntN(len(keys))]
			switch op := rng.IntN(10); {
			case op < 4: // a packet: find, or insert
				r, found, ev := tb.FindOrInsert(k, now, now)
				if found != (m.ents[k] != nil) {
					t.Fatalf("max %d step %d: FindOrInsert found %v, model %v", max, step, found, !found)
				}
				if !found {
					inserted(step, k, r, ev)
					continue
				}
				dead, progress := now+int64(rng.IntN(span)), rng.IntN(2) == 0
				tb.Hit(r, now, dead, progress)
				m.hit(k, dead, progress)
			case op < 7: // a lookup, other changes, then the insert
				r, spot, found := tb.Lookup(k)
				if found != (m.ents[k] != nil) {
					t.Fatalf("max %d step %d: Lookup found %v, model %v", max, step, found, !found)
				}
				if found {
					if *tb.Val(r) != m.ents[k].val {
						t.Fatalf("max %d step %d: value %d, model %d", max, step, *tb.Val(r), m.ents[k].val)
					}
					continue
				}
				switch rng.IntN(4) {
				case 0: // a delete moves index words
					if o, ok := presentKey(k); ok {
						r, _ := tb.Find(o)
						tb.Delete(r)
						m.remove(o)
					}
				case 1: // an insert may evict, or grow the index
					if o, ok := absentKey(k); ok {
						r, ev := tb.Insert(o, now, now)
						inserted(step, o, r, ev)
					}
				case 2: // a hit does not touch the index
					if o, ok := presentKey(k); ok {
						r, _ := tb.Find(o)
						tb.Hit(r, now, now+10, true)
						m.hit(o, now+10, true)
					}
				}
				r, ev := tb.InsertAt(spot, now, now)
				inserted(step, k, r, ev)
			case op < 8: // a source that gave up
				if r, ok := tb.Find(k); ok {
					tb.Delete(r)
					m.remove(k)
				}
			case op < 9: // a sweep dropped some of its state
				if r, ok := tb.Find(k); ok {
					tb.SetDeadline(r, now)
					m.ents[k].dead = now
				}
			default: // Expire's sweep, now and then
				if rng.IntN(20) != 0 {
					continue
				}
				for r := range tb.All() {
					if k := tb.Key(r); tb.Deadline(r) < now {
						if m.ents[k] == nil || m.ents[k].dead >= now {
							t.Fatalf("max %d step %d: sweep sees %v the model does not hold as due", max, step, k.Addr())
						}
						tb.Delete(r)
						m.remove(k)
					}
				}
			}
			if tb.Len() != len(m.ents) {
				t.Fatalf("max %d step %d: Len %d, model %d", max, step, tb.Len(), len(m.ents))
			}
			if max <= 256 || step%97 == 0 {
				for k, e := range m.ents {
					r, ok := tb.Find(k)
					if !ok || *tb.Val(r) != e.val || tb.Slab(r)[1] != uint16(e.val) || tb.Deadline(r) != e.dead {
						t.Fatalf("max %d step %d: %v found %v, want value %d deadline %d", max, step, k.Addr(), ok, e.val, e.dead)
					}
				}
			}
		}
		if max > 2 && (evictions[srctable.Expired] < max/8 || evictions[srctable.Live] < max/8) {
			t.Errorf("max %d: evictions %v: too few of a kind to test", max, evictions)
		}
	}
}
