package state

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/doorward/doorward/internal/trust/trusttest"
)

// TestUntrustedRefused: a cache or lock someone else could have written,
// or a symbolic link in their place, is refused with the path named.
func TestUntrustedRefused(t *testing.T) {
	src := filepath.Join(t.TempDir(), "cache")
	s := open(t, src, Options{})
	must(t, s.Set(k("10.0.0.1", "used"), "1", t0))
	must(t, s.Close())
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, suffix := range []string{"", ".lock"} {
		for _, c := range trusttest.Cases(t) {
			t.Run("cache"+suffix+"/"+c.Name, func(t *testing.T) {
				dir := filepath.Join(t.TempDir(), "state")
				if err := os.Mkdir(dir, 0o700); err != nil {
					t.Fatal(err)
				}
				path := filepath.Join(dir, "cache")
				c.Plant(t, path+suffix, data)
				s, err := Open(path, Options{})
				if err == nil {
					s.Close()
					t.Fatal("Open accepted it")
				}
				if !strings.Contains(err.Error(), c.Want) || !strings.Contains(err.Error(), dir) {
					t.Fatalf("Open: %v; want %q naming %s", err, c.Want, dir)
				}
			})
		}
	}
}
