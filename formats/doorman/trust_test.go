package doorman

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/doorward/doorward/internal/trust/trusttest"
)

// TestArchiveUntrustedRefused: an archive someone else could have written
// (emptied, a replay becomes possible) or a link in its place is refused.
func TestArchiveUntrustedRefused(t *testing.T) {
	data := make([]byte, MinRecords*RecordSize)
	for _, c := range trusttest.Cases(t) {
		t.Run(c.Name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "state")
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, "hash.archive")
			c.Plant(t, path, data)
			a, _, err := OpenArchive(path, MinRecords)
			if err == nil {
				a.Close()
				t.Fatal("OpenArchive accepted it")
			}
			if !strings.Contains(err.Error(), c.Want) || !strings.Contains(err.Error(), dir) {
				t.Fatalf("OpenArchive: %v; want %q naming %s", err, c.Want, dir)
			}
		})
	}
}
