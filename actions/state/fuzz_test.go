package state

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// FuzzLoad: no cache file makes Open panic; a file Open accepts is written
// back so that it reads the same.
func FuzzLoad(f *testing.F) {
	golden, _ := os.ReadFile(filepath.Join("testdata", "cache.golden"))
	f.Add(golden)
	f.Add([]byte(`{"format":"doorward-state","version":1,"entries":[]}`))
	f.Add([]byte(`{"format":"doorward-state","version":1,"entries":[{"key":["a"],"value":"1","updated":"2024-01-01T00:00:00Z"},{"key":["a"],"value":"2"}]}`))
	f.Add([]byte("pst0\x04\x0b"))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		path := filepath.Join(dir, "state.json")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := Open(path, Options{MaxEntries: 100})
		if err != nil {
			return
		}
		before := s.Entries()
		s.dirty = true
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		s, err = Open(path, Options{MaxEntries: 100})
		if err != nil {
			t.Fatalf("reading back what we wrote: %v", err)
		}
		defer s.Close()
		after := s.Entries()
		if !slices.EqualFunc(before, after, func(a, b Entry) bool {
			return slices.Equal(a.Key, b.Key) && a.Value == b.Value && a.Updated.Equal(b.Updated)
		}) {
			t.Fatalf("entries changed on a round trip:\n%v\n%v", before, after)
		}
	})
}
