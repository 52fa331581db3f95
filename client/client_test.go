package client

import (
	"context"
	"fmt"
	"slices"
	"testing"
)

func cmd(name string, aliases ...string) Command {
	return Command{Name: name, Aliases: aliases, Run: func(context.Context, []string, Env) int { return 0 }}
}

func names(cs []Command) []string {
	var out []string
	for _, c := range cs {
		out = append(out, fmt.Sprintf("%s %v", c.Name, c.Aliases))
	}
	return out
}

// TestRegister: a command answers to its name and every alias, and is
// listed once, in name order.
func TestRegister(t *testing.T) {
	defer Restore()()
	base := len(Commands())
	Register(cmd("zeta"))
	Register(cmd("alpha", "a", "first"))
	for n, want := range map[string]string{"alpha": "alpha", "a": "alpha", "first": "alpha", "zeta": "zeta"} {
		if c, ok := Lookup(n); !ok || c.Name != want {
			t.Errorf("Lookup(%q) = %q, %v; want %q", n, c.Name, ok, want)
		}
	}
	if _, ok := Lookup("Alpha"); ok {
		t.Error("Lookup is case-sensitive: Alpha found")
	}
	got := names(Commands())
	if len(got) != base+2 || !slices.IsSorted(got) || !slices.Contains(got, "alpha [a first]") || !slices.Contains(got, "zeta []") {
		t.Errorf("Commands() = %q", got)
	}
}

// TestRegisterPanics: a name taken twice, by a name or an alias, or an
// unusable name, is a protocol package's bug, and panics at once.
func TestRegisterPanics(t *testing.T) {
	for _, tc := range []struct {
		name  string
		first Command
		then  Command
	}{
		{"same name", cmd("x"), cmd("x")},
		{"alias is a name", cmd("x"), cmd("y", "x")},
		{"name is an alias", cmd("y", "x"), cmd("x")},
		{"same alias", cmd("y", "x"), cmd("z", "x")},
		{"alias repeats own name", cmd("q"), cmd("x", "x")},
		{"empty name", cmd("q"), cmd("")},
		{"option-like name", cmd("q"), cmd("-x")},
		{"option-like alias", cmd("q"), cmd("x", "--x")},
		{"space in name", cmd("q"), cmd("x y")},
		{"no Run", cmd("q"), Command{Name: "x"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer Restore()()
			Register(tc.first)
			defer func() {
				if recover() == nil {
					t.Errorf("Register(%+v) did not panic", tc.then)
				}
			}()
			Register(tc.then)
		})
	}
}

// TestRegisterAtomic: a registration that panics leaves nothing behind.
func TestRegisterAtomic(t *testing.T) {
	defer Restore()()
	Register(cmd("taken"))
	func() {
		defer func() { recover() }()
		Register(cmd("fresh", "taken"))
	}()
	if _, ok := Lookup("fresh"); ok {
		t.Error("a refused command was registered under its other names")
	}
}

func TestRegisterDefault(t *testing.T) {
	defer Restore()()
	registry.Lock()
	registry.dflt = nil
	registry.Unlock()
	if _, ok := Default(); ok {
		t.Fatal("default before any registration")
	}
	RegisterDefault(cmd("one"))
	if d, ok := Default(); !ok || d.Name != "one" {
		t.Fatalf("Default() = %q, %v", d.Name, ok)
	}
	if _, ok := Lookup("one"); ok {
		t.Error("the default command is looked up by name")
	}
	if slices.Contains(names(Commands()), "one []") {
		t.Error("the default command is listed")
	}
	defer func() {
		if recover() == nil {
			t.Error("a second default did not panic")
		}
	}()
	RegisterDefault(cmd("two"))
}

func TestRestore(t *testing.T) {
	restore := Restore()
	Register(cmd("temporary"))
	restore()
	if _, ok := Lookup("temporary"); ok {
		t.Error("Restore left a command registered")
	}
}
