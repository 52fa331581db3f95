// Package trusttest plants the untrusted state files every user of
// internal/trust must refuse, so each package tests its own refusal with
// the same cases.
package trusttest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Nobody is the uid the cases chown to.
const Nobody = 65534

// Case is one way a state file can be planted.
type Case struct {
	Name string
	// Plant makes path (in its directory, which the test owns, 0700) a
	// file holding data that must not be believed.
	Plant func(t *testing.T, path string, data []byte)
	Want  string // in the refusal's message
}

// Cases are the refusals: a world-writable directory, a file owned by
// another uid, a file writable by group, and a symbolic link. They chown,
// so they need root: under CI=true not being root fails the test,
// elsewhere it skips.
func Cases(t *testing.T) []Case {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI=true: the trust cases need root (they chown to nobody)")
		}
		t.Skip("the trust cases need root (they chown to nobody)")
	}
	return []Case{
		{"world-writable directory", func(t *testing.T, path string, data []byte) {
			write(t, path, data, 0o600)
			must(t, os.Chmod(filepath.Dir(path), 0o777))
		}, "writable by group or others (mode 0777)"},
		{"file owned by nobody", func(t *testing.T, path string, data []byte) {
			write(t, path, data, 0o600)
			must(t, os.Chown(path, Nobody, Nobody))
		}, "owned by uid 65534"},
		{"group-writable file", func(t *testing.T, path string, data []byte) {
			write(t, path, data, 0o660)
		}, "writable by group or others (mode 0660)"},
		{"symbolic link", func(t *testing.T, path string, data []byte) {
			target := filepath.Join(t.TempDir(), "elsewhere")
			write(t, target, data, 0o600)
			must(t, os.Symlink(target, path))
		}, "is a symbolic link"},
	}
}

// Run plants each case as file (holding data) in a fresh 0700 directory,
// one subtest per case, and calls open with the directory: it must fail
// with the case's reason and the directory's path in its message. open
// releases whatever it opened if it wrongly succeeds.
func Run(t *testing.T, file string, data []byte, open func(dir string) error) {
	t.Helper()
	for _, c := range Cases(t) {
		t.Run(file+"/"+c.Name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "state")
			must(t, os.Mkdir(dir, 0o700))
			c.Plant(t, filepath.Join(dir, file), data)
			err := open(dir)
			if err == nil {
				t.Fatal("accepted it")
			}
			if !strings.Contains(err.Error(), c.Want) || !strings.Contains(err.Error(), dir) {
				t.Fatalf("%v; want %q naming %s", err, c.Want, dir)
			}
		})
	}
}

func write(t *testing.T, path string, data []byte, mode os.FileMode) {
	t.Helper()
	must(t, os.WriteFile(path, data, mode))
	must(t, os.Chmod(path, mode))
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
