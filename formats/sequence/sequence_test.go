package sequence

import (
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []Knock
		err  string
	}{
		{"single", "7000", []Knock{{7000, TCP}}, ""},
		{"protocols", "1:udp,2:TCP,3:Udp", []Knock{{1, UDP}, {2, TCP}, {3, UDP}}, ""},
		{"spaces", " 8000 : udp , 9000", []Knock{{8000, UDP}, {9000, TCP}}, ""},
		{"repeated ports", "1,1,2", []Knock{{1, TCP}, {1, TCP}, {2, TCP}}, ""},
		{"leading zeros", "0080", []Knock{{80, TCP}}, ""},
		{"bounds", "1,65535", []Knock{{1, TCP}, {65535, TCP}}, ""},
		{"empty", "", nil, "empty knock sequence"},
		{"blank", " \t", nil, "empty knock sequence"},
		{"empty element", "7000,,8000", nil, "empty element in knock sequence"},
		{"trailing comma", "7000,", nil, "empty element in knock sequence"},
		{"only protocol", ":udp", nil, `missing port in ":udp"`},
		{"letters", "abc", nil, `port "abc" is not a number`},
		{"atoi junk", "7000x", nil, `port "7000x" is not a number`},
		{"trailing comment", "7000,8000 # x", nil, `port "8000 # x" is not a number`},
		{"negative", "-1", nil, `port "-1" is not a number`},
		{"plus", "+1", nil, `port "+1" is not a number`},
		{"zero", "0", nil, "port 0 is invalid (must be 1-65535)"},
		{"too big", "70000", nil, "port 70000 is invalid (must be 1-65535)"},
		{"overflow", "18446744073709551616", nil, "port 18446744073709551616 is invalid (must be 1-65535)"},
		{"icmp", "7000:icmp", nil, `unknown protocol "icmp" in knock sequence`},
		{"empty protocol", "7000:", nil, `unknown protocol "" in knock sequence`},
		{"third field", "7000:tcp:junk", nil, `unexpected ":junk" after the protocol in "7000:tcp:junk"`},
		{"max", strings.Repeat("1,", MaxLen-1) + "1", slices.Repeat([]Knock{{1, TCP}}, MaxLen), ""},
		{"too many", strings.Repeat("1,", MaxLen) + "1", nil, "too many ports in knock sequence (max 32)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.in)
			var gotErr string
			if err != nil {
				gotErr = err.Error()
			}
			if !reflect.DeepEqual(got, tt.want) || gotErr != tt.err {
				t.Errorf("Parse(%q) = %v, %q; want %v, %q", tt.in, got, gotErr, tt.want, tt.err)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	// The spec's §4.1 and §16 cases, then sequences as the knockd.conf
	// fixtures (config/knockd/testdata) and one-time files write them.
	for _, s := range []string{
		"7000,8000,9000", "2222:udp,3333:tcp,4444:udp", " 8000 : udp ",
		"-1,abc,,7000:tcp:junk", "70000", "7000,8000 # x", "7000:tcp # x",
		"1:icmp,2", "1,1,2", "", strings.Repeat("1,", 33),
		"1:udp,1:udp,2:tcp,7:tcp", "1000:UDP,2000:Tcp,3000:uDp", "65535:tcp",
		strings.Repeat("1:tcp,", MaxLen-1) + "32:tcp",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		seq, err := Parse(s)
		if err != nil {
			if seq != nil {
				t.Fatalf("Parse(%q) = %v with error %v", s, seq, err)
			}
			return
		}
		if len(seq) == 0 || len(seq) > MaxLen {
			t.Fatalf("Parse(%q): %d knocks", s, len(seq))
		}
		for _, k := range seq {
			if k.Port == 0 || k.Proto != TCP && k.Proto != UDP {
				t.Fatalf("Parse(%q): bad knock %+v", s, k)
			}
		}
		again, err := Parse(Format(seq))
		if err != nil || !slices.Equal(again, seq) {
			t.Fatalf("round trip of %q: %v, %v; want %v", s, again, err, seq)
		}
	})
}
