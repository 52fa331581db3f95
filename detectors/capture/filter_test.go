package capture

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"

	"golang.org/x/net/bpf"

	"github.com/doorward/doorward/detectors"
	"github.com/doorward/doorward/detectors/decode"
	"github.com/doorward/doorward/detectors/pcaptest"
)

var (
	client4 = netip.MustParseAddr("192.0.2.7")
	server4 = netip.MustParseAddr("198.51.100.1")
	other4  = netip.MustParseAddr("198.51.100.2")
	client6 = netip.MustParseAddr("2001:db8::7")
	server6 = netip.MustParseAddr("2001:db8::1")
	other6  = netip.MustParseAddr("2001:db8::2")
)

func pkt(src, dst netip.Addr, proto detectors.Proto, port uint16, flags detectors.TCPFlags) []byte {
	return pcaptest.EncodeIP(pcaptest.Frame{
		Src: netip.AddrPortFrom(src, 40000), Dst: netip.AddrPortFrom(dst, port),
		Proto: proto, Flags: flags, Payload: []byte("p"),
	})
}

func vm(t testing.TB, prog []bpf.Instruction) *bpf.VM {
	t.Helper()
	v, err := bpf.NewVM(prog)
	if err != nil {
		t.Fatalf("NewVM: %v", err)
	}
	return v
}

func accepts(t testing.TB, v *bpf.VM, data []byte) bool {
	t.Helper()
	n, err := v.Run(data)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return n > 0
}

func mod(b []byte, f func([]byte)) []byte {
	b = append([]byte(nil), b...)
	f(b)
	return b
}

// withHopByHop puts an empty hop-by-hop header in front of the transport
// header of a bare IPv6 packet.
func withHopByHop(ip []byte, port uint16) []byte {
	out := append([]byte(nil), ip[:40]...)
	out = append(out, ip[6], 0, 1, 4, 0, 0, 0, 0)
	out = append(out, ip[40:]...)
	out[6] = 0
	binary.BigEndian.PutUint16(out[4:], uint16(len(out)-40))
	return out
}

func TestProgram(t *testing.T) {
	knock := []detectors.Rule{{Proto: detectors.TCP, Ports: []uint16{7000, 8000, 9000, 8000}, FlagMask: detectors.SYN | detectors.ACK, FlagWant: detectors.SYN}}
	udp := []detectors.Rule{{Proto: detectors.UDP, Ports: []uint16{53000}}}
	dst := []detectors.Rule{
		{Proto: detectors.TCP, Ports: []uint16{7000}, Dst: []netip.Addr{server4, server6}},
		{Proto: detectors.UDP, Ports: []uint16{7001}, Dst: []netip.Addr{netip.MustParseAddr("fe80::1%eth0")}},
	}
	only4 := []detectors.Rule{{Proto: detectors.TCP, Ports: []uint16{7000}, Dst: []netip.Addr{server4}}}
	syn4 := pkt(client4, server4, detectors.TCP, 7000, detectors.SYN)
	syn6 := pkt(client6, server6, detectors.TCP, 9000, detectors.SYN)
	tests := []struct {
		name  string
		rules []detectors.Rule
		data  []byte
		want  bool
	}{
		{"v4 syn right port", knock, syn4, true},
		{"v4 syn duplicated port", knock, pkt(client4, server4, detectors.TCP, 8000, detectors.SYN), true},
		{"v4 syn wrong port", knock, pkt(client4, server4, detectors.TCP, 7001, detectors.SYN), false},
		{"v4 syn+ack", knock, pkt(client4, server4, detectors.TCP, 7000, detectors.SYN|detectors.ACK), false},
		{"v4 syn+psh matches mask", knock, pkt(client4, server4, detectors.TCP, 7000, detectors.SYN|detectors.PSH), true},
		{"v4 syn with ECE", knock, mod(syn4, func(b []byte) { b[33] |= 0x40 }), true},
		{"v4 rst", knock, pkt(client4, server4, detectors.TCP, 7000, detectors.RST), false},
		{"v4 udp to tcp rule", knock, pkt(client4, server4, detectors.UDP, 7000, 0), false},
		{"v6 syn right port", knock, syn6, true},
		{"v6 syn+ack", knock, pkt(client6, server6, detectors.TCP, 9000, detectors.SYN|detectors.ACK), false},
		{"v6 udp to tcp rule", knock, pkt(client6, server6, detectors.UDP, 9000, 0), false},
		{"v4 udp", udp, pkt(client4, server4, detectors.UDP, 53000, 0), true},
		{"v6 udp", udp, pkt(client6, server6, detectors.UDP, 53000, 0), true},
		{"v4 tcp to udp rule", udp, pkt(client4, server4, detectors.TCP, 53000, detectors.SYN), false},
		{"v4 icmp", udp, mod(pkt(client4, server4, detectors.UDP, 53000, 0), func(b []byte) { b[9] = 1 }), false},
		{"dst v4 match", dst, syn4, true},
		{"dst v4 other", dst, pkt(client4, other4, detectors.TCP, 7000, detectors.SYN), false},
		{"dst v6 match", dst, pkt(client6, server6, detectors.TCP, 7000, detectors.SYN), true},
		{"dst v6 other", dst, pkt(client6, other6, detectors.TCP, 7000, detectors.SYN), false},
		{"dst v6 differs in last word", dst, pkt(client6, netip.MustParseAddr("2001:db8::1:1"), detectors.TCP, 7000, detectors.SYN), false},
		{"dst zone stripped", dst, pkt(netip.MustParseAddr("fe80::7"), netip.MustParseAddr("fe80::1"), detectors.UDP, 7001, 0), true},
		{"dst v4-only rule, v6 packet", only4, pkt(client6, server6, detectors.TCP, 7000, detectors.SYN), false},
		{"dst v4-only rule, v6 ext header", only4, withHopByHop(pkt(client6, server6, detectors.TCP, 7000, detectors.SYN), 7000), false},
		{"v4 first fragment", knock, mod(syn4, func(b []byte) { b[6] = 0x20 }), true},
		{"v4 non-first fragment", knock, mod(syn4, func(b []byte) { b[7] = 0x01 }), false},
		{"v4 options", knock, func() []byte {
			out := append(append(append([]byte(nil), syn4[:20]...), 1, 1, 1, 0), syn4[20:]...)
			out[0] = 0x46
			binary.BigEndian.PutUint16(out[2:], uint16(len(out)))
			return out
		}(), true},
		{"v4 ihl < 5", knock, mod(syn4, func(b []byte) { b[0] = 0x44 }), false},
		{"v6 hop-by-hop goes to userspace", knock, withHopByHop(pkt(client6, server6, detectors.TCP, 1, detectors.RST), 1), true},
		{"v6 esp", knock, mod(syn6, func(b []byte) { b[6] = 50 }), false},
		{"v6 no next header", knock, mod(syn6, func(b []byte) { b[6] = 59 }), false},
		{"version 5", knock, mod(syn4, func(b []byte) { b[0] = 0x55 }), false},
		{"empty packet", knock, nil, false},
		{"no rules", nil, syn4, false},
		{"rule without ports", []detectors.Rule{{Proto: detectors.TCP}}, syn4, false},
		{"flag want without mask", []detectors.Rule{{Proto: detectors.TCP, Ports: []uint16{7000}, FlagWant: detectors.FIN}}, syn4, true},
		{"port range", []detectors.Rule{{Proto: detectors.TCP, Ports: []uint16{6998, 6999, 7000, 7001}}}, syn4, true},
		{"port range miss", []detectors.Rule{{Proto: detectors.TCP, Ports: []uint16{7001, 7002, 7003}}}, syn4, false},
		{"two rules, second matches", append(udp, knock...), syn4, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prog, err := Program(tt.rules)
			if err != nil {
				t.Fatal(err)
			}
			if got := accepts(t, vm(t, prog), tt.data); got != tt.want {
				t.Errorf("accept = %v, want %v\n%s", got, tt.want, dump(prog))
			}
			// The matcher must agree wherever the filter has the last word.
			m, err := newMatcher(tt.rules)
			if err != nil {
				t.Fatal(err)
			}
			var p detectors.Packet
			userspace := tt.name == "v6 hop-by-hop goes to userspace" // the one case the filter defers
			if got := decode.Decode(decode.Raw, tt.data, &p) && m.match(&p); got != tt.want && !userspace {
				t.Errorf("matcher = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestProgramTruncated cuts accepted packets before the last byte the
// filter reads: the kernel (and the VM) reject a load past the end.
func TestProgramTruncated(t *testing.T) {
	rules := []detectors.Rule{{Proto: detectors.TCP, Ports: []uint16{7000}, FlagMask: detectors.SYN, FlagWant: detectors.SYN, Dst: []netip.Addr{server4, server6}}}
	v := vm(t, mustProgram(t, rules))
	for _, full := range [][]byte{
		pkt(client4, server4, detectors.TCP, 7000, detectors.SYN),
		pkt(client6, server6, detectors.TCP, 7000, detectors.SYN),
	} {
		need := 20 + 14
		if full[0]>>4 == 6 {
			need = 40 + 14
		}
		for n := range need {
			if accepts(t, v, full[:n]) {
				t.Errorf("v%d packet cut at %d accepted", full[0]>>4, n)
			}
		}
		if !accepts(t, v, full[:need]) {
			t.Errorf("v%d packet with whole TCP flags byte rejected", full[0]>>4)
		}
	}
}

func srcFor(dst netip.Addr) netip.Addr {
	if dst.Is4() {
		return client4
	}
	return client6
}

func mustProgram(t testing.TB, rules []detectors.Rule) []bpf.Instruction {
	t.Helper()
	prog, err := Program(rules)
	if err != nil {
		t.Fatal(err)
	}
	return prog
}

func TestProgramLongPortList(t *testing.T) {
	ports := make([]uint16, 2000)
	for i := range ports {
		ports[i] = uint16(1000 + 3*i) // no two adjacent: no ranges to merge
	}
	rand.Shuffle(len(ports), func(i, j int) { ports[i], ports[j] = ports[j], ports[i] })
	rules := []detectors.Rule{
		{Proto: detectors.UDP, Ports: []uint16{5}},
		{Proto: detectors.TCP, Ports: ports, FlagMask: detectors.SYN | detectors.ACK, FlagWant: detectors.SYN},
		{Proto: detectors.UDP, Ports: []uint16{6}},
	}
	prog, err := BuildFilter(rules)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bpf.Assemble(prog); err != nil {
		t.Fatalf("Assemble: %v", err)
	}
	t.Logf("%d ports: %d instructions", len(ports), len(prog))
	v := vm(t, prog[len(prologue):])
	for p := uint16(990); p < 1000+3*2000+10; p++ {
		want := p >= 1000 && (p-1000)%3 == 0 && p < 1000+3*2000
		for _, dst := range []netip.Addr{server4, server6} {
			if got := accepts(t, v, pkt(srcFor(dst), dst, detectors.TCP, p, detectors.SYN)); got != want {
				t.Fatalf("port %d to %v: accept = %v, want %v", p, dst, got, want)
			}
		}
	}
	if !accepts(t, v, pkt(client4, server4, detectors.UDP, 6, 0)) {
		t.Error("rule after the long one unreachable")
	}
	if accepts(t, v, pkt(client4, server4, detectors.TCP, 1000, detectors.SYN|detectors.ACK)) {
		t.Error("flags not checked after a long port list")
	}
}

func TestProgramManyAddresses(t *testing.T) {
	var dst []netip.Addr
	a4, a6 := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("fd00::1")
	for range 300 {
		dst = append(dst, a4, a6)
		a4, a6 = a4.Next().Next(), a6.Next().Next()
	}
	rules := []detectors.Rule{{Proto: detectors.TCP, Ports: []uint16{22}, Dst: dst}}
	v := vm(t, mustProgram(t, rules))
	for i, d := range dst {
		if !accepts(t, v, pkt(srcFor(d), d, detectors.TCP, 22, 0)) {
			t.Fatalf("address %d (%v) rejected", i, d)
		}
		if accepts(t, v, pkt(srcFor(d), d.Next(), detectors.TCP, 22, 0)) {
			t.Fatalf("address %v accepted", d.Next())
		}
	}
}

func TestProgramTooLarge(t *testing.T) {
	var rules []detectors.Rule
	for r := range 10 {
		ports := make([]uint16, 1000)
		for i := range ports {
			ports[i] = uint16(r + 20*i)
		}
		rules = append(rules, detectors.Rule{Proto: detectors.UDP, Ports: ports})
	}
	if _, err := Program(rules); !errors.Is(err, ErrFilterTooLarge) {
		t.Fatalf("Program error = %v, want ErrFilterTooLarge", err)
	}
	m, raw, err := buildFilter(rules)
	if err != nil {
		t.Fatalf("buildFilter: %v", err)
	}
	prog, err := coarse(rules)
	if err != nil {
		t.Fatal(err)
	}
	if len(raw) != len(prog) {
		t.Errorf("buildFilter did not fall back to the coarse filter")
	}
	v := vm(t, prog[len(prologue):])
	for _, tc := range []struct {
		data       []byte
		bpf, match bool
	}{
		{pkt(client4, server4, detectors.UDP, 20, 0), true, true},
		{pkt(client4, server4, detectors.UDP, 30, 0), true, false},
		{pkt(client4, server4, detectors.TCP, 20, 0), false, false},
	} {
		var p detectors.Packet
		decode.Decode(decode.Raw, tc.data, &p)
		if got := accepts(t, v, tc.data); got != tc.bpf {
			t.Errorf("coarse filter on port %d: %v, want %v", p.DstPort, got, tc.bpf)
		}
		if got := m.match(&p); got != tc.match {
			t.Errorf("matcher on port %d: %v, want %v", p.DstPort, got, tc.match)
		}
	}
}

func TestProgramErrors(t *testing.T) {
	for name, r := range map[string]detectors.Rule{
		"proto none":   {Proto: detectors.ProtoNone, Ports: []uint16{1}},
		"proto icmp":   {Proto: 1, Ports: []uint16{1}},
		"zero address": {Proto: detectors.TCP, Ports: []uint16{1}, Dst: []netip.Addr{{}}},
	} {
		if _, err := Program([]detectors.Rule{r}); err == nil {
			t.Errorf("%s: no error", name)
		}
		if _, err := newMatcher([]detectors.Rule{r}); err == nil {
			t.Errorf("%s: matcher: no error", name)
		}
	}
}

// TestPrologue runs BuildFilter with the extension loads replaced by the
// values the kernel would supply, since the VM cannot evaluate them.
func TestPrologue(t *testing.T) {
	prog, err := BuildFilter([]detectors.Rule{{Proto: detectors.TCP, Ports: []uint16{7000}}})
	if err != nil {
		t.Fatal(err)
	}
	syn4 := pkt(client4, server4, detectors.TCP, 7000, detectors.SYN)
	syn6 := pkt(client6, server6, detectors.TCP, 7000, detectors.SYN)
	const host, broadcast, outgoing = 0, 1, 4
	for _, tc := range []struct {
		name           string
		pktType, proto uint32
		data           []byte
		want           bool
	}{
		{"incoming v4", host, 0x0800, syn4, true},
		{"incoming v6", host, 0x86dd, syn6, true},
		{"broadcast v4", broadcast, 0x0800, syn4, true},
		{"outgoing v4", outgoing, 0x0800, syn4, false},
		{"outgoing v6", outgoing, 0x86dd, syn6, false},
		{"arp", host, 0x0806, syn4, false},
		{"inner 802.1Q tag", host, 0x8100, syn4, false},
	} {
		sub := make([]bpf.Instruction, len(prog))
		copy(sub, prog)
		for i, in := range sub {
			if ext, ok := in.(bpf.LoadExtension); ok {
				val := tc.pktType
				if ext.Num == bpf.ExtProto {
					val = tc.proto
				}
				sub[i] = bpf.LoadConstant{Dst: bpf.RegA, Val: val}
			}
		}
		if got := accepts(t, vm(t, sub), tc.data); got != tc.want {
			t.Errorf("%s: accept = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestAsmRelaxation puts jump targets at distances around the 8-bit limit,
// in every combination of near, far and fall-through targets.
func TestAsmRelaxation(t *testing.T) {
	for _, gap := range []int{0, 250, 253, 254, 255, 256, 300, 70000} {
		var a asm
		far, tail9, done := a.newLabel(), a.newLabel(), a.newLabel()
		a.emit(bpf.LoadAbsolute{Off: 0, Size: 1})
		a.jumpIf(bpf.JumpEqual, 9, tail9, next)  // far, next
		a.jumpIf(bpf.JumpEqual, 1, far, next)    // far, next
		a.jumpIf(bpf.JumpLessThan, 5, next, far) // next, far
		a.jumpIf(bpf.JumpEqual, 3, far, done)    // far, near
		a.emit(bpf.RetConstant{Val: 100})        // unreachable
		a.mark(done)
		a.jumpIf(bpf.JumpEqual, 2, far, tail9) // far, far
		for range gap {
			a.emit(bpf.TXA{})
		}
		a.emit(bpf.RetConstant{Val: 100}) // unreachable
		a.mark(far)
		a.emit(bpf.RetConstant{Val: 1})
		a.mark(tail9)
		a.emit(bpf.RetConstant{Val: 9})
		prog, err := a.resolve()
		if err != nil {
			t.Fatalf("gap %d: %v", gap, err)
		}
		if _, err := bpf.Assemble(prog); err != nil {
			t.Fatalf("gap %d: Assemble: %v", gap, err)
		}
		v := vm(t, prog)
		for in, want := range map[byte]int{9: 9, 1: 1, 5: 1, 200: 1, 3: 1, 2: 1, 4: 9, 0: 9} {
			if n, _ := v.Run([]byte{in}); n != want {
				t.Errorf("gap %d: input %d returned %d, want %d", gap, in, n, want)
			}
		}
	}
}

// TestFilterAgreesWithMatcher checks random rules against random packets:
// where the filter decides alone (no IPv6 extension headers), it must say
// what the matcher says.
func TestFilterAgreesWithMatcher(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	addrs := []netip.Addr{server4, other4, server6, other6}
	protos := []detectors.Proto{detectors.TCP, detectors.UDP}
	for round := range 200 {
		var rules []detectors.Rule
		for range 1 + r.IntN(4) {
			rule := detectors.Rule{Proto: protos[r.IntN(2)]}
			for range r.IntN(6) {
				rule.Ports = append(rule.Ports, uint16(1+r.IntN(12)))
			}
			for _, a := range addrs {
				if r.IntN(4) == 0 {
					rule.Dst = append(rule.Dst, a)
				}
			}
			rule.FlagMask = detectors.TCPFlags(r.IntN(64)) & detectors.TCPFlags(r.IntN(64))
			rule.FlagWant = rule.FlagMask & detectors.TCPFlags(r.IntN(64))
			rules = append(rules, rule)
		}
		prog := mustProgram(t, rules)
		v := vm(t, prog)
		m, _ := newMatcher(rules)
		for range 100 {
			dst := addrs[r.IntN(len(addrs))]
			src := client4
			if dst.Is6() {
				src = client6
			}
			data := pkt(src, dst, protos[r.IntN(2)], uint16(1+r.IntN(12)), detectors.TCPFlags(r.IntN(64)))
			var p detectors.Packet
			want := decode.Decode(decode.Raw, data, &p) && m.match(&p)
			if got := accepts(t, v, data); got != want {
				t.Fatalf("round %d: %v %v:%d flags %#x: filter %v, matcher %v\nrules %+v\n%s",
					round, p.Proto, p.Dst, p.DstPort, p.Flags, got, want, rules, dump(prog))
			}
		}
	}
}

// FuzzFilter feeds arbitrary bytes to a fixed filter. A packet the decoder
// and matcher accept must never be dropped by the kernel filter, and where
// the filter has the last word it must agree.
func FuzzFilter(f *testing.F) {
	rules := []detectors.Rule{
		{Proto: detectors.TCP, Ports: []uint16{7000, 8000, 9000}, FlagMask: detectors.SYN | detectors.ACK, FlagWant: detectors.SYN},
		{Proto: detectors.UDP, Ports: []uint16{53000, 53001, 53002}, Dst: []netip.Addr{server4, server6}},
	}
	v := vm(f, mustProgram(f, rules))
	m, _ := newMatcher(rules)
	f.Add(pkt(client4, server4, detectors.TCP, 7000, detectors.SYN))
	f.Add(pkt(client6, server6, detectors.UDP, 53001, 0))
	f.Add(withHopByHop(pkt(client6, server6, detectors.TCP, 8000, detectors.SYN), 8000))
	f.Fuzz(func(t *testing.T, data []byte) {
		var p detectors.Packet
		want := decode.Decode(decode.Raw, data, &p) && m.match(&p)
		got := accepts(t, v, data)
		if want && !got {
			t.Fatalf("filter drops a packet the matcher wants: %v %v:%d", p.Proto, p.Dst, p.DstPort)
		}
		direct := len(data) >= 40 && data[0]>>4 == 6 && (data[6] == 6 || data[6] == 17) ||
			len(data) > 0 && data[0]>>4 == 4
		if got && !want && direct && decode.Decode(decode.Raw, data, &p) {
			t.Fatalf("filter passes a decodable packet the matcher rejects: %v %v:%d %#x", p.Proto, p.Dst, p.DstPort, p.Flags)
		}
	})
}

func BenchmarkFilterVM(b *testing.B) {
	ports := make([]uint16, 2000)
	for i := range ports {
		ports[i] = uint16(1000 + 3*i)
	}
	for name, rules := range map[string][]detectors.Rule{
		"3ports":    {{Proto: detectors.TCP, Ports: []uint16{7000, 8000, 9000}, FlagMask: detectors.SYN, FlagWant: detectors.SYN}},
		"2000ports": {{Proto: detectors.TCP, Ports: ports}},
	} {
		v := vm(b, mustProgram(b, rules))
		data := pkt(client4, server4, detectors.TCP, 9000, detectors.SYN)
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				v.Run(data)
			}
		})
	}
}

func BenchmarkMatcher(b *testing.B) {
	m, _ := newMatcher([]detectors.Rule{{Proto: detectors.TCP, Ports: []uint16{7000, 8000, 9000}, Dst: []netip.Addr{server4, server6}}})
	var p detectors.Packet
	decode.Decode(decode.Raw, pkt(client4, server4, detectors.TCP, 9000, detectors.SYN), &p)
	b.ReportAllocs()
	for b.Loop() {
		if !m.match(&p) {
			b.Fatal("no match")
		}
	}
}

func dump(prog []bpf.Instruction) string {
	s := ""
	for i, in := range prog {
		s += fmt.Sprintf("%4d %v\n", i, in)
	}
	return s
}
