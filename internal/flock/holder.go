package flock

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// procLocks is where Linux lists the locks held on the system.
var procLocks = "/proc/locks"

// Holder says which process holds a flock on the file at path, without
// taking or testing the lock itself: a reader that took it, even for a
// moment, could stop the daemon from starting. It reads /proc/locks and
// matches the file's device and inode. known is false when the list
// cannot be read (no /proc); pid is 0 when no one holds the lock. The pid
// is as the holder's pid namespace saw it when it took the lock.
func Holder(path string) (pid int, known bool, err error) {
	fi, err := os.Stat(path)
	if err != nil {
		return 0, false, err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false, nil
	}
	f, err := os.Open(procLocks)
	if err != nil {
		return 0, false, nil
	}
	defer f.Close()
	pid, err = holderIn(f, unix.Major(uint64(st.Dev)), unix.Minor(uint64(st.Dev)), st.Ino)
	if err != nil {
		return 0, false, fmt.Errorf("%s: %w", procLocks, err)
	}
	return pid, true, nil
}

// holderIn finds a granted FLOCK on (major:minor:ino) in a /proc/locks
// listing, lines like
//
//	1: FLOCK  ADVISORY  WRITE 4242 fd:01:1317 0 EOF
//	1: -> FLOCK  ADVISORY  WRITE 4343 fd:01:1317 0 EOF   (a waiter)
//
// The device is major:minor in hex.
func holderIn(r io.Reader, major, minor uint32, ino uint64) (int, error) {
	want := []byte(fmt.Sprintf("%02x:%02x:%d", major, minor, ino))
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := bytes.Fields(sc.Bytes())
		if len(f) < 6 || string(f[1]) != "FLOCK" || !bytes.Equal(f[5], want) {
			continue
		}
		pid, err := strconv.Atoi(string(f[4]))
		if err != nil {
			return 0, fmt.Errorf("bad pid in %q", sc.Text())
		}
		return pid, nil
	}
	return 0, sc.Err()
}
