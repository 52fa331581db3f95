package journal

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/doorward/doorward/internal/trust/trusttest"
)

// TestUntrustedRefused: a journal someone else could have written (a
// planted stop command runs as root at start) is refused, and so is a
// planted lock; the error names the path and what is wrong.
func TestUntrustedRefused(t *testing.T) {
	// A journal with one open door, as a previous run leaves it.
	src := filepath.Join(t.TempDir(), "state")
	j, _, _ := open(t, src)
	if _, err := j.Open(door(1)); err != nil {
		t.Fatal(err)
	}
	j.Shutdown()
	data, err := os.ReadFile(filepath.Join(src, FileName))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{FileName, LockName} {
		for _, c := range trusttest.Cases(t) {
			t.Run(name+"/"+c.Name, func(t *testing.T) {
				dir := filepath.Join(t.TempDir(), "state")
				if err := os.Mkdir(dir, 0o700); err != nil {
					t.Fatal(err)
				}
				path := filepath.Join(dir, name)
				c.Plant(t, path, data)
				j, got, err := Open(dir)
				if err == nil {
					j.Shutdown()
					t.Fatalf("Open accepted it: %d open doors", len(got))
				}
				if !strings.Contains(err.Error(), c.Want) || !strings.Contains(err.Error(), dir) {
					t.Fatalf("Open: %v; want %q naming %s", err, c.Want, dir)
				}
			})
		}
	}
}
