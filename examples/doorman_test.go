package examples_test

import (
	"errors"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/doorward/doorward/config/doorman"
	dmformat "github.com/doorward/doorward/formats/doorman"
)

// TestDoormanExamples loads the doorman examples as Doorward reads them:
// the doormand.cf as `knockd -c` would, the guest list with doormand's
// lexer, and checks the scripts follow doormand's answer protocol (a
// wrong call answers "-1 3 …" and exits 1; nothing else is run).
func TestDoormanExamples(t *testing.T) {
	src, err := os.ReadFile("doorman/doormand.cf")
	if err != nil {
		t.Fatal(err)
	}
	if !doorman.IsCF(src) {
		t.Fatal("doorman/doormand.cf is not recognised as a doormand.cf")
	}
	cfg, err := doorman.ToConfig(dmformat.ParseCF("doorman/doormand.cf", src), false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := doorman.FromDoor(cfg.Doors[0]); err != nil {
		t.Error(err)
	}

	gl, err := os.ReadFile("doorman/guestlist")
	if err != nil {
		t.Fatal(err)
	}
	r := doorman.Resolver{Service: func(name string) (int, error) {
		if name == "ssh" {
			return 22, nil
		}
		return 0, errors.New("unknown")
	}}
	list, warns, err := doorman.ParseGuestlist("doorman/guestlist", gl, r)
	if err != nil || len(warns) > 0 || len(list.Guests) != 2 {
		t.Errorf("guestlist: %v, warnings %q, %d guests", err, warns, len(list.Guests))
	}
	if g := list.Lookup([]byte("bob")); g == nil || !g.Allows(netip.MustParseAddr("203.0.113.9")) {
		t.Error("bob may not knock from anywhere")
	}

	for _, script := range []string{"iptables_add", "iptables_delete", "nft_add", "nft_delete"} {
		fi, err := os.Stat("doorman/" + script)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm()&0o100 == 0 {
			t.Errorf("%s is not executable", script)
		}
		out, err := exec.Command("doorman/"+script, "too", "few").Output()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.HasPrefix(string(out), "-1 3 usage: ") {
			t.Errorf("%s with 2 arguments: %q, %v; want \"-1 3 usage: …\", exit 1", script, out, err)
		}
	}
}
