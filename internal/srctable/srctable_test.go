package srctable_test

import (
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/doorward/doorward/internal/srctable"
)

func v4(i int) netip.Addr {
	x := uint32(i+1) * 2654435761
	return netip.AddrFrom4([4]byte{byte(x >> 24), byte(x >> 16), byte(x >> 8), byte(x)})
}

type tab = srctable.Table[int, uint16]

// TestAgainstMap runs random inserts, hits, finds and deletes against a map
// and checks after each that both hold the same sources with the same
// values, and the bound.
func TestAgainstMap(t *testing.T) {
	for _, max := range []int{1, 2, 7, 50, 700} {
		tb := srctable.New[int, uint16](max, 3)
		model := map[srctable.Key]int{}
		rng := rand.New(rand.NewPCG(1, uint64(max)))
		now := int64(0)
		for step := range 20 * max {
			now++
			k := srctable.AddrKey(v4(rng.IntN(3 * max)))
			r, ok := tb.Find(k)
			if _, in := model[k]; in != ok {
				t.Fatalf("max %d step %d: Find(%v) = %v, model %v", max, step, k.Addr(), ok, in)
			}
			switch {
			case ok && rng.IntN(4) == 0:
				tb.Delete(r)
				delete(model, k)
			case ok:
				if *tb.Val(r) != model[k] || tb.Slab(r)[2] != uint16(model[k]) {
					t.Fatalf("max %d: value %d slab %v, want %d", max, *tb.Val(r), tb.Slab(r), model[k])
				}
				tb.Hit(r, now, now+100, rng.IntN(2) == 0)
			default:
				if tb.Len() == max {
					// The model cannot predict the victim; drop the one
					// the table will, found by evicting and diffing.
					before := map[srctable.Key]bool{}
					for r := range tb.All() {
						before[tb.Key(r)] = true
					}
					r, ev := tb.Insert(k, now, now+100)
					if ev == srctable.None {
						t.Fatalf("max %d: insert into a full table evicted nothing", max)
					}
					for kk := range model {
						if _, ok := tb.Find(kk); !ok {
							delete(model, kk)
						}
					}
					if len(model) != max-1 {
						t.Fatalf("max %d: %d gone at once", max, max-1-len(model))
					}
					*tb.Val(r) = step
					tb.Slab(r)[2] = uint16(step)
					model[k] = step
					continue
				}
				r, ev := tb.Insert(k, now, now+100)
				if ev != srctable.None {
					t.Fatalf("max %d: evicted with room", max)
				}
				if *tb.Val(r) != 0 {
					t.Fatalf("new value %d, want 0", *tb.Val(r))
				}
				*tb.Val(r) = step
				tb.Slab(r)[2] = uint16(step)
				model[k] = step
			}
			if tb.Len() != len(model) || tb.Len() > max {
				t.Fatalf("max %d step %d: Len %d, model %d", max, step, tb.Len(), len(model))
			}
		}
		n := 0
		for r := range tb.All() {
			if model[tb.Key(r)] != *tb.Val(r) {
				t.Fatalf("All: %v = %d, want %d", tb.Key(r).Addr(), *tb.Val(r), model[tb.Key(r)])
			}
			n++
		}
		if n != len(model) {
			t.Fatalf("All yields %d, want %d", n, len(model))
		}
	}
}

func TestKeys(t *testing.T) {
	a4 := netip.MustParseAddr("192.0.2.1")
	a6 := netip.MustParseAddr("::ffff:192.0.2.1")
	if srctable.AddrKey(a4) == srctable.AddrKey(a6) {
		t.Errorf("IPv4 and IPv4-mapped keys are equal")
	}
	for _, a := range []netip.Addr{a4, a6, netip.MustParseAddr("2001:db8::1")} {
		k := srctable.AddrPortKey(a, 22)
		if k.Addr() != a || k.Port() != 22 {
			t.Errorf("%v: key gives %v port %d", a, k.Addr(), k.Port())
		}
	}
	tb := srctable.New[int, struct{}](4, 0)
	tb.Insert(srctable.AddrKey(a4), 0, 1)
	if _, ok := tb.Find(srctable.AddrKey(a6)); ok {
		t.Errorf("the IPv4-mapped address finds the IPv4 one")
	}
}

// flood drives a full table: n new sources, each hit twice when progress.
type flood struct {
	tb   *tab
	now  int64
	next int
}

func (f *flood) source(progress bool) srctable.Ref {
	f.now++
	f.next++
	r, _ := f.tb.Insert(srctable.AddrKey(v4(1_000_000+f.next)), f.now, f.now+1_000_000)
	if progress {
		f.now++
		f.tb.Hit(r, f.now, f.now+1_000_000, true)
	}
	return r
}

func (f *flood) alive(t *testing.T, k srctable.Key, what string) {
	t.Helper()
	if _, ok := f.tb.Find(k); !ok {
		t.Fatalf("%s: evicted", what)
	}
}

// TestPolicy: what a legitimate knocker survives, as the package doc says.
func TestPolicy(t *testing.T) {
	const max = 1000
	knocker := srctable.AddrKey(netip.MustParseAddr("10.9.9.9"))
	start := func(f *flood, progress bool) {
		for range max { // a full table
			f.source(progress)
		}
		f.now++
		r, _ := f.tb.Insert(knocker, f.now, f.now+1_000_000)
		if progress {
			f.tb.Hit(r, f.now, f.now+1_000_000, true)
		}
	}
	t.Run("first-hit flood never evicts progress", func(t *testing.T) {
		f := &flood{tb: srctable.New[int, uint16](max, 0)}
		start(f, true)
		for range 100 * max {
			f.source(false)
		}
		f.alive(t, knocker, "knocker with progress")
	})
	t.Run("first hit survives half a table of new sources", func(t *testing.T) {
		for _, progress := range []bool{false, true} {
			f := &flood{tb: srctable.New[int, uint16](max, 0)}
			start(f, progress) // table full of one-hit or of two-hit sources
			r, _ := f.tb.Find(knocker)
			f.tb.Hit(r, f.now, f.now+1_000_000, false)
			for range max/2 - 1 {
				f.source(progress)
			}
			f.alive(t, knocker, "knocker after their first hit")
		}
	})
	t.Run("two-step flood evicts the less recently active first", func(t *testing.T) {
		f := &flood{tb: srctable.New[int, uint16](max, 0)}
		start(f, true)
		for range max - 2 {
			f.source(true)
		}
		f.alive(t, knocker, "knocker with progress")
		for range 2 {
			f.source(true)
		}
		if _, ok := f.tb.Find(knocker); ok {
			t.Fatalf("knocker still there after a table's worth of newer sources")
		}
	})
	t.Run("hopeless sources go first", func(t *testing.T) {
		f := &flood{tb: srctable.New[int, uint16](max, 0)}
		start(f, true)
		// The second source's window closed (it made progress at 4, its
		// deadline was 4+1e6; the first was evicted for the knocker): the table drops it, not a live source.
		first := srctable.AddrKey(v4(1_000_002))
		f.alive(t, first, "second source")
		if _, ev := f.tb.Insert(srctable.AddrKey(netip.MustParseAddr("10.7.7.7")), 1_000_005, 2_000_000); ev != srctable.Expired {
			t.Fatalf("eviction %v, want Expired", ev)
		}
		if _, ok := f.tb.Find(first); ok {
			t.Fatalf("the hopeless source is still there")
		}
		f.alive(t, knocker, "knocker")
	})
}

// TestNoAllocs: filling a new table, and then a full table's inserts,
// evictions, hits and lookups allocate nothing.
func TestNoAllocs(t *testing.T) {
	fill := &flood{tb: srctable.New[int, uint16](4096, 8)}
	if n := testing.AllocsPerRun(4096, func() { fill.source(fill.next%3 == 0) }); n != 0 {
		t.Errorf("filling: %v allocations", n)
	}
	f := &flood{tb: srctable.New[int, uint16](4096, 8)}
	for range 3 * 4096 {
		f.source(true)
	}
	if n := testing.AllocsPerRun(10000, func() {
		r := f.source(f.next%3 == 0)
		if _, ok := f.tb.Find(f.tb.Key(r)); !ok {
			t.Fatal("lost")
		}
	}); n != 0 {
		t.Errorf("%v allocations", n)
	}
}

// benchMax is the default table of sequence doors.
const benchMax = 1 << 16

// spoofed are n distinct addresses random over all of IPv4, as a flood's
// sources; a longer list starts with a shorter one.
func spoofed(n int) []srctable.Key {
	rng := rand.New(rand.NewPCG(14, 14))
	keys := make([]srctable.Key, 0, n)
	seen := make(map[uint32]bool, n)
	for len(keys) < n {
		x := rng.Uint32()
		if seen[x] {
			continue
		}
		seen[x] = true
		keys = append(keys, srctable.AddrKey(netip.AddrFrom4([4]byte{byte(x >> 24), byte(x >> 16), byte(x >> 8), byte(x)})))
	}
	return keys
}

// lookupOrInsert is what a detector does with a packet's source: find it,
// or start tracking it (evicting from a full table).
func lookupOrInsert(tb *tab, k srctable.Key, now, dead int64) (srctable.Ref, bool) {
	r, found, _ := tb.FindOrInsert(k, now, dead)
	return r, found
}

// fullTable is a table of benchMax spoofed sources, with progress or not,
// and the keys it holds.
func fullTable(progress bool) (*tab, []srctable.Key) {
	tb := srctable.New[int, uint16](benchMax, 4)
	keys := spoofed(benchMax)
	for i, k := range keys {
		r, _ := tb.Insert(k, int64(i), 1<<40)
		tb.Hit(r, int64(i), 1<<40, progress)
	}
	return tb, keys
}

// BenchmarkTable: the table alone, full at 65,536 spoofed sources.
//   - hit: a known source, in random order, looked up and its hit recorded
//     (a knocker's packet);
//   - miss: a lookup that finds nothing (a SYN nobody knocked for, a
//     non-first port from an unknown source);
//   - insert-evict: a new spoofed source, looked up, then inserted, which
//     evicts the oldest of probation (the first-hit flood);
//   - insert-evict-progress: the same into a table whose sources all made
//     progress (the two-step flood).
func BenchmarkTable(b *testing.B) {
	b.Run("hit", func(b *testing.B) {
		tb, keys := fullTable(false)
		order := rand.New(rand.NewPCG(1, 2)).Perm(len(keys))
		b.ReportAllocs()
		now := int64(benchMax)
		for i := 0; b.Loop(); i++ {
			now++
			r, ok := lookupOrInsert(tb, keys[order[i&(benchMax-1)]], now, 1<<40)
			if !ok {
				b.Fatal("lost")
			}
			tb.Hit(r, now, 1<<40, false)
		}
	})
	b.Run("miss", func(b *testing.B) {
		tb, _ := fullTable(false)
		absent := spoofed(5 * benchMax)[benchMax:] // the same generator: disjoint from the table's
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if _, ok := tb.Find(absent[i%len(absent)]); ok {
				b.Fatal("found")
			}
		}
	})
	for _, progress := range []bool{false, true} {
		name := "insert-evict"
		if progress {
			name += "-progress"
		}
		b.Run(name, func(b *testing.B) {
			tb, _ := fullTable(progress)
			// 4 tables' worth of new sources: by the time one comes
			// round again, it has long been evicted.
			fresh := spoofed(5 * benchMax)[benchMax:]
			b.ReportAllocs()
			now := int64(benchMax)
			for i := 0; b.Loop(); i++ {
				now++
				if _, ok := lookupOrInsert(tb, fresh[i%len(fresh)], now, 1<<40); ok {
					b.Fatal("found")
				}
			}
		})
	}
}

// BenchmarkSweep: one pass of a detector's Expire over a full table in
// which nothing is due, per source.
func BenchmarkSweep(b *testing.B) {
	tb, _ := fullTable(false)
	b.ReportAllocs()
	for b.Loop() {
		n := 0
		for r := range tb.All() {
			if tb.Deadline(r) <= 0 {
				tb.Delete(r)
			}
			n++
		}
		if n != benchMax {
			b.Fatal(n)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/benchMax, "ns/source")
}

// TestFill: a table filled to its bound keeps every source, its value and
// its slab.
func TestFill(t *testing.T) {
	const max = 5000
	tb := srctable.New[int, uint16](max, 2)
	for i := range max {
		r, ev := tb.Insert(srctable.AddrKey(v4(i)), int64(i), 1<<40)
		if ev != srctable.None {
			t.Fatalf("source %d: evicted with room", i)
		}
		*tb.Val(r) = i
		tb.Slab(r)[1] = uint16(i)
	}
	check := func(what string, gone func(i int) bool) {
		for i := range max {
			r, ok := tb.Find(srctable.AddrKey(v4(i)))
			switch {
			case ok == gone(i):
				t.Fatalf("%s: source %d found %v", what, i, ok)
			case ok && (*tb.Val(r) != i || tb.Slab(r)[1] != uint16(i)):
				t.Fatalf("%s: source %d holds %d %v", what, i, *tb.Val(r), tb.Slab(r))
			}
		}
	}
	check("full", func(int) bool { return false })
	for i := 0; i < max; i += 2 {
		r, _ := tb.Find(srctable.AddrKey(v4(i)))
		tb.Delete(r)
	}
	check("half deleted", func(i int) bool { return i%2 == 0 })
	if tb.Len() != max/2 {
		t.Fatalf("Len %d, want %d", tb.Len(), max/2)
	}
}

// TestPart: the parts of a table, swept in turn, yield every entry once,
// also when the sweep deletes what it is given and whatever the number of
// parts (more parts than entries included).
func TestPart(t *testing.T) {
	for _, parts := range []int{1, 2, 3, 16, 64, 5000} {
		tb := srctable.New[int, uint16](1000, 1)
		for i := range 1000 {
			r, _ := tb.Insert(srctable.AddrKey(v4(i)), 1, 2)
			*tb.Val(r) = i
		}
		for i := 0; i < 1000; i += 3 { // holes, as deletes leave them
			r, _ := tb.Find(srctable.AddrKey(v4(i)))
			tb.Delete(r)
		}
		seen := map[int]int{}
		for p := range parts {
			for r := range tb.Part(p, parts) {
				seen[*tb.Val(r)]++
				if *tb.Val(r)%2 == 0 {
					tb.Delete(r)
				}
			}
		}
		for i := range 1000 {
			want := 1
			if i%3 == 0 {
				want = 0
			}
			if seen[i] != want {
				t.Fatalf("%d parts: entry %d yielded %d times, want %d", parts, i, seen[i], want)
			}
		}
		if want := 1000 - 334 - 333; tb.Len() != want {
			t.Errorf("%d parts: %d left after deleting the even ones, want %d", parts, tb.Len(), want)
		}
	}
}
