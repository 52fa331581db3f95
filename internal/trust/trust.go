// Package trust decides whether a state directory or a state file may be
// believed: the daemon runs as root and runs what its journal says, loads
// what its state cache says and opens doors by what its one-time sequences
// and hash archive say, so a file someone else could have written is as
// good as a command line they typed.
//
// The rule, applied by Dir, Open and OpenFile alike:
//
//   - the file is owned by root or by the daemon's own (effective) uid;
//   - neither group nor others may write it (mode & 022 == 0);
//   - a file is a regular file and is opened with O_NOFOLLOW, so a symbolic
//     link planted in its place is refused rather than followed;
//   - the directory holding it passes the same test (a directory someone
//     else can write lets them replace the file, whatever its own mode).
//
// Only the immediate directory is checked: the ones above it are the
// admin's layout (/var/lib, /etc), and a state directory that is itself a
// symbolic link is followed, its target being checked.
//
// Private is the other half: a file holding a secret (a key, a guest list)
// must not be readable by group or others. Callers decide whether that is
// an error (doormand's guest list) or a warning (knockd.conf with a Key).
package trust

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// ErrUntrusted is wrapped by every refusal of this package.
var ErrUntrusted = errors.New("not trusted")

type untrusted struct {
	path, what string
}

func (e *untrusted) Error() string { return e.path + ": " + e.what }
func (e *untrusted) Unwrap() error { return ErrUntrusted }

// owners are the uids a state file may belong to.
func trustedOwner(uid uint32) bool { return uid == 0 || uid == uint32(os.Geteuid()) }

// Check applies the rule to fi, what Lstat or Fstat returned for path.
// dir says whether path must be a directory (else a regular file).
func Check(path string, fi fs.FileInfo, dir bool) error {
	mode := fi.Mode()
	switch {
	case mode&fs.ModeSymlink != 0:
		return &untrusted{path, "is a symbolic link; state files are not opened through links"}
	case dir && !mode.IsDir():
		return &untrusted{path, "is not a directory"}
	case !dir && !mode.IsRegular():
		return &untrusted{path, "is not a regular file"}
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return &untrusted{path, "owner unknown"}
	}
	if !trustedOwner(st.Uid) {
		return &untrusted{path, fmt.Sprintf("owned by uid %d, not by root or by this daemon (uid %d); chown it", st.Uid, os.Geteuid())}
	}
	if mode.Perm()&0o022 != 0 {
		return &untrusted{path, fmt.Sprintf("writable by group or others (mode %04o); chmod go-w it", mode.Perm())}
	}
	return nil
}

// Dir checks the directory dir (following a symbolic link to it).
func Dir(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return err
	}
	return Check(dir, fi, true)
}

// OpenFile is os.OpenFile for a state file: it checks path's directory,
// opens path with O_NOFOLLOW (a symbolic link fails with ELOOP, reported as
// one) and checks the opened file itself with fstat, so what is checked is
// what is read. A file O_CREATE makes is ours and passes. A missing file is
// an error matching fs.ErrNotExist, as with os.OpenFile.
func OpenFile(path string, flag int, perm fs.FileMode) (*os.File, error) {
	if err := Dir(filepath.Dir(path)); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, flag|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, perm)
	if err != nil {
		if errors.Is(err, syscall.ELOOP) {
			return nil, &untrusted{path, "is a symbolic link; state files are not opened through links"}
		}
		return nil, err
	}
	fi, err := f.Stat()
	if err == nil {
		err = Check(path, fi, false)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// Open opens path read-only by OpenFile's rules.
func Open(path string) (*os.File, error) { return OpenFile(path, os.O_RDONLY, 0) }

// ReadFile reads path by OpenFile's rules, at most limit bytes (more is
// read as limit+1 so the caller can tell).
func ReadFile(path string, limit int64) ([]byte, error) {
	f, err := Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, limit+1))
}

// Private reports, as an error naming path, a file that group or others
// may read or write: one holding a secret. It follows symbolic links (the
// secret is where the link points). What to do about it is the caller's
// choice: doormand refuses its guest list, knockd.conf with a Key is only
// warned about.
func Private(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if !PrivateMode(fi.Mode()) {
		return &untrusted{path, fmt.Sprintf("holds a secret but is readable or writable by group or others (mode %04o); chmod go= it", fi.Mode().Perm())}
	}
	return nil
}

// PrivateMode is Private's rule on a mode: no group or other bits at all.
// doormand's guest list and knock's ~/.knockcf checks use it with their
// own messages.
func PrivateMode(mode fs.FileMode) bool { return mode.Perm()&0o077 == 0 }

// Command checks a program the daemon runs as root (a doorman script, a
// knockdaemon System line's program) by the rule above: the file and the
// directory holding it owned by root (or by the daemon's own uid) and
// writable by no one else, whoever could change either could run anything
// as root at the next knock. Symbolic links are followed (installed tools
// are often links, /sbin/iptables → /etc/alternatives/…), and each link's
// directory is checked as well as the file it ends at. A program that does
// not exist is not an error here: running it fails, and is logged.
func Command(path string) error {
	p := path
	for range 40 { // as the kernel's limit on links in a path
		if err := Dir(filepath.Dir(p)); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		fi, err := os.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			return Check(p, fi, false)
		}
		target, err := os.Readlink(p)
		if err != nil {
			return err
		}
		if !filepath.IsAbs(target) {
			target = filepath.Join(filepath.Dir(p), target)
		}
		p = target
	}
	return &untrusted{path, "too many levels of symbolic links"}
}
