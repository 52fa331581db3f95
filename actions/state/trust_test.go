package state

import (
	"os"
	"path/filepath"
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
	for _, name := range []string{"cache", "cache.lock"} {
		trusttest.Run(t, name, data, func(dir string) error {
			s, err := Open(filepath.Join(dir, "cache"), Options{})
			if err == nil {
				s.Close()
			}
			return err
		})
	}
}
