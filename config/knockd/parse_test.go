package knockd

import (
	"bytes"
	"errors"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/doorward/doorward/config"
)

var update = flag.Bool("update", false, "rewrite testdata/valid/*.golden from the parser's output")

// Fixtures are parsed under their base name so error messages in
// `# wantErr:` lines do not depend on where the repository is checked out.

func TestValid(t *testing.T) {
	files, err := filepath.Glob("testdata/valid/*.conf")
	if err != nil || len(files) == 0 {
		t.Fatalf("no valid fixtures: %v", err)
	}
	for _, file := range files {
		name := filepath.Base(file)
		t.Run(strings.TrimSuffix(name, ".conf"), func(t *testing.T) {
			src, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := Parse(name, src)
			if err != nil {
				t.Fatalf("Parse: unexpected error:\n%v", err)
			}
			got := cfg.Dump()
			golden := strings.TrimSuffix(file, ".conf") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("Dump() differs from %s (go test -update rewrites it):\n--- got\n%s--- want\n%s", golden, got, want)
			}

			// knockd trims CR, so every valid file must mean the same with
			// CRLF line endings.
			crlf := bytes.ReplaceAll(bytes.ReplaceAll(src, []byte("\r\n"), []byte("\n")), []byte("\n"), []byte("\r\n"))
			cfg2, err := Parse(name, crlf)
			if err != nil {
				t.Fatalf("Parse with CRLF: unexpected error:\n%v", err)
			}
			if got2 := cfg2.Dump(); got2 != got {
				t.Errorf("CRLF changes the result:\n--- CRLF\n%s--- LF\n%s", got2, got)
			}
		})
	}
}

func TestInvalid(t *testing.T) {
	files, err := filepath.Glob("testdata/invalid/*.conf")
	if err != nil || len(files) == 0 {
		t.Fatalf("no invalid fixtures: %v", err)
	}
	for _, file := range files {
		name := filepath.Base(file)
		t.Run(strings.TrimSuffix(name, ".conf"), func(t *testing.T) {
			src, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			want := wantErrs(src)
			if len(want) == 0 {
				t.Fatalf("%s has no `# wantErr:` line", file)
			}
			cfg, err := Parse(name, src)
			if err == nil {
				t.Fatalf("Parse: no error, want %q", want)
			}
			if cfg == nil {
				t.Fatal("Parse returned a nil *Config with its errors")
			}
			var list config.List
			if !errors.As(err, &list) {
				t.Fatalf("error is %T, want config.List", err)
			}
			got := make([]string, len(list))
			for i, e := range list {
				got[i] = e.Error()
				if e.Pos.File != name || e.Pos.Line < 1 {
					t.Errorf("error %q has position %+v, want %s:<line>", got[i], e.Pos, name)
				}
				if i > 0 && list[i-1].Pos.Line > e.Pos.Line {
					t.Errorf("errors not sorted by line: %q before %q", got[i-1], got[i])
				}
			}
			if !matchDistinct(want, got) {
				t.Errorf("errors do not match one to one\n--- got\n%s\n--- want (substrings)\n%s",
					strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		})
	}
}

// wantErrs returns the `# wantErr:` lines at the top of a fixture.
func wantErrs(src []byte) []string {
	var want []string
	for line := range strings.Lines(string(src)) {
		w, ok := strings.CutPrefix(strings.TrimSpace(line), "# wantErr:")
		if !ok {
			break
		}
		want = append(want, strings.TrimSpace(w))
	}
	return want
}

// matchDistinct reports whether each wanted substring matches its own
// reported error and no error is left over (bipartite matching, so the
// order of the wantErr lines does not matter).
func matchDistinct(want, got []string) bool {
	if len(want) != len(got) {
		return false
	}
	owner := make([]int, len(got)) // got index → want index, -1 if free
	for i := range owner {
		owner[i] = -1
	}
	var try func(w int, seen []bool) bool
	try = func(w int, seen []bool) bool {
		for g := range got {
			if seen[g] || !strings.Contains(got[g], want[w]) {
				continue
			}
			seen[g] = true
			if owner[g] < 0 || try(owner[g], seen) {
				owner[g] = w
				return true
			}
		}
		return false
	}
	for w := range want {
		if !try(w, make([]bool, len(got))) {
			return false
		}
	}
	return true
}

func TestLoad(t *testing.T) {
	path := filepath.Join("testdata", "valid", "manpage-1.conf")
	cfg, err := Load(path)
	if err != nil {
		t.Fatalf("Load(%q): %v", path, err)
	}
	if cfg.File != path || len(cfg.Doors) != 2 || cfg.Doors[0].Pos != (config.Pos{File: path, Line: 5}) {
		t.Errorf("Load(%q) = File %q, %d doors, first at %v; want the path in every position", path, cfg.File, len(cfg.Doors), cfg.Doors[0].Pos)
	}

	bad := filepath.Join("testdata", "invalid", "many-errors.conf")
	_, err = Load(bad)
	for _, e := range config.Errors(err) {
		if e.Pos.File != bad {
			t.Errorf("Load(%q): error %q is not positioned in that file", bad, e)
		}
	}
}

func TestLoadMissing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "no-such-knockd.conf")
	cfg, err := Load(path)
	if err == nil || cfg != nil {
		t.Fatalf("Load(%q) = %v, %v; want nil and an error", path, cfg, err)
	}
	if !strings.Contains(err.Error(), path) {
		t.Errorf("error %q does not mention %s", err, path)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("error %q is not fs.ErrNotExist", err)
	}
}

// TestErrorFields checks what callers rely on beyond the message: the key as
// the admin wrote it, and a cause that errors.Is/As can reach.
func TestErrorFields(t *testing.T) {
	src := "[door]\nSeq_Timeout = 1o\nSEQUENCE = 7000:icmp\n"
	_, err := Parse("k.conf", []byte(src))
	got := config.Errors(err)
	var keys []string
	var lines []int
	for _, e := range got {
		keys = append(keys, e.Key)
		lines = append(lines, e.Pos.Line)
	}
	if want := []string{"Seq_Timeout", "SEQUENCE"}; !slices.Equal(keys, want) || !slices.Equal(lines, []int{2, 3}) {
		t.Errorf("keys %q at lines %v, want %q at [2 3] (errors: %v)", keys, lines, want, err)
	}
}

// TestPartial checks that a file with errors still yields what did parse,
// for tools that show the admin how the rest of the file was understood.
func TestPartial(t *testing.T) {
	src := "[a]\nsequence = 1,2\nseq_timeout = x\n[b]\nsequence = 3\n"
	cfg, err := Parse("k.conf", []byte(src))
	if err == nil {
		t.Fatal("no error")
	}
	var names []string
	for _, d := range cfg.Doors {
		names = append(names, d.Name)
	}
	if !slices.Equal(names, []string{"a", "b"}) || cfg.Doors[0].SeqTimeout != DefaultSeqTimeout {
		t.Errorf("doors %q, first seq_timeout %v; want [a b] with the default kept", names, cfg.Doors[0].SeqTimeout)
	}
}

func TestParseSeconds(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		err  string
	}{
		{"0", 0, ""},
		{"10", 10 * time.Second, ""},
		{"010", 10 * time.Second, ""},
		{"9223372036", 9223372036 * time.Second, ""},
		{"9223372037", 0, `"9223372037" seconds is too large`},
		{"", 0, `"" is not a whole number of seconds`},
		{"abc", 0, `"abc" is not a whole number of seconds`},
		{"-5", 0, `"-5" is not a whole number of seconds`},
		{"1o", 0, `"1o" is not a whole number of seconds`},
		{"1_0", 0, `"1_0" is not a whole number of seconds`},
		{"5s", 0, `"5s" is not a whole number of seconds`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseSeconds(tt.in)
			var gotErr string
			if err != nil {
				gotErr = err.Error()
			}
			if got != tt.want || gotErr != tt.err {
				t.Errorf("parseSeconds(%q) = %v, %q; want %v, %q", tt.in, got, gotErr, tt.want, tt.err)
			}
		})
	}
}

func TestParseTCPFlags(t *testing.T) {
	tests := []struct {
		name string
		in   []string // one per tcpflags line
		want Flags
		err  string
	}{
		{"syn", []string{"syn"}, Flags{Set: 2}, ""},
		{"man page", []string{"fin,!ack"}, Flags{Set: 1, Clear: 16}, ""},
		{"spaces and case", []string{" SYN , !Ack "}, Flags{Set: 2, Clear: 16}, ""},
		{"overwrite", []string{"syn,!syn"}, Flags{Clear: 2}, ""},
		{"accumulate", []string{"syn", "!ack", "ack,!syn"}, Flags{Set: 16, Clear: 2}, ""},
		{"all", []string{"fin,syn,rst,psh,ack,urg"}, Flags{Set: 63}, ""},
		{"ece", []string{"ece"}, Flags{}, `unrecognized flag "ece"`},
		{"space separated", []string{"syn ack"}, Flags{}, `unrecognized flag "syn ack"`},
		{"empty", []string{""}, Flags{}, `unrecognized flag ""`},
		{"double bang", []string{"!!syn"}, Flags{}, `unrecognized flag "!!syn"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got Flags
			var err error
			for _, line := range tt.in {
				if got, err = parseTCPFlags(got, line); err != nil {
					break
				}
			}
			var gotErr string
			if err != nil {
				gotErr = err.Error()
				got = Flags{}
			}
			if got != tt.want || gotErr != tt.err {
				t.Errorf("tcpflags %q = %+v, %q; want %+v, %q", tt.in, got, gotErr, tt.want, tt.err)
			}
		})
	}
}

// fixtures returns every testdata config, to seed the fuzzers.
func fixtures(f *testing.F) [][]byte {
	files, err := filepath.Glob("testdata/*/*.conf")
	if err != nil || len(files) == 0 {
		f.Fatalf("no fixtures: %v", err)
	}
	var out [][]byte
	for _, file := range files {
		src, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, src)
	}
	return out
}

func FuzzParse(f *testing.F) {
	for _, src := range fixtures(f) {
		f.Add(src)
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		cfg, err := Parse("fuzz.conf", src)
		if cfg == nil {
			t.Fatal("nil *Config")
		}
		_ = cfg.Dump()
		if err != nil {
			list := config.Errors(err)
			if len(list) == 0 {
				t.Fatalf("error %v holds no positioned errors", err)
			}
			lines := bytes.Count(src, []byte("\n")) + 1
			for i, e := range list {
				if e.Pos.File != "fuzz.conf" || e.Pos.Line < 1 || e.Pos.Line > lines {
					t.Fatalf("error %q at %+v outside the file's %d lines", e, e.Pos, lines)
				}
				if i > 0 && list[i-1].Pos.Line > e.Pos.Line {
					t.Fatalf("errors not sorted: %v", err)
				}
			}
			return
		}
		for _, d := range cfg.Doors {
			if d.Type != "" { // another protocol's door: its setup checks it
				continue
			}
			// A One_Time_Sequences door gets its sequence from that file.
			// A rotating door derives its sequences.
			if d.OneTimeSequences == "" && d.Rotating == nil && len(d.Sequence) == 0 || len(d.Sequence) > MaxSequence {
				t.Fatalf("door %q: %d knocks", d.Name, len(d.Sequence))
			}
			for _, k := range d.Sequence {
				if k.Port == 0 || k.Proto != TCP && k.Proto != UDP {
					t.Fatalf("door %q: bad knock %+v", d.Name, k)
				}
			}
			if r := d.Rotating; r != nil && (r.Secret == "" || r.Ports.Len() < r.Length || r.Length < 1 || r.Period < 1) {
				t.Fatalf("door %q: rotating door accepted as %+v", d.Name, r)
			}
			if d.SeqTimeout < 0 || d.CmdTimeout < 0 {
				t.Fatalf("door %q: negative timeout", d.Name)
			}
		}
	})
}

// TestCommandFallback ties the _6 fixture to what the engine will run: an
// unset or empty _6 command runs nothing for IPv6 (knockd fell back to the
// IPv4 command when it was unset, rendering an IPv6 address into it).
func TestCommandFallback(t *testing.T) {
	cfg, err := Load(filepath.Join("testdata", "valid", "ipv6-commands.conf"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range cfg.Doors {
		got = append(got, d.Name, d.Start(false), d.Start(true), d.Stop(false), d.Stop(true))
	}
	want := []string{
		"both", "/sbin/iptables -A INPUT -s %IP% -j ACCEPT", "/sbin/ip6tables -A INPUT -s %IP% -j ACCEPT",
		"/sbin/iptables -D INPUT -s %IP% -j ACCEPT", "/sbin/ip6tables -D INPUT -s %IP% -j ACCEPT",
		"v4only", "/sbin/iptables -A INPUT -s %IP% -j ACCEPT", "", "/sbin/iptables -D INPUT -s %IP% -j ACCEPT", "",
		"fallback", "/usr/local/bin/open %IP%", "", "/usr/local/bin/close %IP%", "",
		"empty-command", "", "", "", "",
	}
	if !slices.Equal(got, want) {
		t.Errorf("commands (name, start v4, start v6, stop v4, stop v6):\n got %q\nwant %q", got, want)
	}
	var warns []string
	for _, d := range cfg.Doors {
		warns = append(warns, d.Warnings()...)
	}
	wantWarns := []string{
		"testdata/valid/ipv6-commands.conf:16: [fallback]: no Start_Command_6: knocks from IPv6 addresses will be ignored (knockd ran Start_Command for them)",
	}
	if !slices.Equal(warns, wantWarns) {
		t.Errorf("warnings:\n got %q\nwant %q", warns, wantWarns)
	}
}

// TestNftSetWarnings: a family covered by a set is not reported as
// ignored, and one covered by neither a set nor a command is.
func TestNftSetWarnings(t *testing.T) {
	cfg, err := Load(filepath.Join("testdata", "valid", "nft-sets.conf"))
	if err != nil {
		t.Fatal(err)
	}
	var warns []string
	for _, d := range cfg.Doors {
		warns = append(warns, d.Warnings()...)
	}
	want := []string{
		"testdata/valid/nft-sets.conf:9: [ssh]: no Start_Command_6: knocks from IPv6 addresses will be ignored (knockd ran Start_Command for them)",
		"testdata/valid/nft-sets.conf:15: [v6only]: no Nft_Set: knocks from IPv4 addresses will be ignored",
	}
	if !slices.Equal(warns, want) {
		t.Errorf("warnings:\n got %q\nwant %q", warns, want)
	}
}
