package fwknop

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/doorward/doorward/config"
	"github.com/doorward/doorward/config/knockd"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// TestCases loads each testdata/cases/<name>/ through the registered
// loader, as `knockd -c` would: its fwknopd.conf if it has one, else its
// access.conf. The whole result (options, doors and their Params, the
// warnings, the errors) is compared with want.golden beside it; paths are
// shown relative to the case folder.
func TestCases(t *testing.T) {
	dirs, _ := filepath.Glob("testdata/cases/*")
	if len(dirs) == 0 {
		t.Fatal("no test cases")
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			root := filepath.Join(dir, "fwknopd.conf")
			if _, err := os.Stat(root); err != nil {
				root = filepath.Join(dir, "access.conf")
			}
			// Debug: no permission warnings, which would depend on the
			// checkout's umask (TestPermissions checks them).
			cfg, err := knockd.LoadFile(root, knockd.LoadOptions{Debug: true})
			abs, _ := filepath.Abs(dir)
			got := dump(cfg, err)
			for _, d := range []string{abs, dir} {
				got = strings.ReplaceAll(got, d+string(filepath.Separator), "")
			}
			golden := filepath.Join(dir, "want.golden")
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if got != string(want) {
				t.Errorf("got:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

// dump prints all a load returns, in a stable form.
func dump(cfg *knockd.Config, err error) string {
	var b strings.Builder
	for _, e := range config.Errors(err) {
		fmt.Fprintf(&b, "error: %s\n", e)
	}
	if cfg == nil {
		return b.String()
	}
	o := cfg.Options
	fmt.Fprintf(&b, "options: Interface = %q (%s), UseSyslog = %v\n", o.Interfaces, o.Pos["Interface"], o.UseSyslog)
	for _, d := range cfg.Doors {
		fmt.Fprintf(&b, "[%s] Type = %s  # %s\n", d.Name, d.Type, d.Pos)
		for _, p := range d.Params {
			if p.Key != WarningKey {
				fmt.Fprintf(&b, "  %s = %q  # %s\n", p.Key, p.Value, p.Pos)
			}
		}
	}
	if len(cfg.Doors) > 0 {
		for _, w := range Warnings(cfg.Doors[0]) {
			fmt.Fprintf(&b, "warning: %s\n", w)
		}
	}
	return b.String()
}

// TestPermissions: files of keys others may read are warned about, as
// fwknopd does, unless -D (Debug) is given.
func TestPermissions(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "access.conf")
	if err := os.WriteFile(conf, []byte("SOURCE ANY\nKEY k\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(conf, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, debug := range []bool{false, true} {
		cfg, err := knockd.LoadFile(conf, knockd.LoadOptions{Debug: debug})
		if err != nil {
			t.Fatal(err)
		}
		got := strings.Join(Warnings(cfg.Doors[0]), "\n")
		want := ""
		if !debug {
			want = conf + ": permissions 0644: this file holds keys and should be read and written by its owner only (0600)"
		}
		if got != want {
			t.Errorf("Debug %v: warnings %q, want %q", debug, got, want)
		}
	}
}
