package rotating

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Range is the ports Lo through Hi, both included.
type Range struct{ Lo, Hi uint16 }

// Ports is a set of ports as sorted, disjoint, non-adjacent ranges: the
// canonical form the derivation indexes (At) and String writes, so a
// client that accepts only plain ranges (the shell client) is given
// exactly the set the admin's exclusions leave.
type Ports struct{ r []Range }

// ParsePorts reads a comma-separated list of ports ("22"), ranges
// ("20000-40000") and exclusions ("!22", "!30000-30100"): the set is
// every port listed or in a listed range, minus every excluded one,
// whatever the order of the items.
func ParsePorts(s string) (Ports, error) {
	var incl, excl []Range
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		not := strings.HasPrefix(item, "!")
		if not {
			item = strings.TrimSpace(item[1:])
		}
		if item == "" {
			return Ports{}, errors.New("empty item in port list")
		}
		r, err := parseRange(item)
		if err != nil {
			return Ports{}, err
		}
		if not {
			excl = append(excl, r)
		} else {
			incl = append(incl, r)
		}
	}
	if len(incl) == 0 {
		return Ports{}, errors.New("no ports listed, only exclusions")
	}
	p := Ports{r: subtract(merge(incl), merge(excl))}
	if len(p.r) == 0 {
		return Ports{}, errors.New("the exclusions leave no port")
	}
	return p, nil
}

func parseRange(s string) (Range, error) {
	lo, hi, isRange := strings.Cut(s, "-")
	a, err := parsePort(lo)
	if err != nil {
		return Range{}, err
	}
	if !isRange {
		return Range{a, a}, nil
	}
	b, err := parsePort(hi)
	if err != nil {
		return Range{}, err
	}
	if a > b {
		return Range{}, fmt.Errorf("range %q runs backwards", s)
	}
	return Range{a, b}, nil
}

func parsePort(s string) (uint16, error) {
	s = strings.TrimSpace(s)
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("port %q is invalid (must be 1-65535)", s)
	}
	return uint16(n), nil
}

// merge sorts rs and joins overlapping and adjacent ranges.
func merge(rs []Range) []Range {
	rs = slices.Clone(rs)
	slices.SortFunc(rs, func(a, b Range) int { return int(a.Lo) - int(b.Lo) })
	var out []Range
	for _, r := range rs {
		if n := len(out); n > 0 && int(r.Lo) <= int(out[n-1].Hi)+1 {
			out[n-1].Hi = max(out[n-1].Hi, r.Hi)
			continue
		}
		out = append(out, r)
	}
	return out
}

// subtract removes the merged ranges ex from the merged ranges in.
func subtract(in, ex []Range) []Range {
	var out []Range
	for _, r := range in {
		lo := int(r.Lo)
		for _, e := range ex {
			if int(e.Hi) < lo || e.Lo > r.Hi {
				continue
			}
			if int(e.Lo) > lo {
				out = append(out, Range{uint16(lo), e.Lo - 1})
			}
			lo = int(e.Hi) + 1
		}
		if lo <= int(r.Hi) {
			out = append(out, Range{uint16(lo), r.Hi})
		}
	}
	return out
}

// Len is how many ports the set holds.
func (p Ports) Len() int {
	n := 0
	for _, r := range p.r {
		n += int(r.Hi) - int(r.Lo) + 1
	}
	return n
}

// At is the i-th port of the set in ascending order, 0 ≤ i < Len.
func (p Ports) At(i int) uint16 {
	for _, r := range p.r {
		size := int(r.Hi) - int(r.Lo) + 1
		if i < size {
			return r.Lo + uint16(i)
		}
		i -= size
	}
	panic(fmt.Sprintf("rotating: port index %d out of range", i))
}

// Ranges are the set's canonical ranges.
func (p Ports) Ranges() []Range { return slices.Clone(p.r) }

// List is every port of the set, ascending: what a capture filter and a
// dispatch index are built from.
func (p Ports) List() []uint16 {
	out := make([]uint16, 0, p.Len())
	for _, r := range p.r {
		for port := int(r.Lo); port <= int(r.Hi); port++ {
			out = append(out, uint16(port))
		}
	}
	return out
}

// Equal reports whether p and q are the same set.
func (p Ports) Equal(q Ports) bool { return slices.Equal(p.r, q.r) }

// String writes the canonical form, which ParsePorts reads back as the
// same set: ascending ranges and single ports, no exclusions.
func (p Ports) String() string {
	var b strings.Builder
	for i, r := range p.r {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(int(r.Lo)))
		if r.Hi != r.Lo {
			b.WriteByte('-')
			b.WriteString(strconv.Itoa(int(r.Hi)))
		}
	}
	return b.String()
}
