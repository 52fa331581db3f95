// Package flock takes the exclusive file locks that keep two daemons off
// one state directory or state cache.
package flock

import (
	"os"

	"github.com/doorward/doorward/internal/trust"
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

// Open opens (creating it 0600 if needed) the lock file at path by the
// state-file rules of internal/trust (its directory and the file owned by
// root or us and not writable by group or others, no symbolic link
// followed) and locks it with TryLock. The caller closes the file to
// release the lock.
func Open(path string) (*os.File, error) {
	f, err := trust.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := TryLock(f); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}
