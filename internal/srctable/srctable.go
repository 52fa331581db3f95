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
// second flat slice. The table grows by doubling as sources arrive, up to
// MaxSources, and never shrinks: after warm-up nothing allocates, and an
// idle daemon does not reserve a large MaxSources up front.
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
}

// New makes a table for at most max sources (at least 1), each with a slab
// of slab E's.
func New[V, E any](maxSources, slab int) *Table[V, E] {
	maxSources = min(1<<30, max(maxSources, 1))
	t := &Table[V, E]{max: maxSources, protMax: maxSources / 2, slab: slab, free: nilRef}
	for i := range t.seed {
		t.seed[i] = rand.Uint64() | 1
	}
	for i := range t.lists {
		t.lists[i] = list{head: nilRef, tail: nilRef}
	}
	t.reserve(min(maxSources, 1024))
	return t
}

// reserve makes room for n entries.
func (t *Table[V, E]) reserve(n int) {
	if n <= cap(t.ents) {
		return
	}
	ents := make([]entry[V], len(t.ents), n)
	copy(ents, t.ents)
	t.ents = ents
	slabs := make([]E, len(t.slabs), n*t.slab)
	copy(slabs, t.slabs)
	t.slabs = slabs
	size := 8
	for size < 2*n {
		size <<= 1
	}
	if size <= len(t.index) {
		return
	}
	t.index = make([]uint64, size)
	t.mask = uint64(size - 1)
	for r := range t.ents {
		if t.ents[r].seg != free {
			t.place(t.ents[r].h, Ref(r))
		}
	}
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

// place puts ref in the first empty index slot from the hash's home.
func (t *Table[V, E]) place(h uint32, r Ref) {
	i := uint64(h) & t.mask
	for t.index[i] != 0 {
		i = (i + 1) & t.mask
	}
	t.index[i] = uint64(h)<<32 | uint64(r+1)
}

// slot finds k: its index slot and entry, or ok false.
// Find returns k's entry.
func (t *Table[V, E]) Find(k Key) (Ref, bool) {
	h := t.hash(&k)
	for i := uint64(h) & t.mask; ; i = (i + 1) & t.mask {
		s := t.index[i]
		if s == 0 {
			return nilRef, false
		}
		if uint32(s>>32) == h {
			if r := Ref(uint32(s) - 1); t.ents[r].key == k {
				return r, true
			}
		}
	}
}

// Insert adds k, which must not be in the table, as a source without
// progress, active at now and hopeless after dead (both in the caller's
// clock, e.g. UnixNano). When the table is full it first evicts a source as
// the package doc says. The new entry's V is zero; its slab holds garbage.
func (t *Table[V, E]) Insert(k Key, now, dead int64) (Ref, Eviction) {
	ev := None
	if t.live >= t.max {
		ev = t.evict(now)
	}
	r := t.free
	if r != nilRef {
		t.free = t.ents[r].next
	} else {
		if len(t.ents) == cap(t.ents) {
			t.reserve(min(t.max, 2*cap(t.ents)))
		}
		r = Ref(len(t.ents))
		t.ents = t.ents[:r+1]
		t.slabs = t.slabs[:int(r+1)*t.slab]
	}
	e := &t.ents[r]
	var zero V
	*e = entry[V]{key: k, h: t.hash(&k), last: now, dead: dead, val: zero}
	t.place(e.h, r)
	t.push(probation, r)
	t.live++
	return r, ev
}

// evict removes the source the policy picks and says which kind it was.
func (t *Table[V, E]) evict(now int64) Eviction {
	p, q := t.lists[probation].head, t.lists[protected].head
	switch {
	case p != nilRef && t.ents[p].dead <= now:
		t.Delete(p)
		return Expired
	case q != nilRef && t.ents[q].dead <= now:
		t.Delete(q)
		return Expired
	case p != nilRef:
		t.Delete(p)
	default:
		t.Delete(q)
	}
	return Live
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
func (t *Table[V, E]) Delete(r Ref) {
	e := &t.ents[r]
	want := uint64(e.h)<<32 | uint64(r+1)
	i := uint64(e.h) & t.mask
	for t.index[i] != want {
		i = (i + 1) & t.mask
	}
	t.unindex(i)
	t.unlink(r)
	e.seg = free
	e.next = t.free
	t.free = r
	t.live--
}

// unindex empties index slot i and shifts back the entries after it that
// would no longer be found (linear probing's deletion without tombstones).
func (t *Table[V, E]) unindex(i uint64) {
	for {
		t.index[i] = 0
		j := i
		for {
			j = (j + 1) & t.mask
			s := t.index[j]
			if s == 0 {
				return
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
