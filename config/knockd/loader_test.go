package knockd

import (
	"os"
	"path/filepath"
	"testing"
)

// TestLoadFile: a registered dialect that recognises a file loads it, with
// the command line's options; any other file is read as a knockd.conf.
func TestLoadFile(t *testing.T) {
	saved := loaders
	loaders = nil
	t.Cleanup(func() { loaders = saved })
	RegisterLoader(Loader{
		Name:      "test",
		Recognise: func(path string, src []byte) bool { return filepath.Ext(path) == ".test" && string(src) == "magic\n" },
		Load: func(path string, _ []byte, opt LoadOptions) (*Config, error) {
			name := "plain"
			if opt.Debug {
				name = "debug"
			}
			return &Config{File: path, Doors: []*Door{{Name: name, Type: "test"}}}, nil
		},
	})
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		path  string
		debug bool
		want  string
	}{
		{write("a.test", "magic\n"), true, "debug/test"},
		{write("b.test", "[ssh]\n\tSequence = 7000\n"), false, "ssh/"},
	} {
		cfg, err := LoadFile(tc.path, LoadOptions{Debug: tc.debug})
		if err != nil {
			t.Fatalf("%s: %v", tc.path, err)
		}
		if len(cfg.Doors) != 1 || cfg.Doors[0].Name+"/"+cfg.Doors[0].Type != tc.want {
			t.Errorf("%s: doors %+v, want %s", tc.path, cfg.Doors, tc.want)
		}
	}
	if _, err := LoadFile(filepath.Join(dir, "none"), LoadOptions{}); err == nil {
		t.Error("a missing file loaded")
	}
	for name, l := range map[string]Loader{
		"incomplete": {Name: "x"},
		"twice":      loaders[0],
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			RegisterLoader(l)
		})
	}
}
