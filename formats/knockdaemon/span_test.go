package knockdaemon

import (
	"slices"
	"strconv"
	"testing"
)

func TestParseSpan(t *testing.T) {
	type want struct {
		size, bits int
		str        string
		first      uint16 // Port(0)
		last       uint16 // Port(size-1)
		err        string
	}
	for _, tc := range []struct {
		name, in string
		want     want
	}{
		{"one range", "1024-1279", want{size: 256, bits: 8, str: "1024-1279", first: 1024, last: 1279}},
		{"manual", "1024-5000,6000-25000,26000-35789", want{size: 32768, bits: 15, str: "1024-5000,6000-25000,26000-35789", first: 1024, last: 35789}},
		{"blanks", " 10 - 11 ", want{size: 2, bits: 1, str: "10-11", first: 10, last: 11}},
		{"singles merge", "7,8,9,10", want{size: 4, bits: 2, str: "7-10", first: 7, last: 10}},
		{"out of order", "100-101,50,60", want{size: 4, bits: 2, str: "100-101,50,60", first: 100, last: 60}},
		{"top port", "65534-65535", want{size: 2, bits: 1, str: "65534-65535", first: 65534, last: 65535}},
		{"descending neighbours stay apart", "9,8", want{size: 2, bits: 1, str: "9,8", first: 9, last: 8}},
		{"empty", "", want{err: "empty port span"}},
		{"empty element", "1,,2", want{err: "empty element in port span"}},
		{"port zero", "0-1", want{err: `port "0" is not a number from 1 to 65535`}},
		{"too big", "65536", want{err: `port "65536" is not a number from 1 to 65535`}},
		{"not a number", "a-b", want{err: `port "a" is not a number from 1 to 65535`}},
		{"backwards", "20-10", want{err: `range "20-10" runs backwards`}},
		{"not a power of two", "1-3", want{err: "port span has 3 ports, want a power of two from 2 to 32768"}},
		{"one port", "5", want{err: "port span has 1 ports, want a power of two from 2 to 32768"}},
		{"too many", "1-32769", want{err: "port span has more than 32768 ports"}},
		{"repeated", "5,5", want{err: "port 5 appears twice in the port span"}},
		{"overlap", "1-10,5-10", want{err: "port 5 appears twice in the port span"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sp, err := ParseSpan(tc.in)
			var got want
			if err != nil {
				got.err = err.Error()
			} else {
				got = want{size: sp.Size(), bits: sp.Bits(), str: sp.String(), first: sp.Port(0), last: sp.Port(sp.Size() - 1)}
			}
			if got != tc.want {
				t.Errorf("ParseSpan(%q) = %+v, want %+v", tc.in, got, tc.want)
			}
		})
	}
}

// Index is Port's inverse over the whole span, and nothing else is in it.
func TestSpanIndex(t *testing.T) {
	sp, err := ParseSpan("1024-5000,6000-25000,26000-35789")
	if err != nil {
		t.Fatal(err)
	}
	ports := sp.Ports()
	if len(ports) != sp.Size() {
		t.Fatalf("%d ports, want %d", len(ports), sp.Size())
	}
	for i, p := range ports {
		if got, ok := sp.Index(p); !ok || got != i || sp.Port(i) != p {
			t.Fatalf("port %d: Index = %d, %v; Port(%d) = %d", p, got, ok, i, sp.Port(i))
		}
	}
	for _, p := range []uint16{1, 1023, 5001, 5999, 25001, 25999, 35790, 65535} {
		if i, ok := sp.Index(p); ok {
			t.Errorf("port %d outside the span has index %d", p, i)
		}
	}
}

// Spans of every size carry any bytes: Decode(Encode(b)) == b with both
// tail readings, and the knock has Hits(len(b)) ports.
func TestSpanRoundTripSizes(t *testing.T) {
	data := []byte{0x00, 0xff, 0xa5, 0x5a, 0x01, 0x80, 0x7f, 0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0, 0x0f, 0x3c}
	for bits := 1; bits <= 15; bits++ {
		sp, err := ParseSpan("30000-" + strconv.Itoa(30000+(1<<bits)-1))
		if err != nil {
			t.Fatal(err)
		}
		for n := 1; n <= len(data); n++ {
			for _, tail := range []Tail{TailPad, TailRaw} {
				ports := sp.Encode(nil, data[:n], tail)
				if len(ports) != sp.Hits(n) {
					t.Fatalf("N=%d n=%d: %d ports, want %d", bits, n, len(ports), sp.Hits(n))
				}
				got, ok := sp.Decode(nil, ports, n, tail)
				if !ok || !slices.Equal(got, data[:n]) {
					t.Fatalf("N=%d n=%d tail %v: Decode = %x, %v; want %x", bits, n, tail, got, ok, data[:n])
				}
			}
		}
	}
}

// Decode refuses what no encoder produces: a port outside the span, the
// wrong count, bits set in the part of the last group that must be zero.
func TestSpanDecodeRejects(t *testing.T) {
	sp, _ := ParseSpan("1024-5000,6000-25000,26000-35789") // N = 15
	b := []byte{0xd3, 0xb2}                                // 16 bits: 2 ports, the last carrying 1 bit
	ok := sp.Encode(nil, b, TailPad)
	for _, tc := range []struct {
		name  string
		ports []uint16
		tail  Tail
	}{
		{"outside", []uint16{ok[0], 5500}, TailPad},
		{"too few", ok[:1], TailPad},
		{"too many", append(slices.Clone(ok), 1024), TailPad},
		{"pad bits set", []uint16{ok[0], sp.Port(1<<14 | 1)}, TailPad},
		{"raw high bits set", []uint16{ok[0], sp.Port(2)}, TailRaw},
	} {
		if got, ok := sp.Decode(nil, tc.ports, len(b), tc.tail); ok {
			t.Errorf("%s: decoded %x", tc.name, got)
		}
	}
}

func FuzzSpan(f *testing.F) {
	for _, s := range []string{
		"1024-1279", "1024-5000,6000-25000,26000-35789", "2000-2255", "10000-11023",
		"1,2", "9,8", "5,5", "1-3", "0-1", "65534-65535", " 7 , 8 ", "1-10,5", "-", ",",
	} {
		f.Add(s, []byte("RandomIV36574210"))
	}
	f.Fuzz(func(t *testing.T, s string, data []byte) {
		sp, err := ParseSpan(s)
		if err != nil {
			return
		}
		if sp.Size() < 2 || sp.Size() > MaxSpan || sp.Size() != 1<<sp.Bits() {
			t.Fatalf("%q: size %d, bits %d", s, sp.Size(), sp.Bits())
		}
		again, err := ParseSpan(sp.String())
		if err != nil || !slices.Equal(again.Ports(), sp.Ports()) {
			t.Fatalf("%q: String() = %q does not parse back to the same span: %v", s, sp.String(), err)
		}
		for _, i := range []int{0, sp.Size() / 3, sp.Size() - 1} {
			if j, ok := sp.Index(sp.Port(i)); !ok || j != i {
				t.Fatalf("%q: Index(Port(%d)) = %d, %v", s, i, j, ok)
			}
		}
		if len(data) == 0 || len(data) > 64 {
			return
		}
		for _, tail := range []Tail{TailPad, TailRaw} {
			got, ok := sp.Decode(nil, sp.Encode(nil, data, tail), len(data), tail)
			if !ok || !slices.Equal(got, data) {
				t.Fatalf("%q tail %v: round trip of %x gave %x, %v", s, tail, data, got, ok)
			}
		}
	})
}
