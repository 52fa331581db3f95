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
)

// TestParseCF pins cfg_next_ascii_value's quirks (spec §3).
func TestParseCF(t *testing.T) {
	long := "run " + strings.Repeat("a", 130) // split after 127 bytes
	tests := []struct {
		name, src string
		want      []CFEntry
	}{
		{"key and value", "group  martink\n", []CFEntry{{"group", "martink", 1}}},
		{"value is one token", "interface eth0 extra\n", []CFEntry{{"interface", "eth0", 1}}},
		{"tabs", "\tport\t1001\t\n", []CFEntry{{"port", "1001", 1}}},
		{"comment anywhere", "secret abc#def\n# whole line\n", []CFEntry{{"secret", "abc", 1}}},
		{"comment inside quotes", "run \"ssh #x\"\n", []CFEntry{{"run", "", 1}}},
		{"quotes keep the first", "run \"ssh -l me %H%\"\n", []CFEntry{{"run", "\"ssh -l me %H%", 1}}},
		{"text after the last quote dropped", "run ab\"c d\" e\n", []CFEntry{{"run", "\"c d", 1}}},
		{"single quote is empty", "run \"ssh\n", []CFEntry{{"run", "", 1}}},
		{"single quotes are ordinary", "run 'ssh -l me'\n", []CFEntry{{"run", "'ssh", 1}}},
		{"key without value skipped", "port\nport 1002\n", []CFEntry{{"port", "1002", 2}}},
		{"CR is part of the value", "port 1001\r\n", []CFEntry{{"port", "1001\r", 1}}},
		{"NUL ends the line", "group a\x00b c\n", []CFEntry{{"group", "a", 1}}},
		{"no final newline", "group g", []CFEntry{{"group", "g", 1}}},
		// The first 127 bytes are a line; "aaaaaaa\n" is a key without value.
		{"long line split", long + "\n", []CFEntry{{"run", strings.Repeat("a", 123), 1}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := ParseCF("f", []byte(tc.src)).Entries
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
	cf := ParseCF("f", []byte("Secret one\nSECRET two\n"))
	if e, ok := cf.First("secret"); !ok || e.Value != "one" {
		t.Errorf("First = %+v, %v; want the first, case-insensitively", e, ok)
	}
}

// TestCFSplitPiece: the second piece of a long line is parsed on its own.
func TestCFSplitPiece(t *testing.T) {
	src := strings.Repeat("k", 127) + "port 9\n"
	got := ParseCF("f", []byte(src)).Entries
	want := []CFEntry{{"port", "9", 1}}
	if !slices.Equal(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

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
			cfg, err := ToConfig(ParseCF(filepath.Base(f), src), false)
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
	cfg, err := ToConfig(ParseCF("sample.cf", src), true)
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

// FuzzCF: the lexer never panics; keys and values hold no NUL, '#' or
// newline, and keys no blank; converting never panics either.
func FuzzCF(f *testing.F) {
	files, _ := filepath.Glob("testdata/cf/*.cf")
	for _, file := range files {
		if src, err := os.ReadFile(file); err == nil {
			f.Add(src)
		}
	}
	f.Add([]byte("run \"a\" b \"c\n" + strings.Repeat("y", 300)))
	f.Fuzz(func(t *testing.T, src []byte) {
		cf := ParseCF("fuzz", src)
		for _, e := range cf.Entries {
			if e.Key == "" || strings.ContainsAny(e.Key, " \t\n#\x00") || strings.ContainsAny(e.Value, "\n#\x00") {
				t.Fatalf("entry %+v", e)
			}
			if len(e.Key)+len(e.Value) > cfLine {
				t.Fatalf("entry longer than a piece: %+v", e)
			}
		}
		if cfg, err := ToConfig(cf, false); err == nil {
			FromDoor(cfg.Doors[0])
		}
		IsCF(src)
	})
}
