// Package secret is how the clients get a secret without putting it in
// the process list: from a file only its owner can read, or asked for on
// the terminal without echo. knock doorman and knock knockdaemon share it.
package secret

import (
	"bytes"
	"errors"
	"fmt"
	"os"
)

// Zero overwrites a secret in place, as knock does on every exit path. Go
// may have copied it (strings, the GC); this is hygiene, not a guarantee.
func Zero(b []byte) {
	for i := range b {
		b[i] = 0
	}
}

// ReadFile reads a secret from the file at path: its first line, without
// the line end. The file must not be readable or writable by group or
// others (as ssh insists for a private key, and knock for ~/.knockcf), and
// must not be empty.
func ReadFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", path)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%s: must not be readable or writable by group or others (chmod 600 %s)", path, path)
	}
	b := make([]byte, 0, 256)
	buf := make([]byte, 4096)
	for len(b) < 1<<16 {
		n, err := f.Read(buf)
		b = append(b, buf[:n]...)
		Zero(buf[:n])
		if err != nil {
			break
		}
	}
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		Zero(b[i:])
		b = b[:i]
	}
	b = bytes.TrimSuffix(b, []byte("\r"))
	if len(b) == 0 {
		return nil, fmt.Errorf("%s: %w", path, errEmpty)
	}
	return b, nil
}

var errEmpty = errors.New("empty")

// ReadableByOthers reports whether the file at path can be read by group
// or others: a config file that holds a secret deserves a warning then.
func ReadableByOthers(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().Perm()&0o044 != 0
}
