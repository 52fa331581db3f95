package spent

import (
	"os"
	"path/filepath"
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
