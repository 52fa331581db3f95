package spent

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func dg(i int) Digest { return Digest{byte(i), byte(i >> 8), 1} }

// TestRingOldestOut: a ring evicts the oldest record, and after a reopen
// it goes on from the oldest, whatever stamps the caller passed.
func TestRingOldestOut(t *testing.T) {
	path := filepath.Join(t.TempDir(), "spent")
	s, info, err := Open(path, 4, Options{Sync: true})
	if err != nil || !info.Created {
		t.Fatalf("Open: %v %+v", err, info)
	}
	for i := 1; i <= 6; i++ {
		// Stamps going backwards (a clock step) must not break the order.
		if err := s.Add(dg(i), int64(100-i)); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	s, info, err = Open(path, 4, Options{})
	if err != nil || info != (OpenInfo{}) {
		t.Fatalf("reopen: %v %+v", err, info)
	}
	s.Add(dg(7), 0)
	want := map[int]bool{4: true, 5: true, 6: true, 7: true}
	for i := 1; i <= 7; i++ {
		if _, ok := s.Lookup(dg(i)); ok != want[i] {
			t.Errorf("digest %d found = %v, want %v", i, ok, want[i])
		}
	}
	s.Close()
}

// TestRingResize keeps the newest records, in order.
func TestRingResize(t *testing.T) {
	path := filepath.Join(t.TempDir(), "spent")
	s, _, _ := Open(path, 8, Options{})
	for i := 1; i <= 8; i++ {
		s.Add(dg(i), int64(i))
	}
	info, err := s.Resize(3)
	if err != nil || !info.Resized || info.Kept != 3 {
		t.Fatalf("Resize: %v %+v", err, info)
	}
	s.Add(dg(9), 0) // evicts 6, the oldest kept
	s.Close()
	s, info, _ = Open(path, 3, Options{})
	defer s.Close()
	for i := 1; i <= 9; i++ {
		_, ok := s.Lookup(dg(i))
		if ok != (i >= 7) {
			t.Errorf("digest %d found = %v", i, ok)
		}
	}
	if info != (OpenInfo{}) {
		t.Errorf("reopen after Resize: %+v", info)
	}
}

// TestCheckTouchesNothing: Check says what Open would do and changes no
// file: a config check or a rejected reload must leave the store alone.
func TestCheckTouchesNothing(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "spent")
	info, err := Check(path, 10, Options{})
	if err != nil || !info.Created {
		t.Fatalf("Check missing: %v %+v", err, info)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatal("Check created the file")
	}
	os.WriteFile(path, make([]byte, 5*RecordSize), 0o600)
	fi0, _ := os.Stat(path)
	info, err = Check(path, 10, Options{})
	if err != nil || !info.Resized || info.From != 5 {
		t.Fatalf("Check: %v %+v", err, info)
	}
	fi1, _ := os.Stat(path)
	if fi1.Size() != fi0.Size() || !os.SameFile(fi0, fi1) {
		t.Error("Check changed the file")
	}
	if _, err := Check(filepath.Join(dir, "no", "such"), 10, Options{}); err == nil {
		t.Error("Check accepted a missing directory")
	}
}

// TestRingMerge: merging into a ring keeps the newest records of both
// stores, as a resize does. It used to add every record missing, oldest
// first, so merging a bigger store into a smaller one (a reload that
// shrank the store: the new one opened the file resized to its newest
// records) wrote the oldest records over the newest.
func TestRingMerge(t *testing.T) {
	ring := func(size int, stamps ...int) *Store {
		s := NewMemory(size, Options{})
		for _, i := range stamps {
			s.Add(dg(i), int64(i))
		}
		return s
	}
	seq := func(from, to int) []int {
		var out []int
		for i := from; i <= to; i++ {
			out = append(out, i)
		}
		return out
	}
	for _, tc := range []struct {
		name     string
		into     *Store
		old      *Store
		want     []int // the digests s holds after
		thenNext int   // a digest added after the merge evicts the oldest of want
	}{
		{"old has nothing newer", ring(4, seq(5, 8)...), ring(8, seq(1, 8)...), seq(5, 8), 5},
		{"old has newer records", ring(4, seq(5, 8)...), ring(16, seq(1, 10)...), seq(7, 10), 7},
		{"room for older records", ring(4, 5, 6), ring(8, seq(1, 4)...), seq(3, 6), 3},
		{"disjoint, into a bigger ring", ring(8, 2, 4), ring(4, 1, 3), seq(1, 4), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.into.Merge(tc.old); err != nil {
				t.Fatal(err)
			}
			for i := 1; i <= 16; i++ {
				_, ok := tc.into.Lookup(dg(i))
				if want := slices.Contains(tc.want, i); ok != want {
					t.Errorf("digest %d found = %v, want %v", i, ok, want)
				}
			}
			if tc.thenNext == 0 {
				return
			}
			tc.into.Add(dg(100), 0)
			if _, ok := tc.into.Lookup(dg(tc.thenNext)); ok {
				t.Errorf("the next Add kept digest %d, the oldest", tc.thenNext)
			}
		})
	}
}
