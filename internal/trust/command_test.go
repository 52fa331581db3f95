package trust

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCommand: a program is trusted only if neither it nor any directory
// on the way to it (through links) can be written by someone else.
func TestCommand(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, dir string) string // returns the program's path
		want  string                                // "" = trusted, else a substring of the error
	}{
		{"root's own", func(t *testing.T, dir string) string { return file(t, dir, "prog", 0o755) }, ""},
		{"group bits without write", func(t *testing.T, dir string) string { return file(t, dir, "prog", 0o750) }, ""},
		{"group-writable", func(t *testing.T, dir string) string { return file(t, dir, "prog", 0o775) },
			"prog: writable by group or others (mode 0775); chmod go-w it"},
		{"other-writable", func(t *testing.T, dir string) string { return file(t, dir, "prog", 0o757) }, "(mode 0757)"},
		{"in a writable directory", func(t *testing.T, dir string) string {
			sub := filepath.Join(dir, "bin")
			mkdir(t, sub, 0o777)
			return file(t, sub, "prog", 0o755)
		}, "bin: writable by group or others (mode 0777)"},
		{"link to a writable file", func(t *testing.T, dir string) string {
			target := file(t, dir, "real", 0o757)
			return link(t, target, filepath.Join(dir, "prog"))
		}, "real: writable by group or others"},
		{"relative link to a good file", func(t *testing.T, dir string) string {
			file(t, dir, "real", 0o755)
			return link(t, "real", filepath.Join(dir, "prog"))
		}, ""},
		{"good link in a writable directory", func(t *testing.T, dir string) string {
			target := file(t, dir, "real", 0o755)
			sub := filepath.Join(dir, "bin")
			mkdir(t, sub, 0o777)
			return link(t, target, filepath.Join(sub, "prog"))
		}, "bin: writable by group or others"},
		{"missing", func(t *testing.T, dir string) string { return filepath.Join(dir, "nothing") }, ""},
		{"a directory", func(t *testing.T, dir string) string {
			mkdir(t, filepath.Join(dir, "prog"), 0o755)
			return filepath.Join(dir, "prog")
		}, "is not a regular file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			err := Command(tc.setup(t, dir))
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("Command: %v, want %q", err, tc.want)
			}
		})
	}
}

func file(t *testing.T, dir, name string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil { // past the umask
		t.Fatal(err)
	}
	return p
}

func mkdir(t *testing.T, p string, mode os.FileMode) {
	t.Helper()
	if err := os.Mkdir(p, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}

func link(t *testing.T, target, p string) string {
	t.Helper()
	if err := os.Symlink(target, p); err != nil {
		t.Fatal(err)
	}
	return p
}
