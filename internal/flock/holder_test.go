package flock

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestHolder(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lock")
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	pid, known, err := Holder(path)
	if err != nil {
		t.Fatal(err)
	}
	if !known {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s unreadable", procLocks)
		}
		t.Skipf("%s unreadable", procLocks)
	}
	if pid != os.Getpid() {
		t.Errorf("held: pid %d, want ours %d", pid, os.Getpid())
	}
	f.Close()
	if pid, _, err := Holder(path); err != nil || pid != 0 {
		t.Errorf("released: pid %d, %v", pid, err)
	}
}

func TestHolderIn(t *testing.T) {
	const locks = `1: POSIX  ADVISORY  WRITE 100 fd:01:1317 0 EOF
2: -> FLOCK  ADVISORY  WRITE 200 fd:01:1317 0 EOF
3: FLOCK  ADVISORY  WRITE 300 fd:02:1317 0 EOF
4: FLOCK  ADVISORY  WRITE 400 fd:01:1317 0 EOF
`
	for _, tc := range []struct {
		major, minor uint32
		ino          uint64
		want         int
	}{
		{0xfd, 1, 1317, 400}, // not the POSIX lock, not the waiter
		{0xfd, 2, 1317, 300},
		{0xfd, 1, 1318, 0},
	} {
		if got, err := holderIn(strings.NewReader(locks), tc.major, tc.minor, tc.ino); err != nil || got != tc.want {
			t.Errorf("%x:%x:%d: %d, %v; want %d", tc.major, tc.minor, tc.ino, got, err, tc.want)
		}
	}
}
