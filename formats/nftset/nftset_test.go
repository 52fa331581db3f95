package nftset

import "testing"

func TestParse(t *testing.T) {
	tests := []struct {
		name, in string
		want     Ref
		err      bool
	}{
		{"inet", "inet filter doorward4", Ref{Family: "inet", Table: "filter", Set: "doorward4"}, false},
		{"ip6 spaces", "  ip6   fw   door_v6 ", Ref{Family: "ip6", Table: "fw", Set: "door_v6"}, false},
		{"port", "ip filter ssh4 22", Ref{Family: "ip", Table: "filter", Set: "ssh4", Port: 22}, false},
		{"bridge family", "bridge filter s", Ref{}, true},
		{"too few", "inet filter", Ref{}, true},
		{"too many", "inet filter s 22 x", Ref{}, true},
		{"port zero", "inet filter s 0", Ref{}, true},
		{"port too big", "inet filter s 65536", Ref{}, true},
		{"port name", "inet filter s ssh", Ref{}, true},
		{"digit first", "inet 1filter s", Ref{}, true},
		{"braces", "inet filter s{", Ref{}, true},
		{"empty", "", Ref{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.in)
			if got != tt.want || (err != nil) != tt.err {
				t.Fatalf("Parse(%q) = %+v, %v; want %+v, error %v", tt.in, got, err, tt.want, tt.err)
			}
			if err == nil {
				if again, err := Parse(got.String()); err != nil || again != got {
					t.Fatalf("Parse(String()) = %+v, %v; want %+v", again, err, got)
				}
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"inet filter doorward4", "ip6 t s 22", "ip a b c d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := Parse(s)
		if err != nil {
			return
		}
		if again, err := Parse(r.String()); err != nil || again != r {
			t.Fatalf("Parse(%q) = %+v, but Parse(String()) = %+v, %v", s, r, again, err)
		}
	})
}
