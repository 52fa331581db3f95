package docs

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	kdaction "github.com/doorward/doorward/actions/knockdaemon"
	"github.com/doorward/doorward/config/doorman"
	"github.com/doorward/doorward/config/knockd"
	"github.com/doorward/doorward/detectors"
	dfwknop "github.com/doorward/doorward/detectors/fwknop"
	kdetect "github.com/doorward/doorward/detectors/knockdaemon"
	_ "github.com/doorward/doorward/protocols"
)

// protocol is what TestProtocolReadmes checks of one protocol: its home
// README is detectors/<name>/README.md.
type protocol struct {
	name string
	// extra are its folders not named after it (a protocol's folders are
	// those named <name> under the roots, and these).
	extra []string
	// keys maps each "### " heading of the home README's config keys that
	// holds a section's table to the keys that section's reader accepts.
	keys map[string][]knockd.Key
	// code are the folders whose string literals are the protocol's log
	// lines, besides its own folders.
	code []string
}

// roots are where a protocol's folders live.
var roots = []string{"detectors", "formats", "actions", "config", "client"}

// sections every home README has.
var sections = []string{"What it speaks", "Where it lives", "Config keys", "Log lines", "Differences from the original"}

// optionsHeading is the key table of the [options] keys a protocol reads:
// a subset of the [options] keys, so each must be one the parser accepts.
const optionsHeading = "[options] keys"

func protocols() []protocol {
	return []protocol{
		{
			name:  "sequence",
			extra: []string{"formats/otp", "formats/rotating"},
			keys:  map[string][]knockd.Key{"Door keys": withGroup(withType(knockd.DoorKeys()))},
			code:  []string{"actions/engine"},
		},
		{
			name: "doorman",
			keys: map[string][]knockd.Key{"Door keys": withGroup(withType(names(doorman.DoorKeys())))},
		},
		{
			name:  "knockdaemon",
			extra: []string{"formats/expr"},
			keys: map[string][]knockd.Key{
				"Door keys":   withGroup(withType(names(kdetect.Directives()))),
				"Action keys": withType(names(kdaction.ActionKeys())),
			},
		},
		{
			name: "fwknop",
			keys: map[string][]knockd.Key{"Door keys": withGroup(withType(dfwknop.Directives()))},
			code: []string{"actions/engine"},
		},
	}
}

// withType adds Type, which config/knockd reads in every section to give
// the section to its protocol.
func withType(ks []knockd.Key) []knockd.Key {
	return append(ks, knockd.Key{Name: "Type"})
}

// withGroup adds Group, which config/knockd reads in every door, like
// Type; each door table says whether its protocol's doors may be grouped.
func withGroup(ks []knockd.Key) []knockd.Key {
	return append(ks, knockd.Key{Name: "Group"})
}

func names(ns []string) []knockd.Key {
	ks := make([]knockd.Key, len(ns))
	for i, n := range ns {
		ks[i] = knockd.Key{Name: n}
	}
	return ks
}

// TestProtocolReadmes keeps each protocol's README true: every folder of
// the protocol has a README.md linked both ways with the home README; the
// home README has its sections; its key tables list exactly the keys the
// readers accept; each log line pattern is a line the goldens show or a
// string of the protocol's code.
// TestProtocolReadmesCoverBuild keeps the table above in step with the
// build: a protocol registered in package protocols without a README
// page (and key tables) here fails.
func TestProtocolReadmesCoverBuild(t *testing.T) {
	var have []string
	for _, p := range protocols() {
		have = append(have, p.name)
	}
	var built []string
	for _, p := range detectors.Protocols() {
		built = append(built, p.Name)
	}
	slices.Sort(have)
	if !slices.Equal(have, built) {
		t.Errorf("protocols with a README check %v, protocols in the build %v", have, built)
	}
}

func TestProtocolReadmes(t *testing.T) {
	for _, p := range protocols() {
		t.Run(p.name, func(t *testing.T) {
			home := filepath.Join("..", "detectors", p.name, "README.md")
			src, err := os.ReadFile(home)
			if err != nil {
				t.Fatal(err)
			}
			doc := string(src)
			folders := p.folders(t)
			for _, dir := range folders {
				checkFolderReadme(t, dir, home, doc)
			}
			for _, s := range sections {
				if section(doc, "## ", s) == "" {
					t.Errorf("%s has no (or an empty) \"## %s\" section", home, s)
				}
			}
			keys := section(doc, "## ", "Config keys")
			for heading, want := range p.keys {
				checkKeyTable(t, heading, section(keys, "### ", heading), want)
			}
			checkOptionsTable(t, section(keys, "### ", optionsHeading))
			checkLogLines(t, section(doc, "## ", "Log lines"), p, folders)
		})
	}
}

// folders are the protocol's folders, home first, as paths from docs/.
func (p protocol) folders(t *testing.T) []string {
	var out []string
	for _, r := range roots {
		dir := filepath.Join("..", r, p.name)
		if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
			out = append(out, dir)
		}
	}
	for _, e := range p.extra {
		out = append(out, filepath.Join("..", e))
	}
	if len(out) == 0 || out[0] != filepath.Join("..", "detectors", p.name) {
		t.Fatalf("protocol %s has no detectors/%s folder", p.name, p.name)
	}
	return out
}

// checkFolderReadme: dir has a README.md, the home README links to it and
// it links to the home README.
func checkFolderReadme(t *testing.T, dir, home, homeDoc string) {
	t.Helper()
	readme := filepath.Join(dir, "README.md")
	if readme == home {
		return
	}
	src, err := os.ReadFile(readme)
	if err != nil {
		t.Errorf("protocol folder %s has no README.md: %v", dir, err)
		return
	}
	if back := rel(t, dir, home); !strings.Contains(string(src), "]("+back+")") {
		t.Errorf("%s does not link to its protocol's home README (%s)", readme, back)
	}
	if to := rel(t, filepath.Dir(home), readme); !strings.Contains(homeDoc, "]("+to+")") {
		t.Errorf("%s does not link to %s", home, to)
	}
}

func rel(t *testing.T, from, to string) string {
	t.Helper()
	r, err := filepath.Rel(from, to)
	if err != nil {
		t.Fatal(err)
	}
	return filepath.ToSlash(r)
}

// section returns the text under the heading prefix+title up to the next
// heading of the same or a higher level, or "".
func section(doc, prefix, title string) string {
	_, after, ok := strings.Cut("\n"+doc, "\n"+prefix+title+"\n")
	if !ok {
		return ""
	}
	level := strings.TrimSpace(prefix)
	for i := len(level); i >= 1; i-- {
		after, _, _ = strings.Cut(after, "\n"+level[:i]+" ")
	}
	return strings.TrimSpace(after)
}

var backquoted = regexp.MustCompile("`([^`]+)`")

// tableKeys returns, for each body row of the markdown tables in text, the
// backquoted words of its first cell: the key, then its aliases.
func tableKeys(text string) [][]string {
	var rows [][]string
	header := true
	for line := range strings.SplitSeq(text, "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "|") {
			header = true
			continue
		}
		if header || strings.HasPrefix(line, "| --") || strings.HasPrefix(line, "|--") {
			header = false
			continue
		}
		cell, _, _ := strings.Cut(strings.TrimPrefix(line, "|"), "|")
		var words []string
		for _, m := range backquoted.FindAllStringSubmatch(cell, -1) {
			words = append(words, m[1])
		}
		rows = append(rows, words)
	}
	return rows
}

// checkKeyTable: the table lists each key the reader accepts once, with
// exactly its aliases, and nothing else.
func checkKeyTable(t *testing.T, heading, text string, want []knockd.Key) {
	t.Helper()
	if text == "" {
		t.Errorf("no \"### %s\" table under \"## Config keys\"", heading)
		return
	}
	var got, exp []string
	for _, row := range tableKeys(text) {
		if len(row) == 0 {
			t.Errorf("### %s: a row without a `key`", heading)
			continue
		}
		got = append(got, strings.Join(row, " "))
	}
	for _, k := range want {
		exp = append(exp, strings.Join(append([]string{k.Name}, k.Aliases...), " "))
	}
	if dup := slices.Compact(slices.Sorted(slices.Values(got))); len(dup) != len(got) {
		t.Errorf("### %s: a key is listed twice: %q", heading, got)
	}
	if missing, extra := minus(exp, got), minus(got, exp); len(missing)+len(extra) > 0 {
		t.Errorf("### %s: keys (with their aliases) the reader accepts but the table lacks: %q; in the table but not accepted: %q", heading, missing, extra)
	}
}

// minus is what a has and b has not.
func minus(a, b []string) []string {
	var out []string
	for _, s := range a {
		if !slices.Contains(b, s) {
			out = append(out, s)
		}
	}
	return out
}

// checkOptionsTable: every key of the [options] table is one the parser
// accepts in [options].
func checkOptionsTable(t *testing.T, text string) {
	t.Helper()
	if text == "" {
		t.Errorf("no \"### %s\" table under \"## Config keys\"", optionsHeading)
		return
	}
	var known []string
	for _, k := range knockd.OptionKeys() {
		known = append(known, k.Name)
	}
	rows := tableKeys(text)
	if len(rows) == 0 {
		t.Errorf("### %s: no rows", optionsHeading)
	}
	for _, row := range rows {
		if len(row) != 1 || !slices.Contains(known, row[0]) {
			t.Errorf("### %s: %q is not an [options] key (have %q)", optionsHeading, row, known)
		}
	}
}

// placeholder is a variable part of a log line pattern: <addr>, <door>.
var placeholder = regexp.MustCompile(`<[^<>]+>`)

// checkLogLines: the first backquoted pattern of each list item of the
// log lines section matches, whole, a line of a want.log golden of the
// protocol (without its time) or a string literal of its code (where
// placeholders stand for the format's verbs).
func checkLogLines(t *testing.T, text string, p protocol, folders []string) {
	t.Helper()
	lines := goldenLines(t, folders)
	strs := codeStrings(t, append(folders, prefixed(p.code)...))
	n := 0
	for line := range strings.SplitSeq(text, "\n") {
		item, ok := strings.CutPrefix(strings.TrimSpace(line), "- ")
		if !ok {
			continue
		}
		m := backquoted.FindStringSubmatch(item)
		if m == nil || !strings.HasPrefix(item, m[0]) {
			continue
		}
		n++
		re := patternRegexp(m[1])
		if !slices.ContainsFunc(lines, re.MatchString) && !slices.ContainsFunc(strs, re.MatchString) {
			t.Errorf("log line `%s` matches no want.log line and no string of the code", m[1])
		}
	}
	if n == 0 {
		t.Error("the log lines section lists no `pattern`")
	}
}

func prefixed(dirs []string) []string {
	out := make([]string, len(dirs))
	for i, d := range dirs {
		out[i] = filepath.Join("..", d)
	}
	return out
}

func patternRegexp(pat string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString("^")
	last := 0
	for _, loc := range placeholder.FindAllStringIndex(pat, -1) {
		b.WriteString(regexp.QuoteMeta(pat[last:loc[0]]))
		b.WriteString(".+?")
		last = loc[1]
	}
	b.WriteString(regexp.QuoteMeta(pat[last:]))
	b.WriteString("$")
	return regexp.MustCompile(b.String())
}

// goldenLines are the lines of every testdata/cases/*/want.log under
// folders, without the time offset ("+1.500 ") each starts with.
func goldenLines(t *testing.T, folders []string) []string {
	t.Helper()
	var out []string
	for _, dir := range folders {
		files, err := filepath.Glob(filepath.Join(dir, "testdata", "cases", "*", "want.log"))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			for l := range strings.SplitSeq(string(b), "\n") {
				if _, rest, ok := strings.Cut(l, " "); ok && strings.HasPrefix(l, "+") {
					l = rest
				}
				out = append(out, l)
			}
		}
	}
	return out
}

// codeStrings are the string literals of the non-test Go files in dirs.
func codeStrings(t *testing.T, dirs []string) []string {
	t.Helper()
	var out []string
	fset := token.NewFileSet()
	for _, dir := range dirs {
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			af, err := parser.ParseFile(fset, f, nil, parser.SkipObjectResolution)
			if err != nil {
				t.Fatal(err)
			}
			ast.Inspect(af, func(n ast.Node) bool {
				if lit, ok := n.(*ast.BasicLit); ok && lit.Kind == token.STRING {
					if s, err := strconv.Unquote(lit.Value); err == nil {
						out = append(out, s)
					}
				}
				return true
			})
		}
	}
	return out
}
