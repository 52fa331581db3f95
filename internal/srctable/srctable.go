// Package srctable is the bounded table of per-source state that every
// detector keeps: knock attempts in progress (detectors/sequence), port-span
// senders' queued hits (detectors/knockdaemon), knocks waiting for their SYN
// (detectors/doorman). Sources are whatever the packets say they are, so an
// attacker can spoof as many as the link carries; the table holds at most
// MaxSources of them and its eviction rule, below, decides who a flood can
// push out. It is written down here once and holds for every detector.
//
// # Eviction policy
//
// The table is split in two halves, as a segmented LRU: a probation list
// for sources that have made no progress yet (one hit of a sequence, one
// hit in a span) and a protected list, at most MaxSources/2 long, for
// sources that have (two hits or more). Each list is kept in order of last
// activity. A new source enters probation; a source whose caller reports
// progress moves to the protected list, whose least recently active
// source, when the list is over its half, moves back to the newest end of
// probation (it is demoted, not dropped). When a new source needs room:
//
//  1. a source whose window can no longer succeed (its deadline, set by
//     the detector: start + Seq_Timeout, last hit + Hit_Timeout, the SYN's
//     deadline) goes first: the oldest of each list is checked;
//  2. otherwise the least recently active source of probation goes.
//
// Probation always holds at least half the table when the table is full,
// so it is never empty and the protected half is only ever shrunk by
// demotion. What follows for a legitimate knocker:
//
//   - A flood of first hits at any rate (500k spoofed SYNs a second from
//     random sources) never evicts a knocker who made progress: first hits
//     do not promote, so the protected half is untouched.
//   - A knocker after their first hit survives at least MaxSources/2 new
//     sources: at 500k a second and the default 65536, about 65 ms to make
//     the second hit, whatever the table held before.
//   - A flood that makes progress (spoofed sources completing two steps of
//     a three-step sequence, senders with two hits each) evicts a knocker
//     only after MaxSources/2 of its sources made progress since the
//     knocker's last hit and then the sources ahead of the knocker in
//     probation went: the knocker goes only after every source less
//     recently active than it.
//
// A strict order by progress (fewest hits first) fails that last case: when
// every tracked source has two hits, a knocker after their first hit is the
// only one-hit source and the next spoofed source evicts them, and between
// each two hits of theirs one fresh spoofed sender does it again.
//
// There are no per-prefix quotas. A flood with sources random over all of
// IPv4 puts a handful in each /24, far below any quota that would not also
// lock out a busy NAT, so quotas would not stop it; the halves above do not
// depend on where the sources are.
//
// # Layout
//
// Keys are 16-byte addresses (with a port for tables keyed by address and
// port). Entries live in one slice, found through an open-addressing index
// of 64-bit words (a 32-bit hash tag and the entry's number), linearly
// probed and at most half full, with a hash keyed by a random seed so that
// a sender cannot choose addresses that collide. Neither holds a pointer,
// so the garbage collector does not scan them. Each entry may carry a
// fixed-size slab of E (a sequence's attempts, a sender's queued hits) in a
// second flat slice. All three are allocated for MaxSources up front, so
// nothing allocates after New. That costs an idle daemon little: at the
// sequence default of 65,536 sources the table is 6 MiB of heap but only
// 0.4 MiB more resident memory, since the kernel backs the pages only when
// an entry first touches them, and a full table is resident at 10 MiB
// against 14 MiB when it grew by doubling (the outgrown copies stay
// resident until the runtime returns them). And a flood that fills a
// growing table stalls the daemon on each doubling: single inserts of 2 to
// 30 ms were measured, against the knock-to-command latency's 2 ms.
//
// A packet's source is looked up once: Lookup's probe ends either at the
// source or at the empty slot where InsertAt puts it, eviction included.
package srctable

import (
	"encoding/binary"
	"iter"
	"math/bits"
	"math/rand/v2"
	"net/netip"
)

// Key identifies a source: an address, and a port for tables that need one.
// An IPv4 address and the IPv4-mapped IPv6 address with the same bytes are
// different keys.
type Key struct {
	addr [16]byte
	port uint16
	v4   bool
}

// AddrKey is the key of a.
func AddrKey(a netip.Addr) Key { return Key{addr: a.As16(), v4: a.Is4()} }

// AddrPortKey is the key of a and port.
func AddrPortKey(a netip.Addr, port uint16) Key {
	return Key{addr: a.As16(), port: port, v4: a.Is4()}
}

// Addr is the key's address.
func (k Key) Addr() netip.Addr {
	if a := netip.AddrFrom16(k.addr); !k.v4 {
		return a
	} else {
		return a.Unmap()
	}
}

// Port is the key's port (0 for an AddrKey).
func (k Key) Port() uint16 { return k.port }

// Ref names an entry while it is in the table; a deleted or evicted
// entry's Ref may be reused.
type Ref int32

// Eviction says what Insert had to do to make room.
type Eviction uint8

const (
	None    Eviction = iota // there was room
	Expired                 // a source whose deadline had passed went
	Live                    // a source that could still have succeeded went
)

const (
	free      = 0
	probation = 1
	protected = 2
	nilRef    = Ref(-1)
)

type entry[V any] struct {
	key        Key
	seg        uint8
	h          uint32 // hash(key), to find its index slot without hashing
	prev, next Ref
	last, dead int64
	val        V
}

type list struct {
	head, tail Ref // head: least recently active
	n          int
}

// Table maps sources to a V and a slab of E each. Not safe for concurrent
// use.
type Table[V, E any] struct {
	index   []uint64 // 0: empty; else hash tag<<32 | ref+1
	mask    uint64
	ents    []entry[V]
	slabs   []E
	slab    int
	free    Ref // list of free entries, through next
	max     int
	protMax int
	lists   [3]list // indexed by seg; lists[free] is unused
	live    int
	seed    [4]uint64
	// gen counts changes to index, so that a Spot knows whether its slot
	// is still the first empty one on its key's probe sequence.
	gen uint32
}

// Spot is what Lookup learned about a key it did not find: its hash and
// the first empty index slot on its probe sequence, where InsertAt puts
// it without hashing or probing again. A Spot stays usable however the
// table changes (InsertAt probes again only when it has), but the key
// must still be absent, and it is meant for the packet at hand: the
// count of changes it compares wraps after 2^32 of them.
type Spot struct {
	key  Key
	h    uint32
	slot uint32
	gen  uint32
}

// New makes a table for at most max sources (at least 1), each with a slab
// of slab E's, allocated at once.
func New[V, E any](maxSources, slab int) *Table[V, E] {
	maxSources = min(1<<30, max(maxSources, 1))
	t := &Table[V, E]{max: maxSources, protMax: maxSources / 2, slab: slab, free: nilRef}
	for i := range t.seed {
		t.seed[i] = rand.Uint64() | 1
	}
	for i := range t.lists {
		t.lists[i] = list{head: nilRef, tail: nilRef}
	}
	t.ents = make([]entry[V], 0, maxSources)
	t.slabs = make([]E, 0, maxSources*slab)
	size := 8
	for size < 2*maxSources {
		size <<= 1
	}
	t.index = make([]uint64, size)
	t.mask = uint64(size - 1)
	return t
}

// hash mixes the key with the table's seed (wyhash's multiply-fold).
func (t *Table[V, E]) hash(k *Key) uint32 {
	a := binary.LittleEndian.Uint64(k.addr[:8]) ^ t.seed[0]
	b := binary.LittleEndian.Uint64(k.addr[8:]) ^ t.seed[1]
	hi, lo := bits.Mul64(a, b)
	x := hi ^ lo ^ uint64(k.port)<<1
	if k.v4 {
		x ^= 1
	}
	hi, lo = bits.Mul64(x^t.seed[2], t.seed[3])
	return uint32((hi ^ lo) >> 32)
}

// probe walks k's probe sequence once: k's entry, or the first empty slot.
func (t *Table[V, E]) probe(k *Key, h uint32) (Ref, uint64, bool) {
	for i := uint64(h) & t.mask; ; i = (i + 1) & t.mask {
		s := t.index[i]
		if s == 0 {
			return nilRef, i, false
		}
		if uint32(s>>32) == h {
			if r := Ref(uint32(s) - 1); t.ents[r].key == *k {
				return r, i, true
			}
		}
	}
}

// Find returns k's entry.
func (t *Table[V, E]) Find(k Key) (Ref, bool) {
	r, _, ok := t.probe(&k, t.hash(&k))
	return r, ok
}

// Lookup returns k's entry or, when k is absent, the Spot where InsertAt
// can put it: for a caller that decides only later whether a new source
// is worth tracking, one probe either way.
func (t *Table[V, E]) Lookup(k Key) (Ref, Spot, bool) {
	h := t.hash(&k)
	r, i, ok := t.probe(&k, h)
	return r, Spot{key: k, h: h, slot: uint32(i), gen: t.gen}, ok
}

// FindOrInsert returns k's entry, found true, or inserts k as Insert does.
func (t *Table[V, E]) FindOrInsert(k Key, now, dead int64) (Ref, bool, Eviction) {
	r, s, ok := t.Lookup(k)
	if ok {
		return r, true, None
	}
	r, ev := t.InsertAt(s, now, dead)
	return r, false, ev
}

// Insert adds k, which must not be in the table, as InsertAt does.
func (t *Table[V, E]) Insert(k Key, now, dead int64) (Ref, Eviction) {
	_, s, _ := t.Lookup(k)
	return t.InsertAt(s, now, dead)
}

// InsertAt adds the key that Lookup did not find, as a source without
// progress, active at now and hopeless after dead (both in the caller's
// clock, e.g. UnixNano). When the table is full it first evicts a source
// as the package doc says. The new entry's V is zero; its slab holds
// garbage. Should the key have been inserted since Lookup, its entry is
// returned as it is.
func (t *Table[V, E]) InsertAt(s Spot, now, dead int64) (Ref, Eviction) {
	slot := uint64(s.slot)
	if s.gen != t.gen {
		r, i, ok := t.probe(&s.key, s.h)
		if ok {
			return r, None
		}
		slot = i
	}
	ev := None
	if t.live >= t.max {
		var hole uint64
		ev, hole = t.evict(now)
		// The eviction emptied one index slot (backward shifting moved
		// the others, never into an empty one): if it lies on the key's
		// probe sequence before slot, it is now the first empty one.
		home := uint64(s.h) & t.mask
		if (hole-home)&t.mask < (slot-home)&t.mask {
			slot = hole
		}
	}
	r := t.free
	if r != nilRef {
		t.free = t.ents[r].next
	} else {
		r = Ref(len(t.ents))
		t.ents = t.ents[:r+1]
		t.slabs = t.slabs[:int(r+1)*t.slab]
	}
	e := &t.ents[r]
	var zero V
	*e = entry[V]{key: s.key, h: s.h, last: now, dead: dead, val: zero}
	t.index[slot] = uint64(s.h)<<32 | uint64(r+1)
	t.gen++
	t.push(probation, r)
	t.live++
	return r, ev
}

// evict removes the source the policy picks, and says which kind it was
// and which index slot it left empty.
func (t *Table[V, E]) evict(now int64) (Eviction, uint64) {
	p, q := t.lists[probation].head, t.lists[protected].head
	switch {
	case p != nilRef && t.ents[p].dead <= now:
		return Expired, t.remove(p)
	case q != nilRef && t.ents[q].dead <= now:
		return Expired, t.remove(q)
	case p != nilRef:
		return Live, t.remove(p)
	default:
		return Live, t.remove(q)
	}
}

// Hit records activity of r at now: its new deadline, and whether it has
// made progress (two hits or more). A source without progress goes back to
// probation.
func (t *Table[V, E]) Hit(r Ref, now, dead int64, progress bool) {
	e := &t.ents[r]
	e.last, e.dead = now, dead
	seg := uint8(probation)
	if progress {
		seg = protected
	}
	if e.seg == seg && t.lists[seg].tail == r {
		return // already the most recent of its list: a new source's first hit
	}
	t.unlink(r)
	if !progress {
		t.push(probation, r)
		return
	}
	t.push(protected, r)
	if t.lists[protected].n > t.protMax {
		d := t.lists[protected].head
		t.unlink(d)
		t.push(probation, d)
	}
}

// SetDeadline changes r's deadline without counting it as activity (a
// sweep dropped some of its attempts).
func (t *Table[V, E]) SetDeadline(r Ref, dead int64) { t.ents[r].dead = dead }

// Delete removes r.
func (t *Table[V, E]) Delete(r Ref) { t.remove(r) }

// remove deletes r and returns the index slot that its deletion emptied.
func (t *Table[V, E]) remove(r Ref) uint64 {
	e := &t.ents[r]
	want := uint64(e.h)<<32 | uint64(r+1)
	i := uint64(e.h) & t.mask
	for t.index[i] != want {
		i = (i + 1) & t.mask
	}
	hole := t.unindex(i)
	t.unlink(r)
	e.seg = free
	e.next = t.free
	t.free = r
	t.live--
	return hole
}

// unindex empties index slot i and shifts back the entries after it that
// would no longer be found (linear probing's deletion without tombstones).
// It returns the one slot left empty: each shift fills the previous hole.
func (t *Table[V, E]) unindex(i uint64) uint64 {
	t.gen++
	for {
		t.index[i] = 0
		j := i
		for {
			j = (j + 1) & t.mask
			s := t.index[j]
			if s == 0 {
				return i
			}
			home := uint64(uint32(s>>32)) & t.mask
			// s stays if its home lies cyclically in (i, j].
			if i <= j && i < home && home <= j || i > j && (home > i || home <= j) {
				continue
			}
			t.index[i] = s
			i = j
			break
		}
	}
}

func (t *Table[V, E]) push(seg uint8, r Ref) {
	l, e := &t.lists[seg], &t.ents[r]
	e.seg, e.prev, e.next = seg, l.tail, nilRef
	if l.tail != nilRef {
		t.ents[l.tail].next = r
	} else {
		l.head = r
	}
	l.tail = r
	l.n++
}

func (t *Table[V, E]) unlink(r Ref) {
	e := &t.ents[r]
	l := &t.lists[e.seg]
	if e.prev != nilRef {
		t.ents[e.prev].next = e.next
	} else {
		l.head = e.next
	}
	if e.next != nilRef {
		t.ents[e.next].prev = e.prev
	} else {
		l.tail = e.prev
	}
	l.n--
}

// Val is r's value. The pointer is valid until the next Insert (which may
// grow the table) or until r is deleted.
func (t *Table[V, E]) Val(r Ref) *V { return &t.ents[r].val }

// Slab is r's slab, valid as Val's pointer is.
func (t *Table[V, E]) Slab(r Ref) []E {
	i := int(r) * t.slab
	return t.slabs[i : i+t.slab : i+t.slab]
}

// Key is r's key.
func (t *Table[V, E]) Key(r Ref) Key { return t.ents[r].key }

// Deadline is r's deadline, as last set.
func (t *Table[V, E]) Deadline(r Ref) int64 { return t.ents[r].dead }

// Len is the number of sources in the table.
func (t *Table[V, E]) Len() int { return t.live }

// Max is the table's bound.
func (t *Table[V, E]) Max() int { return t.max }

// All yields every entry. The loop may delete the entry it is given.
func (t *Table[V, E]) All() iter.Seq[Ref] {
	return func(yield func(Ref) bool) {
		for r := range t.ents {
			if t.ents[r].seg != free && !yield(Ref(r)) {
				return
			}
		}
	}
}

// Part yields the entries of the part-th of parts equal slices of the
// table (0 ≤ part < parts), so that a sweep can be spread over time: the
// parts, taken in turn, yield every entry that stayed in the table once.
// A whole sweep of a full table takes milliseconds (65,536 sources), and
// whoever runs it holds the detectors meanwhile, so a knock arriving then
// waits for it (issue 14); a part is a bounded slice of that. Entries
// inserted meanwhile may be yielded or not. The loop may delete the entry
// it is given.
func (t *Table[V, E]) Part(part, parts int) iter.Seq[Ref] {
	n := len(t.ents)
	from, to := n*part/parts, n*(part+1)/parts
	return func(yield func(Ref) bool) {
		for r := from; r < min(to, len(t.ents)); r++ {
			if t.ents[r].seg != free && !yield(Ref(r)) {
				return
			}
		}
	}
}
