package doorman

import (
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/doorward/doorward/config"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// testResolver never touches DNS or /etc/services.
func testResolver() Resolver {
	services := map[string]int{"ssh": 22, "pop3": 110, "http": 80, "smtp": 25}
	hosts := map[string]netip.Addr{
		"host.example.org": netip.MustParseAddr("192.0.2.10"),
		"gw.example.net":   netip.MustParseAddr("198.51.100.1"),
	}
	return Resolver{
		Service: func(name string) (int, error) {
			if p, ok := services[name]; ok {
				return p, nil
			}
			return 0, errors.New("not in the test services")
		},
		Host: func(name string) (netip.Addr, error) {
			if a, ok := hosts[name]; ok {
				return a, nil
			}
			return netip.Addr{}, errors.New("no such host in the test resolver")
		},
	}
}

// dump is the golden form of a parsed guest list.
func dump(gl *Guestlist, warns []string) string {
	var b strings.Builder
	for _, g := range gl.Guests {
		fmt.Fprintf(&b, "guest %q  # line %d\n  secret %q\n  ports", g.Name, g.Pos.Line, g.Secret)
		for _, p := range g.Ports {
			fmt.Fprintf(&b, " %d", p)
		}
		b.WriteString("\n  addrs")
		for _, a := range g.Addrs {
			fmt.Fprintf(&b, " %s", a)
		}
		b.WriteString("\n")
	}
	for _, w := range warns {
		fmt.Fprintf(&b, "warning: %s\n", w)
	}
	return b.String()
}

// TestGuestlistValid parses testdata/guestlist/valid/*.gl and compares the
// result with the .golden next to it (go test -update rewrites them).
func TestGuestlistValid(t *testing.T) {
	files, _ := filepath.Glob("testdata/guestlist/valid/*.gl")
	if len(files) == 0 {
		t.Fatal("no test files")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			gl, warns, err := ParseGuestlist(filepath.Base(f), src, testResolver())
			if err != nil {
				t.Fatalf("errors:\n%v", err)
			}
			got := dump(gl, warns)
			golden := strings.TrimSuffix(f, ".gl") + ".golden"
			if *update {
				os.WriteFile(golden, []byte(got), 0o644)
			}
			want, _ := os.ReadFile(golden)
			if got != string(want) {
				t.Errorf("got:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

// TestGuestlistInvalid checks every error of each
// testdata/guestlist/invalid/*.gl against its "# wantErr:" lines, in order.
func TestGuestlistInvalid(t *testing.T) {
	files, _ := filepath.Glob("testdata/guestlist/invalid/*.gl")
	if len(files) == 0 {
		t.Fatal("no test files")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var want []string
			for _, l := range strings.Split(string(src), "\n") {
				if w, ok := strings.CutPrefix(l, "# wantErr: "); ok {
					want = append(want, w)
				}
			}
			_, _, err = ParseGuestlist(filepath.Base(f), src, testResolver())
			var got []string
			for _, e := range config.Errors(err) {
				got = append(got, e.Error())
			}
			if !slices.Equal(got, want) {
				t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		})
	}
}

// TestGuestlistMatch: the decided masked-address behaviour and the lookup
// are case-sensitive.
func TestGuestlistMatch(t *testing.T) {
	src := "user4 qwertyuiop4 ssh 9.10.11.12/16 10.0.0.1\n"
	gl, warns, err := ParseGuestlist("gl", []byte(src), testResolver())
	if err != nil {
		t.Fatal(err)
	}
	if len(warns) != 1 || !strings.Contains(warns[0], "gl:1: 9.10.11.12/16 has host bits set") {
		t.Errorf("warnings %q", warns)
	}
	g := gl.Lookup([]byte("user4"))
	if g == nil || gl.Lookup([]byte("User4")) != nil {
		t.Fatal("lookup is not exact")
	}
	for addr, want := range map[string]bool{"9.10.200.1": true, "9.11.0.1": false, "10.0.0.1": true, "10.0.0.2": false} {
		if got := g.Allows(netip.MustParseAddr(addr)); got != want {
			t.Errorf("Allows(%s) = %v, want %v", addr, got, want)
		}
	}
	if !g.HasPort(22) || g.HasPort(23) {
		t.Error("HasPort")
	}
}

// FuzzGuestlist: the lexer never panics or hangs, and whatever it accepts
// obeys guestlist(5)'s limits.
func FuzzGuestlist(f *testing.F) {
	files, _ := filepath.Glob("testdata/guestlist/*/*.gl")
	for _, file := range files {
		if src, err := os.ReadFile(file); err == nil {
			f.Add(src)
		}
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		gl, _, err := ParseGuestlist("fuzz", src, testResolver())
		if err != nil {
			return
		}
		if len(gl.Guests) == 0 {
			t.Fatal("accepted a list without guests")
		}
		for _, g := range gl.Guests {
			if g.Name == "" || len(g.Name) > MaxGroup || len(g.Secret) > MaxSecret || len(g.Ports) == 0 {
				t.Fatalf("bad guest %+v", g)
			}
			if strings.ContainsAny(g.Name+g.Secret, " \t\n#.") {
				t.Fatalf("separator in %q %q", g.Name, g.Secret)
			}
			for _, p := range g.Ports {
				if p == 0 {
					t.Fatalf("port 0 in %+v", g)
				}
			}
			for _, a := range g.Addrs {
				if !a.Addr().Is4() || a.Masked() != a {
					t.Fatalf("address %v", a)
				}
			}
		}
	})
}
