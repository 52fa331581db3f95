package flock

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestTryLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lock")
	a, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := TryLock(a); err != nil {
		t.Fatalf("first lock: %v", err)
	}
	b, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := TryLock(b); !errors.Is(err, ErrWouldBlock) {
		t.Fatalf("second lock while held: %v, want ErrWouldBlock", err)
	}
	a.Close()
	if err := TryLock(b); err != nil {
		t.Fatalf("lock after the holder closed: %v", err)
	}
}

// TestOpen: Open creates and locks a lock file by the state-file rules; a
// second Open of it would block, and a symbolic link is not followed.
func TestOpen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "lock")
	a, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if _, err := Open(path); !errors.Is(err, ErrWouldBlock) {
		t.Fatalf("second Open while held: %v, want ErrWouldBlock", err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(path, link); err != nil {
		t.Fatal(err)
	}
	if f, err := Open(link); err == nil {
		f.Close()
		t.Fatal("Open followed a symbolic link")
	}
}
