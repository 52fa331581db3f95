package otp

import (
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/doorward/doorward/formats/sequence"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the package's output")

// openCopy writes src to otp.seq in a fresh directory, makes that the
// working directory (so messages read "otp.seq:N: ...") and opens it.
func openCopy(t *testing.T, src string) (*File, string) {
	t.Helper()
	path := writeCopy(t, src)
	f, err := load("otp.seq")
	if err != nil {
		t.Fatal(err)
	}
	return f, path
}

// writeCopy is openCopy without the Open.
func writeCopy(t *testing.T, src string) string {
	t.Helper()
	dir := t.TempDir()
	t.Chdir(dir)
	if err := os.WriteFile("otp.seq", []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "otp.seq")
}

func current(f *File) string {
	seq, line, ok := f.Current()
	if !ok {
		return "none"
	}
	return fmt.Sprintf("line %d %s", line, sequence.Format(seq))
}

func problems(f *File) []string {
	var out []string
	for _, p := range f.Problems() {
		out = append(out, p.Error())
	}
	return out
}

func readString(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func mustSeq(t *testing.T, s string) []sequence.Knock {
	t.Helper()
	seq, err := sequence.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return seq
}

// errKind names an error by the sentinel it wraps, so rows need not spell
// out messages that hold temporary paths.
func errKind(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, ErrNotInFile):
		return "ErrNotInFile"
	case errors.Is(err, ErrNoSequence):
		return "ErrNoSequence"
	case errors.Is(err, fs.ErrNotExist):
		return "ErrNotExist"
	case errors.Is(err, fs.ErrPermission):
		return "ErrPermission"
	}
	return "error: " + err.Error()
}

// TestGolden consumes each testdata/*.seq until no sequence is left, then
// replays the first sequence used, and compares the transcript (every file
// state byte for byte, every Current) with testdata/*.golden.
func TestGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/*.seq")
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".seq")
		t.Run(name, func(t *testing.T) {
			src, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			golden, err := filepath.Abs(strings.TrimSuffix(file, ".seq") + ".golden")
			if err != nil {
				t.Fatal(err)
			}
			f, path := openCopy(t, string(src))
			var b strings.Builder
			fmt.Fprintf(&b, "file: %q\n", src)
			for _, p := range problems(f) {
				fmt.Fprintf(&b, "problem: %s\n", p)
			}
			fmt.Fprintf(&b, "current: %s\n", current(f))
			var first []sequence.Knock
			for range 20 {
				seq, _, ok := f.Current()
				if !ok {
					break
				}
				if first == nil {
					first = seq
				}
				fmt.Fprintf(&b, "use %s: %s\n", sequence.Format(seq), errKind(f.Use(seq)))
				fmt.Fprintf(&b, "file: %q\n", readString(t, path))
				fmt.Fprintf(&b, "current: %s\n", current(f))
			}
			if first != nil {
				fmt.Fprintf(&b, "replay %s: %s\n", sequence.Format(first), errKind(f.Use(first)))
			}
			got := b.String()
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if got != string(want) {
				t.Errorf("transcript:\n%s\nwant (%s):\n%s", got, golden, want)
			}
		})
	}
}

// TestKnockdRuns replays the spec's §16 runs against knockd 0.8: the bytes
// knockd wrote (OTS) and, for OTS2, what it should have written.
func TestKnockdRuns(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string // after Open, then after each Use: file bytes | Current
	}{{
		name: "OTS",
		src:  "# c\n2001,2002\n 2003,2004\n2005:udp,2006\n",
		want: []string{
			"# c\n2001,2002\n 2003,2004\n2005:udp,2006\n | line 2 2001:tcp,2002:tcp",
			"# c\n#001,2002\n 2003,2004\n2005:udp,2006\n | line 3 2003:tcp,2004:tcp",
			"# c\n#001,2002\n#2003,2004\n2005:udp,2006\n | line 4 2005:udp,2006:tcp",
			"# c\n#001,2002\n#2003,2004\n#005:udp,2006\n | none",
		},
	}, {
		// knockd wrote "#:icmp,2" and accepted 3001,3002 twice.
		name: "OTS2",
		src:  "1:icmp,2\n3001,3002\n3003,3004\n",
		want: []string{
			"1:icmp,2\n3001,3002\n3003,3004\n | line 2 3001:tcp,3002:tcp",
			"1:icmp,2\n#001,3002\n3003,3004\n | line 3 3003:tcp,3004:tcp",
			"1:icmp,2\n#001,3002\n#003,3004\n | none",
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, path := openCopy(t, tt.src)
			got := []string{readString(t, path) + " | " + current(f)}
			for {
				seq, _, ok := f.Current()
				if !ok {
					break
				}
				if err := f.Use(seq); err != nil {
					t.Fatalf("Use(%v): %v", seq, err)
				}
				got = append(got, readString(t, path)+" | "+current(f))
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

// TestNoReplay is OTS2's regression: once used, 3001,3002 is refused, by
// this File and by a fresh Open, and is never Current again.
func TestNoReplay(t *testing.T) {
	f, path := openCopy(t, "1:icmp,2\n3001,3002\n3003,3004\n")
	used := mustSeq(t, "3001,3002")
	type result struct {
		Use, Again, Reopened, Current string
	}
	var got result
	got.Use = errKind(f.Use(used))
	got.Again = errKind(f.Use(used))
	g, err := load(path)
	if err != nil {
		t.Fatal(err)
	}
	got.Reopened = errKind(g.Use(used))
	got.Current = current(g)
	want := result{Use: "ok", Again: "ErrNotInFile", Reopened: "ErrNotInFile", Current: "line 3 3003:tcp,3004:tcp"}
	if got != want {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
}

// TestLines pins where the '#' goes for each line shape, and what is a
// problem.
func TestLines(t *testing.T) {
	long := strings.Repeat(" ", MaxLineLen-len("1,2")) + "1,2"
	type result struct {
		Current  string
		Problems []string
		After    string // the file after one Use of Current
	}
	tests := []struct {
		name string
		src  string
		want result
	}{{
		name: "CRLF",
		src:  "2001,2002\r\n 2003,2004\r\n",
		want: result{Current: "line 1 2001:tcp,2002:tcp", After: "#001,2002\r\n 2003,2004\r\n"},
	}, {
		name: "CRLF second line",
		src:  "# c\r\n\r\n 2003,2004\r\n",
		want: result{Current: "line 3 2003:tcp,2004:tcp", After: "# c\r\n\r\n#2003,2004\r\n"},
	}, {
		name: "no final newline",
		src:  "#used\n 2001,2002",
		want: result{Current: "line 2 2001:tcp,2002:tcp", After: "#used\n#2001,2002"},
	}, {
		name: "one byte",
		src:  "7",
		want: result{Current: "line 1 7:tcp", After: "#"},
	}, {
		name: "leading tab",
		src:  "\n\n\t2001:udp,2002\n",
		want: result{Current: "line 3 2001:udp,2002:tcp", After: "\n\n#2001:udp,2002\n"},
	}, {
		name: "blank lines of whitespace",
		src:  " \t\r\n\v\f\n\r\n 9,10\n",
		want: result{Current: "line 4 9:tcp,10:tcp", After: " \t\r\n\v\f\n\r\n#9,10\n"},
	}, {
		name: "indented comment",
		src:  "   # 1,2\n 3,4\n",
		want: result{Current: "line 2 3:tcp,4:tcp", After: "   # 1,2\n#3,4\n"},
	}, {
		name: "unparseable lines before",
		src:  "1:icmp,2\n70000\n1,,2\nabc\n\x00\n 5,6\n",
		want: result{
			Current: "line 6 5:tcp,6:tcp",
			Problems: []string{
				`otp.seq:1: line skipped: unknown protocol "icmp" in knock sequence`,
				`otp.seq:2: line skipped: port 70000 is invalid (must be 1-65535)`,
				`otp.seq:3: line skipped: empty element in knock sequence`,
				`otp.seq:4: line skipped: port "abc" is not a number`,
				`otp.seq:5: line skipped: port "\x00" is not a number`,
			},
			After: "1:icmp,2\n70000\n1,,2\nabc\n\x00\n#5,6\n",
		},
	}, {
		name: "lone CR is not a line end",
		src:  "1,2\r3,4\n",
		want: result{
			Problems: []string{`otp.seq:1: line skipped: port "2\r3" is not a number`},
			Current:  "none",
		},
	}, {
		name: "line of MaxLineLen bytes",
		src:  long + "\n",
		want: result{Current: "line 1 1:tcp,2:tcp", After: "#" + long[1:] + "\n"},
	}, {
		name: "line longer than MaxLineLen",
		src:  " " + long + "\n3,4\n",
		want: result{
			Current:  "line 2 3:tcp,4:tcp",
			Problems: []string{"otp.seq:1: line skipped: line is 4096 bytes long, more than 4095"},
			After:    " " + long + "\n#,4\n",
		},
	}, {
		name: "long comment is a comment",
		src:  "#" + strings.Repeat("x", 10000) + "\n3,4\n",
		want: result{Current: "line 2 3:tcp,4:tcp", After: "#" + strings.Repeat("x", 10000) + "\n#,4\n"},
	}, {
		name: "empty file",
		src:  "",
		want: result{Current: "none"},
	}, {
		name: "all used",
		src:  "#001,2002\n#2003,2004\n",
		want: result{Current: "none"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, path := openCopy(t, tt.src)
			got := result{Current: current(f), Problems: problems(f)}
			if seq, _, ok := f.Current(); ok {
				if err := f.Use(seq); err != nil {
					t.Fatal(err)
				}
				got.After = readString(t, path)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %#v\nwant %#v", got, tt.want)
			}
		})
	}
}

// TestEdits edits the file between Open and Use, as an admin or an editor
// would, and checks what Changed, Use and Reload make of it.
func TestEdits(t *testing.T) {
	// inPlace rewrites the file through its inode (like `cat > file` or an
	// editor with backupcopy=yes), then sets an mtime that cannot equal the
	// one Open saw: an edit of the same size within the filesystem's
	// timestamp granularity would otherwise be invisible to a stat.
	inPlace := func(src string) func(*testing.T, string) {
		return func(t *testing.T, path string) {
			if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
				t.Fatal(err)
			}
			old := time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)
			if err := os.Chtimes(path, old, old); err != nil {
				t.Fatal(err)
			}
		}
	}
	// byRename replaces the file as most editors and config managers do.
	byRename := func(src string) func(*testing.T, string) {
		return func(t *testing.T, path string) {
			tmp := path + ".new"
			if err := os.WriteFile(tmp, []byte(src), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(tmp, path); err != nil {
				t.Fatal(err)
			}
		}
	}
	const src = "2001,2002\n 2003,2004\n"
	type result struct {
		Changed      string // Changed before Use
		Use          string
		File         string // the path after Use
		Original     string // the inode Open read, after Use
		Current      string // after Use
		ChangedAfter string // Changed after Use
		Reloaded     string // Reload, then Current
	}
	tests := []struct {
		name string
		src  string
		edit func(*testing.T, string)
		use  string // the sequence knocked; Open's Current if empty
		want result
	}{{
		name: "no edit",
		src:  src,
		edit: func(*testing.T, string) {},
		want: result{
			Changed: "false", Use: "ok",
			File: "#001,2002\n 2003,2004\n", Original: "#001,2002\n 2003,2004\n",
			Current: "line 2 2003:tcp,2004:tcp", ChangedAfter: "false", Reloaded: "ok line 2 2003:tcp,2004:tcp",
		},
	}, {
		name: "line inserted before the current one",
		src:  src,
		edit: inPlace(" 9001,9002\n" + src),
		want: result{
			Changed: "true", Use: "ok",
			File: " 9001,9002\n#001,2002\n 2003,2004\n", Original: " 9001,9002\n#001,2002\n 2003,2004\n",
			Current: "line 1 9001:tcp,9002:tcp", ChangedAfter: "false", Reloaded: "ok line 1 9001:tcp,9002:tcp",
		},
	}, {
		name: "current line deleted",
		src:  src,
		edit: inPlace(" 2003,2004\n"),
		want: result{
			Changed: "true", Use: "ErrNotInFile",
			File: " 2003,2004\n", Original: " 2003,2004\n",
			Current: "line 1 2001:tcp,2002:tcp", ChangedAfter: "true", Reloaded: "ok line 1 2003:tcp,2004:tcp",
		},
	}, {
		name: "current line commented out by the admin",
		src:  src,
		edit: inPlace("#001,2002\n 2003,2004\n"),
		want: result{
			Changed: "true", Use: "ErrNotInFile",
			File: "#001,2002\n 2003,2004\n", Original: "#001,2002\n 2003,2004\n",
			Current: "line 1 2001:tcp,2002:tcp", ChangedAfter: "true", Reloaded: "ok line 2 2003:tcp,2004:tcp",
		},
	}, {
		name: "current line changed to another sequence of the same length",
		src:  src,
		edit: inPlace("2001,2009\n 2003,2004\n"),
		want: result{
			Changed: "true", Use: "ErrNotInFile",
			File: "2001,2009\n 2003,2004\n", Original: "2001,2009\n 2003,2004\n",
			Current: "line 1 2001:tcp,2002:tcp", ChangedAfter: "true", Reloaded: "ok line 1 2001:tcp,2009:tcp",
		},
	}, {
		name: "current line rewritten in another form",
		src:  src,
		edit: inPlace(" 2001:tcp, 2002\n 2003,2004\n"),
		want: result{
			Changed: "true", Use: "ok",
			File: "#2001:tcp, 2002\n 2003,2004\n", Original: "#2001:tcp, 2002\n 2003,2004\n",
			Current: "line 2 2003:tcp,2004:tcp", ChangedAfter: "false", Reloaded: "ok line 2 2003:tcp,2004:tcp",
		},
	}, {
		name: "replaced by rename, same content",
		src:  src,
		edit: byRename(src),
		want: result{
			Changed: "true", Use: "ok",
			File: "#001,2002\n 2003,2004\n", Original: src,
			Current: "line 2 2003:tcp,2004:tcp", ChangedAfter: "false", Reloaded: "ok line 2 2003:tcp,2004:tcp",
		},
	}, {
		name: "replaced by rename, lines reordered",
		src:  src,
		edit: byRename(" 2003,2004\n# moved:\n2001,2002\n"),
		want: result{
			Changed: "true", Use: "ok",
			File: " 2003,2004\n# moved:\n#001,2002\n", Original: src,
			Current: "line 1 2003:tcp,2004:tcp", ChangedAfter: "false", Reloaded: "ok line 1 2003:tcp,2004:tcp",
		},
	}, {
		// The daemon still matched a sequence f knew when the admin
		// edited: it is marked where it now is.
		name: "knock of a later sequence, lines shifted",
		src:  src,
		edit: inPlace(" 9001,9002\n2001,2002\n 2003,2004\n"),
		use:  "2003,2004",
		want: result{
			Changed: "true", Use: "ok",
			File: " 9001,9002\n2001,2002\n#2003,2004\n", Original: " 9001,9002\n2001,2002\n#2003,2004\n",
			Current: "line 1 9001:tcp,9002:tcp", ChangedAfter: "false", Reloaded: "ok line 1 9001:tcp,9002:tcp",
		},
	}, {
		name: "lines appended to a used-up file",
		src:  "#001,2002\n",
		edit: inPlace("#001,2002\n 2003,2004\n"),
		use:  "2001,2002",
		want: result{
			Changed: "true", Use: "ErrNotInFile",
			File: "#001,2002\n 2003,2004\n", Original: "#001,2002\n 2003,2004\n",
			Current: "none", ChangedAfter: "true", Reloaded: "ok line 2 2003:tcp,2004:tcp",
		},
	}, {
		name: "file deleted",
		src:  src,
		edit: func(t *testing.T, path string) {
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
		},
		want: result{
			Changed: "ErrNotExist", Use: "ErrNotExist",
			File: "<missing>", Original: src,
			Current: "line 1 2001:tcp,2002:tcp", ChangedAfter: "ErrNotExist", Reloaded: "ErrNotExist line 1 2001:tcp,2002:tcp",
		},
	}}
	changed := func(f *File) string {
		c, err := f.Changed()
		if err != nil {
			return errKind(err)
		}
		return fmt.Sprint(c)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Link before Open: a new link changes the ctime, which
			// Changed rightly reports.
			path := writeCopy(t, tt.src)
			original := path + ".orig"
			if err := os.Link(path, original); err != nil {
				t.Fatal(err)
			}
			f, err := load(path)
			if err != nil {
				t.Fatal(err)
			}
			seq, _, _ := f.Current()
			if tt.use != "" {
				seq = mustSeq(t, tt.use)
			}
			tt.edit(t, path)
			var got result
			got.Changed = changed(f)
			got.Use = errKind(f.Use(seq))
			if b, err := os.ReadFile(path); err == nil {
				got.File = string(b)
			} else {
				got.File = "<missing>"
			}
			got.Original = readString(t, original)
			got.Current = current(f)
			got.ChangedAfter = changed(f)
			got.Reloaded = errKind(f.Reload()) + " " + current(f)
			if got != tt.want {
				t.Errorf("got  %#v\nwant %#v", got, tt.want)
			}
		})
	}
}
