package journal

import (
	"os"
	"path/filepath"
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
	if _, err := j.OpenDoor(door(1)); err != nil {
		t.Fatal(err)
	}
	j.Shutdown()
	data, err := os.ReadFile(filepath.Join(src, FileName))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{FileName, LockName} {
		trusttest.Run(t, name, data, func(dir string) error {
			j, _, err := Open(dir)
			if err == nil {
				j.Shutdown()
			}
			return err
		})
	}
}
