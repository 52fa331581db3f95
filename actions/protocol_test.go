package actions

import (
	"slices"
	"testing"

	"github.com/doorward/doorward/config/knockd"
)

// TestRegister: an action is found by its protocol's name; misuse panics.
func TestRegister(t *testing.T) {
	newNothing := func([]*knockd.Door, *Env) (Action, error) { return nil, nil }
	t.Cleanup(RegisterForTest("span", newNothing))
	if _, ok := Lookup("span"); !ok {
		t.Error("Lookup(span) found nothing")
	}
	if _, ok := Lookup("seq"); ok {
		t.Error("Lookup(seq) found an action")
	}
	if got := Registered(); !slices.Equal(got, []string{"span"}) {
		t.Errorf("Registered() = %q", got)
	}
	for name, reg := range map[string]func(){
		"no name":        func() { Register("", newNothing) },
		"no constructor": func() { Register("x", nil) },
		"twice":          func() { Register("span", newNothing) },
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			reg()
		})
	}
}
