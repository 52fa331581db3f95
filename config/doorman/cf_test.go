package doorman

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/doorward/doorward/config"
	"github.com/doorward/doorward/config/knockd"
	dmformat "github.com/doorward/doorward/formats/doorman"
)

// TestToConfig converts testdata/cf/*.cf to the knockd config knockd runs
// and compares its dump with the golden; files with "# wantErr:" lines
// must fail with exactly those errors.
func TestToConfig(t *testing.T) {
	files, _ := filepath.Glob("testdata/cf/*.cf")
	if len(files) == 0 {
		t.Fatal("no test files")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if !IsCF(src) {
				t.Fatal("IsCF = false")
			}
			var want []string
			for _, l := range strings.Split(string(src), "\n") {
				if w, ok := strings.CutPrefix(l, "# wantErr: "); ok {
					want = append(want, w)
				}
			}
			cfg, err := ToConfig(dmformat.ParseCF(filepath.Base(f), src), false)
			var got []string
			for _, e := range config.Errors(err) {
				got = append(got, e.Error())
			}
			if !slices.Equal(got, want) {
				t.Fatalf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			if len(want) > 0 {
				return
			}
			dump := dumpConfig(cfg)
			d, err := FromDoor(cfg.Doors[0])
			if err != nil {
				t.Fatalf("FromDoor: %v", err)
			}
			dump += d.Dump()
			golden := strings.TrimSuffix(f, ".cf") + ".golden"
			if *update {
				os.WriteFile(golden, []byte(dump), 0o644)
			}
			wantDump, _ := os.ReadFile(golden)
			if dump != string(wantDump) {
				t.Errorf("got:\n%s\nwant:\n%s", dump, wantDump)
			}
		})
	}
}

// dumpConfig prints what ToConfig sets: the options it fills and the door's
// directives with their cf lines.
func dumpConfig(cfg *knockd.Config) string {
	var b strings.Builder
	o := cfg.Options
	fmt.Fprintf(&b, "Interface = %q  # line %d\nLogFile = %q  # line %d\nPidFile = %q  # line %d\n",
		o.Interfaces, o.Pos["Interface"].Line, o.LogFile, o.Pos["LogFile"].Line, o.PidFile, o.Pos["PidFile"].Line)
	for _, d := range cfg.Doors {
		fmt.Fprintf(&b, "[%s] Type = %s\n", d.Name, d.Type)
		for _, p := range d.Params {
			fmt.Fprintf(&b, "  %s = %q  # line %d\n", p.Key, p.Value, p.Pos.Line)
		}
	}
	return b.String()
}

func TestIsCF(t *testing.T) {
	for src, want := range map[string]bool{
		"interface eth0\nport 1001\n":                   true,
		"# only comments\n":                             false,
		"[options]\n\tinterface = eth0\n":               false,
		"interface = eth0\n":                            false,
		"interface=eth0\n":                              false,
		"[door]\nsequence = 1,2,3\n":                    false,
		"FIREWALL-ADD /x\n":                             true,
		"something else entirely\nand more\n":           false,
		"  guestlist /etc/dd_guestlist # indented ok\n": true,
	} {
		if got := IsCF([]byte(src)); got != want {
			t.Errorf("IsCF(%q) = %v, want %v", src, got, want)
		}
	}
}

// TestDebugSkipsPermissions: knockd -D, like doormand -D, skips the file
// checks.
func TestDebugSkipsPermissions(t *testing.T) {
	src, _ := os.ReadFile("testdata/cf/sample.cf")
	cfg, err := ToConfig(dmformat.ParseCF("sample.cf", src), true)
	if err != nil {
		t.Fatal(err)
	}
	d, err := FromDoor(cfg.Doors[0])
	if err != nil {
		t.Fatal(err)
	}
	if d.CheckPermissions {
		t.Error("CheckPermissions with debug")
	}
}

// FuzzCF: converting whatever the lexer (formats/doorman, which fuzzes
// the lexer itself) makes of a file never panics.
func FuzzCF(f *testing.F) {
	files, _ := filepath.Glob("testdata/cf/*.cf")
	for _, file := range files {
		if src, err := os.ReadFile(file); err == nil {
			f.Add(src)
		}
	}
	f.Add([]byte("run \"a\" b \"c\n" + strings.Repeat("y", 300)))
	f.Fuzz(func(t *testing.T, src []byte) {
		if cfg, err := ToConfig(dmformat.ParseCF("fuzz", src), false); err == nil {
			FromDoor(cfg.Doors[0])
		}
		IsCF(src)
	})
}
