package capture

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"golang.org/x/net/bpf"

	"github.com/doorward/doorward/detectors"
)

const (
	// snapLen is what an accepting filter returns: the whole packet, since
	// payload detectors need it and the ring truncates to its block size.
	snapLen = 262144
	// maxInsns is the kernel's BPF_MAXINSNS for socket filters.
	maxInsns = 4096
	// leafSize is how many values a set test compares linearly before it
	// splits into a binary search, trading per-packet work for size.
	leafSize = 16

	packetOutgoing = 4 // skb->pkt_type PACKET_OUTGOING
	ethPIPv4       = 0x0800
	ethPIPv6       = 0x86dd
	scratchProto   = 0 // M[0]: transport protocol number
	scratchFamily  = 1 // M[1]: 4 or 6
)

// ErrFilterTooLarge means the rules compile to more instructions than the
// kernel accepts. Open and SetFilter then install a coarser filter and rely
// on the exact check in userspace; Program and BuildFilter report it.
var ErrFilterTooLarge = errors.New("filter exceeds 4096 instructions")

// prologue runs before Program on a live socket. It is kept apart because it
// reads skb metadata through BPF extensions, which x/net/bpf's VM cannot
// evaluate, so tests run Program alone.
//
// It drops what the kernel hands a packet socket but libpcap users never
// see twice: packets this host sends (on lo every packet would otherwise
// appear as outgoing and again as incoming), and anything whose
// skb->protocol is not IP (ARP, or a QinQ frame whose inner tag the kernel
// left in place, which would not start with an IP header).
var prologue = []bpf.Instruction{
	bpf.LoadExtension{Num: bpf.ExtType},
	bpf.JumpIf{Cond: bpf.JumpEqual, Val: packetOutgoing, SkipTrue: 3},
	bpf.LoadExtension{Num: bpf.ExtProto},
	bpf.JumpIf{Cond: bpf.JumpEqual, Val: ethPIPv4, SkipTrue: 2},
	bpf.JumpIf{Cond: bpf.JumpEqual, Val: ethPIPv6, SkipTrue: 1},
	bpf.RetConstant{Val: 0},
}

// BuildFilter is the socket filter for rules on a SOCK_DGRAM packet socket,
// where every packet starts at its IP header: the prologue, then Program.
func BuildFilter(rules []detectors.Rule) ([]bpf.Instruction, error) {
	body, err := Program(rules)
	if err != nil {
		return nil, err
	}
	return append(slices.Clip(prologue), body...), nil
}

// Program is the filter for packets that start at the IP header. A packet
// is accepted when any rule matches, as the userspace matcher decides it:
// destination in Rule.Dst (if set), protocol, destination port, and for TCP
// flags&FlagMask == FlagWant. Non-first IPv4 fragments are rejected.
//
// IPv6 packets whose first next-header is an extension header (hop-by-hop,
// routing, fragment, destination options, authentication) are accepted
// without looking further: walking a chain in classic BPF needs a loop it
// does not have, such packets are rare, and the userspace decoder and
// matcher make the decision. ESP and unknown headers are rejected.
//
// No rules, or rules with no ports, give a filter that rejects everything.
func Program(rules []detectors.Rule) ([]bpf.Instruction, error) {
	rs, err := compile(rules)
	if err != nil {
		return nil, err
	}
	prog, err := program(rs)
	if err != nil {
		return nil, err
	}
	if len(prog)+len(prologue) > maxInsns {
		return nil, fmt.Errorf("%w: %d instructions", ErrFilterTooLarge, len(prog)+len(prologue))
	}
	return prog, nil
}

// rule is a Rule normalized for both the BPF generator and the matcher.
type rule struct {
	proto      detectors.Proto
	dst        []netip.Addr // sorted, no zones; empty: any destination
	ports      []uint16     // sorted, unique
	portRanges []valueRange
	mask, want detectors.TCPFlags
}

type valueRange struct{ lo, hi uint32 }

func (r *rule) has4() bool {
	return len(r.dst) == 0 || slices.ContainsFunc(r.dst, netip.Addr.Is4)
}

func (r *rule) has6() bool {
	return len(r.dst) == 0 || slices.ContainsFunc(r.dst, netip.Addr.Is6)
}

func compile(rules []detectors.Rule) ([]rule, error) {
	out := make([]rule, 0, len(rules))
	for i, r := range rules {
		if r.Proto != detectors.TCP && r.Proto != detectors.UDP {
			return nil, fmt.Errorf("rule %d: protocol %v is neither tcp nor udp", i, r.Proto)
		}
		if len(r.Ports) == 0 {
			continue
		}
		c := rule{proto: r.Proto}
		for _, a := range r.Dst {
			if !a.IsValid() {
				return nil, fmt.Errorf("rule %d: invalid destination address", i)
			}
			c.dst = append(c.dst, a.WithZone(""))
		}
		slices.SortFunc(c.dst, netip.Addr.Compare)
		c.dst = slices.Compact(c.dst)
		c.ports = slices.Compact(slices.Sorted(slices.Values(r.Ports)))
		vals := make([]uint32, len(c.ports))
		for j, p := range c.ports {
			vals[j] = uint32(p)
		}
		c.portRanges = ranges(vals)
		if r.Proto == detectors.TCP && r.FlagMask&0x3f != 0 {
			c.mask, c.want = r.FlagMask&0x3f, r.FlagWant
		}
		out = append(out, c)
	}
	return out, nil
}

// ranges merges sorted unique values into runs of consecutive values.
func ranges(vals []uint32) []valueRange {
	var rs []valueRange
	for _, v := range vals {
		if n := len(rs); n > 0 && rs[n-1].hi+1 == v {
			rs[n-1].hi = v
			continue
		}
		rs = append(rs, valueRange{v, v})
	}
	return rs
}

func program(rs []rule) ([]bpf.Instruction, error) {
	want4 := slices.ContainsFunc(rs, func(r rule) bool { return r.has4() })
	want6 := slices.ContainsFunc(rs, func(r rule) bool { return r.has6() })
	if !want4 && !want6 {
		return []bpf.Instruction{bpf.RetConstant{Val: 0}}, nil
	}
	var a asm
	reject, v4, v6, l4v6, ext, rulesL := a.newLabel(), a.newLabel(), a.newLabel(), a.newLabel(), a.newLabel(), a.newLabel()

	a.emit(bpf.LoadAbsolute{Off: 0, Size: 1}, bpf.ALUOpConstant{Op: bpf.ALUOpShiftRight, Val: 4})
	if want4 {
		a.jumpIf(bpf.JumpEqual, 4, v4, next)
	}
	if want6 {
		a.jumpIf(bpf.JumpEqual, 6, v6, next)
	}
	a.jump(reject)

	if want4 {
		a.mark(v4)
		a.emit(bpf.LoadAbsolute{Off: 6, Size: 2})
		a.jumpIf(bpf.JumpBitsSet, 0x1fff, reject, next) // not the first fragment: no ports
		a.emit(bpf.LoadMemShift{Off: 0}, bpf.TXA{})     // X = IHL*4
		a.jumpIf(bpf.JumpLessThan, 20, reject, next)
		a.emit(
			bpf.LoadAbsolute{Off: 9, Size: 1}, bpf.StoreScratch{Src: bpf.RegA, N: scratchProto},
			bpf.LoadConstant{Dst: bpf.RegA, Val: 4}, bpf.StoreScratch{Src: bpf.RegA, N: scratchFamily},
		)
		a.jump(rulesL)
	}
	if want6 {
		a.mark(v6)
		a.emit(bpf.LoadAbsolute{Off: 6, Size: 1})
		a.jumpIf(bpf.JumpEqual, uint32(detectors.TCP), l4v6, next)
		a.jumpIf(bpf.JumpEqual, uint32(detectors.UDP), l4v6, next)
		for _, h := range []uint32{0, 43, 44, 60, 51} {
			a.jumpIf(bpf.JumpEqual, h, ext, next)
		}
		a.jump(reject)
		a.mark(ext)
		a.emit(bpf.RetConstant{Val: snapLen})
		a.mark(l4v6)
		a.emit(
			bpf.StoreScratch{Src: bpf.RegA, N: scratchProto},
			bpf.LoadConstant{Dst: bpf.RegA, Val: 6}, bpf.StoreScratch{Src: bpf.RegA, N: scratchFamily},
			bpf.LoadConstant{Dst: bpf.RegX, Val: 40},
		)
	}

	// From here X is the transport header offset and M[] holds the
	// protocol and family, so one copy of each rule serves both families.
	a.mark(rulesL)
	for i := range rs {
		a.rule(&rs[i])
	}
	a.mark(reject)
	a.emit(bpf.RetConstant{Val: 0})
	return a.resolve()
}

func (a *asm) rule(r *rule) {
	end := a.newLabel()
	a.emit(bpf.LoadScratch{Dst: bpf.RegA, N: scratchProto})
	a.jumpIf(bpf.JumpEqual, uint32(r.proto), next, end)

	if len(r.dst) > 0 {
		var dst4 []uint32
		var dst6 []netip.Addr
		for _, d := range r.dst {
			if d.Is4() {
				b := d.As4()
				dst4 = append(dst4, binary.BigEndian.Uint32(b[:]))
			} else {
				dst6 = append(dst6, d)
			}
		}
		dstOK, d6 := a.newLabel(), a.newLabel()
		a.emit(bpf.LoadScratch{Dst: bpf.RegA, N: scratchFamily})
		switch {
		case len(dst4) > 0 && len(dst6) > 0:
			a.jumpIf(bpf.JumpEqual, 4, next, d6)
		case len(dst4) > 0:
			a.jumpIf(bpf.JumpEqual, 4, next, end)
		default:
			a.jumpIf(bpf.JumpEqual, 6, d6, end)
		}
		if len(dst4) > 0 {
			a.emit(bpf.LoadAbsolute{Off: 16, Size: 4})
			a.set(ranges(dst4), dstOK, end, true)
		}
		a.mark(d6)
		for _, d := range dst6 {
			b := d.As16()
			miss := a.newLabel()
			for w := range 4 {
				a.emit(bpf.LoadAbsolute{Off: uint32(24 + 4*w), Size: 4})
				hit := next
				if w == 3 {
					hit = dstOK
				}
				a.jumpIf(bpf.JumpEqual, binary.BigEndian.Uint32(b[4*w:]), hit, miss)
			}
			a.mark(miss)
		}
		a.jump(end)
		a.mark(dstOK)
	}

	portOK := a.newLabel()
	a.emit(bpf.LoadIndirect{Off: 2, Size: 2})
	a.set(r.portRanges, portOK, end, true)
	a.mark(portOK)
	if r.mask != 0 {
		a.emit(bpf.LoadIndirect{Off: 13, Size: 1}, bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: uint32(r.mask)})
		a.jumpIf(bpf.JumpEqual, uint32(r.want), next, end)
	}
	a.emit(bpf.RetConstant{Val: snapLen})
	a.mark(end)
}

// set jumps to hit if A is in one of the sorted ranges rs, else to miss.
// Beyond leafSize ranges it becomes a binary search, so a rule with
// thousands of ports costs about a dozen comparisons per packet. Leaves of
// the search jump to a local island rather than to hit directly, so only the
// few search nodes near the root ever need a trampoline.
func (a *asm) set(rs []valueRange, hit, miss label, root bool) {
	if len(rs) > leafSize {
		mid := len(rs) / 2
		right := a.newLabel()
		a.jumpIf(bpf.JumpGreaterOrEqual, rs[mid].lo, right, next)
		a.set(rs[:mid], hit, miss, false)
		a.mark(right)
		a.set(rs[mid:], hit, miss, false)
		return
	}
	in, out := hit, a.newLabel()
	if !root {
		in = a.newLabel()
	}
	for _, r := range rs {
		if r.lo == r.hi {
			a.jumpIf(bpf.JumpEqual, r.lo, in, next)
			continue
		}
		// Ranges are ascending: below this one's low end is below all the
		// rest too.
		above := a.newLabel()
		a.jumpIf(bpf.JumpGreaterThan, r.hi, above, next)
		a.jumpIf(bpf.JumpGreaterOrEqual, r.lo, in, out)
		a.mark(above)
	}
	a.mark(out)
	a.jump(miss)
	if !root {
		a.mark(in)
		a.jump(hit)
	}
}

// matcher is the exact userspace version of Program. The kernel filter is
// only an optimization: packets queued before the filter was attached or
// swapped, and IPv6 packets with extension headers, reach userspace too, and
// the matcher is what keeps the Source's output exact.
type matcher struct{ rules []rule }

func newMatcher(rules []detectors.Rule) (*matcher, error) {
	rs, err := compile(rules)
	if err != nil {
		return nil, err
	}
	return &matcher{rs}, nil
}

// match runs for every packet the kernel accepted, a flood's included, so
// it checks the cheap fields first and the destination last.
func (m *matcher) match(p *detectors.Packet) bool {
	for i := range m.rules {
		r := &m.rules[i]
		if p.Proto != r.proto || p.Flags&r.mask != r.want {
			continue
		}
		if _, ok := slices.BinarySearch(r.ports, p.DstPort); !ok {
			continue
		}
		if len(r.dst) > 0 && !hasAddr(r.dst, p.Dst) {
			continue
		}
		return true
	}
	return false
}

// hasAddr reports whether the sorted addrs hold a. A host has a few
// addresses, for which comparing each with == (two words and a handle) is
// cheaper than a binary search through netip.Addr.Compare; both ask for
// the same address and zone.
func hasAddr(addrs []netip.Addr, a netip.Addr) bool {
	if len(addrs) > 8 {
		_, ok := slices.BinarySearchFunc(addrs, a, netip.Addr.Compare)
		return ok
	}
	for _, x := range addrs {
		if x == a {
			return true
		}
	}
	return false
}

// coarse is the fallback when the exact program is too large: every packet
// of the protocols the rules use, with the matcher doing the real work.
func coarse(rules []detectors.Rule) ([]bpf.Instruction, error) {
	var rs []rule
	for _, p := range []detectors.Proto{detectors.TCP, detectors.UDP} {
		if slices.ContainsFunc(rules, func(r detectors.Rule) bool { return r.Proto == p && len(r.Ports) > 0 }) {
			rs = append(rs, rule{proto: p, portRanges: []valueRange{{0, 0xffff}}})
		}
	}
	body, err := program(rs)
	if err != nil {
		return nil, err
	}
	return append(slices.Clip(prologue), body...), nil
}
