package otp

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/doorward/doorward/internal/trust/trusttest"
)

// TestUntrustedRefused: a sequences file someone else could have written
// decides who may open a door; it is refused with the path named.
func TestUntrustedRefused(t *testing.T) {
	for _, c := range trusttest.Cases(t) {
		t.Run(c.Name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "etc")
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, "otp.seq")
			c.Plant(t, path, []byte("2001,2002\n"))
			f, err := Open(path)
			if err == nil {
				t.Fatalf("Open accepted it: %s", current(f))
			}
			if !strings.Contains(err.Error(), c.Want) || !strings.Contains(err.Error(), dir) {
				t.Fatalf("Open: %v; want %q naming %s", err, c.Want, dir)
			}
		})
	}
}
