package spent_test

import (
	"encoding/binary"
	"path/filepath"
	"testing"

	"github.com/doorward/doorward/internal/spent"
)

// BenchmarkAddSync: one knock's record made durable (Options.Sync), the
// cost a fresh one-time sequence, doorman digest or fwknop SPA packet pays
// before its door opens, in a ring file on the test's temporary directory.
func BenchmarkAddSync(b *testing.B) {
	s, _, err := spent.Open(filepath.Join(b.TempDir(), "ring"), 4096, spent.Options{Sync: true})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	var d spent.Digest
	i := uint64(0)
	for b.Loop() {
		i++
		binary.LittleEndian.PutUint64(d[:], i)
		if err := s.Add(d, int64(i)); err != nil {
			b.Fatal(err)
		}
	}
}
