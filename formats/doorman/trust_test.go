package doorman

import (
	"path/filepath"
	"testing"

	"github.com/doorward/doorward/internal/trust/trusttest"
)

// TestArchiveUntrustedRefused: an archive someone else could have written
// (emptied, a replay becomes possible) or a link in its place is refused.
func TestArchiveUntrustedRefused(t *testing.T) {
	trusttest.Run(t, "hash.archive", make([]byte, MinRecords*RecordSize), func(dir string) error {
		a, _, err := OpenArchive(filepath.Join(dir, "hash.archive"), MinRecords)
		if err == nil {
			a.Close()
		}
		return err
	})
}
