// Package flock takes the exclusive file locks that keep two daemons off
// one state directory or state cache.
package flock

import (
	"os"

	"golang.org/x/sys/unix"
)

// ErrWouldBlock is what TryLock returns (matched with errors.Is) when
// another process holds the lock.
var ErrWouldBlock = unix.EWOULDBLOCK

// TryLock takes an exclusive lock on f without waiting. The lock belongs to
// the open file description: closing f releases it, and so does the death
// of the process, however it dies.
func TryLock(f *os.File) error {
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err != unix.EINTR {
			return err
		}
	}
}
