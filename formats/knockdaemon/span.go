package knockdaemon

import (
	"errors"
	"fmt"
	"math/bits"
	"slices"
	"strconv"
	"strings"
)

// MaxSpan is the largest span: N = log2(size) must stay below 16 (spec §6).
const MaxSpan = 1 << 15

// Span is an ordered list of 2^N distinct ports. A knock hit on the i-th
// port of the span stands for the N-bit value i. Ranges and single ports
// are concatenated in the order written, so "1024-5000,6000-25000" puts
// 6000 at index 3977.
type Span struct {
	ranges []portRange // in config order; base is the index of lo
	sorted []portRange // by lo, for Index
	size   int
	bits   int
}

type portRange struct {
	lo, hi uint16
	base   int
}

// Tail says how the last, short group of bits of a knock becomes a port
// (spec §6, [chosen] point 5). Only the last port of a knock depends on it.
type Tail uint8

const (
	// TailAuto encodes as TailPad and decodes as TailPad, then TailRaw.
	TailAuto Tail = iota
	// TailPad (reading A) pads the k < N bits with zeros on the right:
	// index = bits << (N-k).
	TailPad
	// TailRaw (reading B) uses the k bits as the index unchanged.
	TailRaw
)

// ParseTail reads "auto", "pad" or "raw".
func ParseTail(s string) (Tail, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "auto":
		return TailAuto, nil
	case "pad":
		return TailPad, nil
	case "raw":
		return TailRaw, nil
	}
	return 0, fmt.Errorf("%q is not auto, pad or raw", s)
}

func (t Tail) String() string {
	switch t {
	case TailPad:
		return "pad"
	case TailRaw:
		return "raw"
	}
	return "auto"
}

// ParseSpan reads knockdaemon's portspan: comma-separated ports and
// inclusive ranges "lo-hi", blanks allowed around each. The ports must be
// distinct, in 1..65535, and number a power of two from 2 to MaxSpan; a
// repeated port would make a knock ambiguous, so it is an error.
func ParseSpan(s string) (Span, error) {
	var sp Span
	if strings.TrimSpace(s) == "" {
		return sp, errors.New("empty port span")
	}
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			return Span{}, errors.New("empty element in port span")
		}
		loS, hiS, isRange := strings.Cut(item, "-")
		lo, err := parsePort(loS)
		if err != nil {
			return Span{}, err
		}
		hi := lo
		if isRange {
			if hi, err = parsePort(hiS); err != nil {
				return Span{}, err
			}
			if hi < lo {
				return Span{}, fmt.Errorf("range %q runs backwards", item)
			}
		}
		if sp.size+int(hi-lo)+1 > MaxSpan {
			return Span{}, fmt.Errorf("port span has more than %d ports", MaxSpan)
		}
		if n := len(sp.ranges); n > 0 && sp.ranges[n-1].hi < 65535 && sp.ranges[n-1].hi+1 == lo {
			sp.ranges[n-1].hi = hi // "1,2,3" is one range: same indexes, faster lookups
		} else {
			sp.ranges = append(sp.ranges, portRange{lo: lo, hi: hi, base: sp.size})
		}
		sp.size += int(hi-lo) + 1
	}
	if sp.size < 2 || sp.size&(sp.size-1) != 0 {
		return Span{}, fmt.Errorf("port span has %d ports, want a power of two from 2 to %d", sp.size, MaxSpan)
	}
	sp.bits = bits.TrailingZeros(uint(sp.size))
	sp.sorted = slices.Clone(sp.ranges)
	slices.SortFunc(sp.sorted, func(a, b portRange) int { return int(a.lo) - int(b.lo) })
	for i := 1; i < len(sp.sorted); i++ {
		if prev, r := sp.sorted[i-1], sp.sorted[i]; r.lo <= prev.hi {
			return Span{}, fmt.Errorf("port %d appears twice in the port span", r.lo)
		}
	}
	return sp, nil
}

func parsePort(s string) (uint16, error) {
	s = strings.TrimSpace(s)
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("port %q is not a number from 1 to 65535", s)
	}
	return uint16(n), nil
}

// Size is the number of ports, 2^Bits.
func (s Span) Size() int { return s.size }

// Bits is N, the bits each hit carries.
func (s Span) Bits() int { return s.bits }

// IsZero reports whether s is the zero Span (not parsed).
func (s Span) IsZero() bool { return s.size == 0 }

// Port is the port at index i (0 <= i < Size).
func (s Span) Port(i int) uint16 {
	for _, r := range s.ranges {
		if i <= r.base+int(r.hi-r.lo) {
			return r.lo + uint16(i-r.base)
		}
	}
	panic("portspan: index out of range")
}

// Index is the index of port, if it is in the span.
func (s Span) Index(port uint16) (int, bool) {
	// The last range starting at or below port is the only candidate.
	i, found := slices.BinarySearchFunc(s.sorted, port, func(r portRange, p uint16) int { return int(r.lo) - int(p) })
	if !found {
		i--
	}
	if i < 0 || port > s.sorted[i].hi {
		return 0, false
	}
	r := s.sorted[i]
	return r.base + int(port-r.lo), true
}

// Ports lists the span in index order.
func (s Span) Ports() []uint16 {
	out := make([]uint16, 0, s.size)
	for _, r := range s.ranges {
		for p := int(r.lo); p <= int(r.hi); p++ {
			out = append(out, uint16(p))
		}
	}
	return out
}

// String is the canonical portspan syntax.
func (s Span) String() string {
	var b strings.Builder
	for i, r := range s.ranges {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(int(r.lo)))
		if r.hi != r.lo {
			b.WriteByte('-')
			b.WriteString(strconv.Itoa(int(r.hi)))
		}
	}
	return b.String()
}

// Hits is how many ports spell n bytes: ceil(8n/N).
func (s Span) Hits(n int) int { return (8*n + s.bits - 1) / s.bits }

// Encode appends to dst the ports spelling b: the bit string of b, MSB of
// byte 0 first, cut into groups of N bits, each group read big-endian as an
// index into the span. tail decides the last, short group (TailAuto is
// TailPad).
func (s Span) Encode(dst []uint16, b []byte, tail Tail) []uint16 {
	n := s.bits
	total := 8 * len(b)
	for pos := 0; pos < total; pos += n {
		idx := readBits(b, pos, n) // zero-filled past the end: reading A
		if k := total - pos; k < n && tail == TailRaw {
			idx >>= n - k
		}
		dst = append(dst, s.Port(idx))
	}
	return dst
}

// Decode is Encode's inverse for a knock of n bytes: it appends the bytes
// spelled by ports to dst. It fails when a port is outside the span, the
// number of ports is not Hits(n), or the last port has bits set where tail
// says there are none (TailAuto is TailPad here: Codec tries both).
func (s Span) Decode(dst []byte, ports []uint16, n int, tail Tail) ([]byte, bool) {
	if len(ports) != s.Hits(n) || n == 0 {
		return dst, false
	}
	start := len(dst)
	// Up to 64 hits the indexes live on the stack.
	var idx [64]uint16
	buf := idx[:0]
	if len(ports) > len(idx) {
		buf = make([]uint16, 0, len(ports))
	}
	for _, p := range ports {
		i, ok := s.Index(p)
		if !ok {
			return dst[:start], false
		}
		buf = append(buf, uint16(i))
	}
	return s.DecodeIndexes(dst, buf, n, tail)
}

// DecodeIndexes is Decode for hits already turned into span indexes (a
// detector does that once per hit, not once per attempt).
func (s Span) DecodeIndexes(dst []byte, idx []uint16, n int, tail Tail) ([]byte, bool) {
	if len(idx) != s.Hits(n) || n == 0 {
		return dst, false
	}
	start := len(dst)
	var acc uint32 // pending bits, right-aligned
	var have int
	last := len(idx) - 1
	for i, x := range idx {
		v := int(x)
		if v >= s.size {
			return dst[:start], false
		}
		w := s.bits
		if i == last {
			k := 8*n - last*s.bits // bits the last group carries, 1..N
			if tail == TailRaw {
				if v>>k != 0 {
					return dst[:start], false
				}
			} else {
				if v&(1<<(s.bits-k)-1) != 0 {
					return dst[:start], false
				}
				v >>= s.bits - k
			}
			w = k
		}
		acc = acc<<w | uint32(v)
		have += w
		for have >= 8 {
			have -= 8
			dst = append(dst, byte(acc>>have))
		}
		acc &= 1<<have - 1
	}
	return dst, true
}

// readBits returns the n bits of b starting at bit pos (MSB of b[0] is bit
// 0), big-endian, with zeros past the end of b.
func readBits(b []byte, pos, n int) int {
	v := 0
	for i := range n {
		bit := pos + i
		v <<= 1
		if byteI := bit / 8; byteI < len(b) {
			v |= int(b[byteI]>>(7-bit%8)) & 1
		}
	}
	return v
}
