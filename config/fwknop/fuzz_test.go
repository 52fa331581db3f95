package fwknop

import (
	"errors"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/doorward/doorward/config"
)

// mapFS is a fileSystem of a few files, so that fuzzed includes read
// nothing from the disk.
type mapFS map[string]string

func (m mapFS) ReadFile(name string) ([]byte, error) {
	if s, ok := m[path.Clean(name)]; ok {
		return []byte(s), nil
	}
	return nil, fs.ErrNotExist
}

func (m mapFS) ReadDir(name string) ([]string, error) {
	dir := path.Clean(name) + "/"
	var out []string
	for f := range m {
		if rest, ok := strings.CutPrefix(f, dir); ok && !strings.Contains(rest, "/") {
			out = append(out, rest)
		}
	}
	if out == nil {
		return nil, fs.ErrNotExist
	}
	slices.Sort(out)
	return out, nil
}

// fuzzFS is what fuzzed configs may include: an access file including
// itself, a folder, a keys file.
var fuzzFS = mapFS{
	"/f/a.conf":      "SOURCE ANY\nKEY k\n%include /f/a.conf\n",
	"/f/d/1.conf":    "SOURCE 1\n%include_folder /f/d\n",
	"/f/keys":        "KEY_BASE64 abc=\nOPEN_PORTS x\n",
	"/f/access.conf": "SOURCE ANY\nKEY k\n",
}

func seeds(f *testing.F, pattern string) {
	files, _ := filepath.Glob(pattern)
	if len(files) == 0 {
		f.Fatalf("no seeds %s", pattern)
	}
	for _, file := range files {
		if src, err := os.ReadFile(file); err == nil {
			f.Add(src)
		}
	}
}

// checkLoad: whatever the input, a load ends, and what it returns is
// consistent: every error has a place in a file, doors are fwknop doors
// starting with their SOURCE, and warnings ride only on the first door.
func checkLoad(t *testing.T, name string, src []byte) {
	cfg, err := load(name, src, fuzzFS)
	for _, e := range config.Errors(err) {
		if e.Pos.File == "" {
			t.Fatalf("error without a file: %v", e)
		}
	}
	for i, d := range cfg.Doors {
		if d.Type != Type || len(d.Params) == 0 || d.Params[0].Key != "SOURCE" || d.Pos.Line == 0 {
			t.Fatalf("door %d: %+v", i, d)
		}
		if i > 0 && len(Warnings(d)) > 0 {
			t.Fatalf("warnings on door %d", i)
		}
		for _, p := range d.Params {
			if p.Pos.File == "" || p.Key == "" {
				t.Fatalf("door %d: param %+v without a place", i, p)
			}
		}
	}
	if err == nil && len(cfg.Doors) == 0 {
		t.Fatal("no doors and no error")
	}
}

// FuzzAccess reads fuzzed access.conf files (with includes of fuzzFS).
func FuzzAccess(f *testing.F) {
	seeds(f, "testdata/cases/*/*.conf")
	f.Add([]byte("SOURCE ANY\n%include /f/a.conf\n%include_folder /f/d\n%include_keys /f/keys\nFORCE_NAT x\n"))
	f.Fuzz(func(t *testing.T, src []byte) {
		checkLoad(t, "/f/access.conf", src)
	})
}

// FuzzServer reads fuzzed fwknopd.conf files, whose access file is
// fuzzFS's.
func FuzzServer(f *testing.F) {
	seeds(f, "testdata/cases/*/fwknopd.conf")
	f.Add([]byte("FWKNOP_RUN_DIR /r;\nDIGEST_FILE $FWKNOP_RUN_DIR/d x;\nACCESS_FILE $CONFIG_FILE;\nACCESS_FOLDER /f/d/\n"))
	f.Fuzz(func(t *testing.T, src []byte) {
		checkLoad(t, "/f/fwknopd.conf", src)
		kindOf("/f/x", src)
	})
}

// TestMapFS: the fuzz file system lists a folder as os.ReadDir would.
func TestMapFS(t *testing.T) {
	got, err := fuzzFS.ReadDir("/f/")
	if err != nil || !slices.Equal(got, []string{"a.conf", "access.conf", "keys"}) {
		t.Errorf("ReadDir = %q, %v", got, err)
	}
	if _, err := fuzzFS.ReadFile("/nope"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ReadFile of a missing file: %v", err)
	}
}
