package trust

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// nobody is the uid the refusal tests chown to; they need root.
const nobody = 65534

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI=true: this test must run as root (it chowns to nobody)")
		}
		t.Skip("needs root to chown to nobody")
	}
}

func TestOpenFile(t *testing.T) {
	needRoot(t)
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string) string // returns the path to open
		want  string                                // "" for success
	}{
		{"good", func(t *testing.T, dir string) string {
			return write(t, dir, "f", 0o600)
		}, ""},
		{"missing", func(t *testing.T, dir string) string {
			return filepath.Join(dir, "none")
		}, "no such file"},
		{"world-writable dir", func(t *testing.T, dir string) string {
			p := write(t, dir, "f", 0o600)
			chmod(t, dir, 0o777)
			return p
		}, "writable by group or others (mode 0777)"},
		{"sticky /tmp-like dir", func(t *testing.T, dir string) string {
			p := write(t, dir, "f", 0o600)
			chmod(t, dir, 0o1777)
			return p
		}, "writable by group or others"},
		{"dir owned by nobody", func(t *testing.T, dir string) string {
			p := write(t, dir, "f", 0o600)
			chown(t, dir)
			return p
		}, "owned by uid 65534"},
		{"file owned by nobody", func(t *testing.T, dir string) string {
			p := write(t, dir, "f", 0o600)
			chown(t, p)
			return p
		}, "owned by uid 65534"},
		{"group-writable file", func(t *testing.T, dir string) string {
			return write(t, dir, "f", 0o620)
		}, "writable by group or others (mode 0620)"},
		{"symlinked file", func(t *testing.T, dir string) string {
			target := write(t, dir, "real", 0o600)
			link := filepath.Join(dir, "f")
			if err := os.Symlink(target, link); err != nil {
				t.Fatal(err)
			}
			return link
		}, "is a symbolic link"},
		{"fifo", func(t *testing.T, dir string) string {
			p := filepath.Join(dir, "f")
			if err := mkfifo(p); err != nil {
				t.Fatal(err)
			}
			return p
		}, "not a regular file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "state")
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			p := tt.setup(t, dir)
			f, err := Open(p)
			got := ""
			if err != nil {
				got = err.Error()
			} else {
				f.Close()
			}
			if (tt.want == "") != (got == "") || !strings.Contains(got, tt.want) {
				t.Fatalf("Open(%s) = %q, want %q", p, got, tt.want)
			}
			if tt.want != "" && tt.want != "no such file" {
				if !errors.Is(err, ErrUntrusted) || !strings.Contains(got, filepath.Base(p)) && !strings.Contains(got, dir) {
					t.Fatalf("error %q does not wrap ErrUntrusted or name the path", got)
				}
			}
		})
	}
}

func TestOpenFileCreates(t *testing.T) {
	dir := t.TempDir()
	f, err := OpenFile(filepath.Join(dir, "new"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
}

func TestPrivate(t *testing.T) {
	dir := t.TempDir()
	if err := Private(write(t, dir, "key", 0o600)); err != nil {
		t.Fatalf("0600: %v", err)
	}
	err := Private(write(t, dir, "open", 0o644))
	if err == nil || !strings.Contains(err.Error(), "readable or writable by group or others (mode 0644)") {
		t.Fatalf("0644: %v", err)
	}
}

func write(t *testing.T, dir, name string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte("x\n"), mode); err != nil {
		t.Fatal(err)
	}
	chmod(t, p, mode)
	return p
}

func chmod(t *testing.T, p string, mode os.FileMode) {
	t.Helper()
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}

func chown(t *testing.T, p string) {
	t.Helper()
	if err := os.Chown(p, nobody, nobody); err != nil {
		t.Fatal(err)
	}
}
