package detectors

import (
	"fmt"
	"testing"

	"github.com/doorward/doorward/config/knockd"
)

func newNothing([]*knockd.Door, *Env) (Detector, error) { return nil, nil }

// TestRegistry: Lookup resolves names and aliases (the door Type "" too)
// but not section Types, which SectionOwner finds; Names lists canonical
// names only.
func TestRegistry(t *testing.T) {
	t.Cleanup(RegisterForTest(Protocol{Name: "seq", Aliases: []string{""}, Detector: newNothing, Commands: true}))
	t.Cleanup(RegisterForTest(Protocol{Name: "span", Aliases: []string{"old"}, Sections: []string{"act"}, Detector: newNothing}))
	for _, tc := range []struct{ typ, lookup, owner string }{
		{"seq", "seq", ""},
		{"", "seq", ""},
		{"span", "span", ""},
		{"old", "span", ""},
		{"act", "", "span"},
		{"nosuch", "", ""},
	} {
		var lookup, owner string
		if p, ok := Lookup(tc.typ); ok {
			lookup = p.Name
		}
		if p, ok := SectionOwner(tc.typ); ok {
			owner = p.Name
		}
		if lookup != tc.lookup || owner != tc.owner {
			t.Errorf("%q: Lookup %q, SectionOwner %q; want %q, %q", tc.typ, lookup, owner, tc.lookup, tc.owner)
		}
	}
	if got := Names(); got != "seq, span" {
		t.Errorf("Names() = %q", got)
	}
	if ps := Protocols(); len(ps) != 2 || ps[0].Name != "seq" || ps[1].Name != "span" {
		t.Errorf("Protocols() = %v", ps)
	}
}

// TestRegisterPanics: a bad build must not start, so every misuse panics
// (and leaves the registry as it was).
func TestRegisterPanics(t *testing.T) {
	t.Cleanup(RegisterForTest(Protocol{Name: "span", Aliases: []string{"old"}, Sections: []string{"act"}, Detector: newNothing}))
	for name, p := range map[string]Protocol{
		"no name":              {Detector: newNothing},
		"no detector":          {Name: "x"},
		"twice":                {Name: "span", Detector: newNothing},
		"alias is a name":      {Name: "x", Aliases: []string{"span"}, Detector: newNothing},
		"name is an alias":     {Name: "old", Detector: newNothing},
		"section is taken":     {Name: "x", Sections: []string{"act"}, Detector: newNothing},
		"alias is its section": {Name: "x", Aliases: []string{"y"}, Sections: []string{"y"}, Detector: newNothing},
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
				if got := fmt.Sprint(len(protocols), len(types)); got != "1 3" {
					t.Errorf("registry changed: %s protocols and types", got)
				}
			}()
			Register(p)
		})
	}
}
