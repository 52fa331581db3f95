package fwknop

import (
	"fmt"
	"os"
	"syscall"
)

// fileSystem is where access files are read from: the machine's, or a
// map in tests and fuzzing (an include must never reach the disk there).
type fileSystem interface {
	// ReadFile returns a regular file's content (a link to one is
	// followed); anything else is an error, so that an include of a FIFO
	// or a device cannot hang or flood the loader.
	ReadFile(name string) ([]byte, error)
	// ReadDir returns the names in a directory, sorted.
	ReadDir(name string) ([]string, error)
}

// permChecker is a fileSystem that can tell what is wrong with a file's
// permissions.
type permChecker interface {
	permWarnings(name string) []string
}

// osFS is the machine's files. With perms, files are checked as fwknopd's
// verify_file_perms_ownership checks them: they hold keys, so a file
// others may read or write, or owned by someone other than the user
// running us, is warned about (fwknopd warns too, and starts).
type osFS struct{ perms bool }

func (osFS) ReadFile(name string) ([]byte, error) {
	fi, err := os.Stat(name)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", name)
	}
	return os.ReadFile(name)
}

func (osFS) ReadDir(name string) ([]string, error) {
	es, err := os.ReadDir(name) // sorted by name
	if err != nil {
		return nil, err
	}
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.Name()
	}
	return out, nil
}

func (f osFS) permWarnings(name string) []string {
	fi, err := os.Stat(name)
	if !f.perms || err != nil {
		return nil
	}
	var w []string
	if fi.Mode().Perm()&0o077 != 0 {
		w = append(w, fmt.Sprintf("permissions %04o: this file holds keys and should be read and written by its owner only (0600)", fi.Mode().Perm()))
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Geteuid() {
		w = append(w, fmt.Sprintf("owned by uid %d, not by the user running knockd (uid %d)", st.Uid, os.Geteuid()))
	}
	return w
}
