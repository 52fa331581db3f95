package otp

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/doorward/doorward/formats/sequence"
	"github.com/doorward/doorward/formats/srcpos"
)

// seed adds every fixture and the spec's §16 OTS files.
func seed(f *testing.F) {
	files, err := filepath.Glob("testdata/*.seq")
	if err != nil || len(files) == 0 {
		f.Fatalf("no fixtures: %v", err)
	}
	for _, file := range files {
		src, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(src)
	}
	for _, s := range []string{
		"# c\n2001,2002\n 2003,2004\n2005:udp,2006\n",
		"1:icmp,2\n3001,3002\n3003,3004\n",
		"1,2\r\n\r\n\t3,4", "\n", "#", "7", "1,2\r3,4",
		strings.Repeat(" ", MaxLineLen) + "1\n2\n",
	} {
		f.Add([]byte(s))
	}
}

// FuzzParse checks parse against a reference written with strings.Split.
func FuzzParse(f *testing.F) {
	seed(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, problems := parse("f", data)

		var want []entry
		var wantProblems []int
		lines := strings.Split(string(data), "\n")
		if lines[len(lines)-1] == "" {
			lines = lines[:len(lines)-1] // after a final '\n', or an empty file
		}
		off := 0
		for i, l := range lines {
			trimmed := strings.Trim(l, " \t\n\v\f\r")
			if trimmed != "" && trimmed[0] != '#' {
				seq, err := sequence.Parse(trimmed)
				if err == nil && len(l) <= MaxLineLen {
					want = append(want, entry{line: i + 1, off: int64(off), raw: l, seq: seq})
				} else {
					wantProblems = append(wantProblems, i+1)
				}
			}
			off += len(l) + 1
		}
		if !slices.EqualFunc(entries, want, func(a, b entry) bool {
			return a.line == b.line && a.off == b.off && a.raw == b.raw && slices.Equal(a.seq, b.seq)
		}) {
			t.Fatalf("parse(%q) = %+v, want %+v", data, entries, want)
		}
		var gotProblems []int
		for _, p := range problems {
			gotProblems = append(gotProblems, p.(*srcpos.Error).Pos.Line)
		}
		if !slices.Equal(gotProblems, wantProblems) {
			t.Fatalf("parse(%q): problems on lines %v, want %v", data, gotProblems, wantProblems)
		}
	})
}

// FuzzFile opens arbitrary bytes and uses up to three sequences: Use must
// succeed on the current sequence and change exactly one byte, the first of
// the current line, to '#'.
func FuzzFile(f *testing.F) {
	seed(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "otp.seq")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		file, err := load(path)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		for range 3 {
			seq, line, ok := file.Current()
			if !ok {
				return
			}
			before, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			start := lineStart(before, line)
			raw, _, _ := bytes.Cut(before[start:], []byte("\n"))
			if got, err := sequence.Parse(string(raw)); err != nil || !slices.Equal(got, seq) {
				t.Fatalf("line %d %q parses to %v, %v; Current said %v", line, raw, got, err, seq)
			}
			if err := file.Use(seq); err != nil {
				t.Fatalf("Use(%v): %v", seq, err)
			}
			after, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			want := bytes.Clone(before)
			want[start] = '#'
			if !bytes.Equal(after, want) {
				t.Fatalf("Use of line %d turned %q into %q", line, before, after)
			}
			if changed, err := file.Changed(); changed || err != nil {
				t.Fatalf("Changed after our own Use: %v, %v", changed, err)
			}
			if _, next, ok := file.Current(); ok && next <= line {
				t.Fatalf("Current went from line %d to %d", line, next)
			}
		}
	})
}
