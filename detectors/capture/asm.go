package capture

import (
	"fmt"

	"golang.org/x/net/bpf"
)

// asm assembles classic BPF with symbolic forward jumps.
//
// Classic BPF conditional jumps skip at most 255 instructions, which a rule
// with a long port list easily exceeds. Rather than making every generator
// count instructions, a conditional jump names labels and resolve relaxes it:
// a target that is too far is reached through an unconditional jump (whose
// offset is 32 bits) placed right after the conditional one. Generators still
// keep hot lists compact (see emitSet) so relaxation is rare.
type asm struct {
	items  []item
	labels []int // label → index in items of its mark
}

type label int

// next is the label of whatever follows a conditional jump.
const next label = -1

type itemKind uint8

const (
	plain itemKind = iota
	cond
	jump
	mark
)

type item struct {
	kind itemKind
	ins  bpf.Instruction // plain
	test bpf.JumpTest    // cond
	val  uint32          // cond
	t, f label           // cond targets; jump target in t; mark's own label in t
	far  [2]bool         // cond: t, f reached through a trampoline
}

func (a *asm) newLabel() label {
	a.labels = append(a.labels, -1)
	return label(len(a.labels) - 1)
}

// mark places l at the current position.
func (a *asm) mark(l label) {
	a.labels[l] = len(a.items)
	a.items = append(a.items, item{kind: mark, t: l})
}

func (a *asm) emit(ins ...bpf.Instruction) {
	for _, in := range ins {
		a.items = append(a.items, item{kind: plain, ins: in})
	}
}

// jumpIf jumps to t if A <test> val holds, else to f.
func (a *asm) jumpIf(test bpf.JumpTest, val uint32, t, f label) {
	a.items = append(a.items, item{kind: cond, test: test, val: val, t: t, f: f})
}

// jump jumps unconditionally to l.
func (a *asm) jump(l label) {
	a.items = append(a.items, item{kind: jump, t: l})
}

func (it *item) size() int {
	switch it.kind {
	case mark:
		return 0
	case cond:
		n := 1
		for _, far := range it.far {
			if far {
				n++
			}
		}
		return n
	}
	return 1
}

// resolve lays the program out, relaxing far jumps until every conditional
// skip fits in 8 bits. Each round only adds trampolines, which only lengthens
// distances, so it converges.
func (a *asm) resolve() ([]bpf.Instruction, error) {
	for _, it := range a.items {
		var targets []label
		switch it.kind {
		case cond:
			targets = []label{it.t, it.f}
		case jump:
			targets = []label{it.t}
		}
		for _, l := range targets {
			if l != next && a.labels[l] < 0 {
				return nil, fmt.Errorf("bpf: label %d never placed", l)
			}
		}
	}
	pos := make([]int, len(a.items)+1)
	for {
		for i := range a.items {
			pos[i+1] = pos[i] + a.items[i].size()
		}
		changed := false
		for i := range a.items {
			it := &a.items[i]
			if it.kind != cond {
				continue
			}
			for k, l := range [2]label{it.t, it.f} {
				if l == next || it.far[k] {
					continue
				}
				if d := pos[a.labels[l]] - (pos[i] + 1); d > 255 {
					it.far[k], changed = true, true
				}
			}
		}
		if !changed {
			break
		}
	}
	target := func(l label) int {
		return pos[a.labels[l]]
	}
	out := make([]bpf.Instruction, 0, pos[len(a.items)])
	for i := range a.items {
		it := &a.items[i]
		switch it.kind {
		case plain:
			out = append(out, it.ins)
		case jump:
			d := target(it.t) - (pos[i] + 1)
			if d < 0 {
				return nil, fmt.Errorf("bpf: backward jump at %d", pos[i])
			}
			out = append(out, bpf.Jump{Skip: uint32(d)})
		case cond:
			base := pos[i] + 1
			var skip [2]uint8
			var tramps []bpf.Instruction
			for k, l := range [2]label{it.t, it.f} {
				var d int
				switch {
				case it.far[k]:
					d = len(tramps)
					tp := base + len(tramps)
					tramps = append(tramps, bpf.Jump{Skip: uint32(target(l) - (tp + 1))})
				case l == next: // past any trampolines
					d = pos[i+1] - base
				default:
					d = target(l) - base
				}
				if d < 0 || d > 255 {
					return nil, fmt.Errorf("bpf: jump of %d at %d", d, pos[i])
				}
				skip[k] = uint8(d)
			}
			out = append(out, bpf.JumpIf{Cond: it.test, Val: it.val, SkipTrue: skip[0], SkipFalse: skip[1]})
			out = append(out, tramps...)
		}
	}
	return out, nil
}
