// Package knockdaemon reads the legacy configs of Martin Krzywinski's Perl
// knockdaemon (knockdaemon.conf, knockclient.conf) and migrates them, and
// doorman's doormand.cf, to Doorward's INI dialect (knockd --migrate).
//
// The Perl read its configs with Config::General and its defaults; Read
// reproduces that syntax (../shared/specs/knockdaemon.md §2) with a
// file:line on every value, so the migration can say where each thing came
// from and what could not be carried over.
package knockdaemon

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/doorward/doorward/config"
)

// Node is a block: the whole file (Name ""), <name> … </name>, or a named
// block <name label> … </name>. Items keep file order.
type Node struct {
	Name  string
	Label string
	Pos   config.Pos
	Items []Item
}

// Item is one "key = value" line or one nested block (Block non-nil).
// A key given twice is two Items: Config::General made a list of them.
type Item struct {
	Key   string
	Value string
	Pos   config.Pos
	Block *Node
	// NoValue marks a key without a value ("key" alone), which
	// Config::General keeps as undef.
	NoValue bool
}

// Values returns the values given for key (case-sensitive, as in
// Config::General), in file order.
func (n *Node) Values(key string) []Item {
	var out []Item
	for _, it := range n.Items {
		if it.Block == nil && it.Key == key {
			out = append(out, it)
		}
	}
	return out
}

// Blocks returns the blocks named name, in file order.
func (n *Node) Blocks(name string) []*Node {
	var out []*Node
	for _, it := range n.Items {
		if it.Block != nil && it.Block.Name == name {
			out = append(out, it.Block)
		}
	}
	return out
}

// Tree is a read config file: its root block and what Config::General would
// only have warned about.
type Tree struct {
	Root     *Node
	Warnings []*config.Error
}

// maxInclude bounds <<include>> nesting, so a file including itself is an
// error rather than a hang.
const maxInclude = 16

// Opener reads an included file. name is as written in <<include name>>,
// from the file that includes it. It returns the file's contents and the
// name to use in positions.
type Opener func(name, from string) (display string, src []byte, err error)

// OSOpener resolves includes as the Perl did: relative to the working
// directory (Config::General's default). A relative name not found there
// is tried next to the including file, since a config moved for migration
// usually keeps its includes beside it.
func OSOpener(name, from string) (string, []byte, error) {
	src, err := os.ReadFile(name)
	if err == nil || filepath.IsAbs(name) || !errors.Is(err, fs.ErrNotExist) {
		return name, src, err
	}
	alt := filepath.Join(filepath.Dir(from), name)
	if src, err2 := os.ReadFile(alt); err2 == nil {
		return alt, src, nil
	}
	return name, nil, err
}

// Read reads a Config::General file from disk, includes resolved by
// OSOpener.
func Read(path string) (*Tree, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, config.List{{Pos: config.Pos{File: path}, Err: fmt.Errorf("read: %w", err)}}
	}
	return Parse(path, src, OSOpener)
}

// logical is one line after Config::General's line-level pass: comments
// gone, continuations joined, includes expanded, here-docs gathered.
type logical struct {
	text    string
	pos     config.Pos
	heredoc bool   // text is the value of key hdKey
	hdKey   string //
}

type reader struct {
	open  Opener
	lines []logical
	errs  config.List
	warns []*config.Error
}

// Parse reads src, a Config::General file named name. Every error is
// returned at once, each with file:line (a config.List); the Tree is nil
// then.
//
// The syntax is Config::General's with its default options:
//   - "key = value" or "key value": the split is at the first "=" (blanks
//     around it dropped) or run of blanks, whichever comes first (Perl's
//     split /\s*=\s*|\s+/, 2), so "state = state(IP,x) = TIME" has the
//     key "state". Keys are case-sensitive.
//   - "#" followed by at least one character starts a comment anywhere,
//     even inside quotes, unless written "\#", which becomes "#". /* … */
//     comments are removed too, also over several lines.
//   - A value wholly inside double quotes loses them; single quotes stay.
//   - A line ending in a backslash continues on the next, whose leading
//     blanks are dropped.
//   - "key <<EOT" (or "key = <<EOT") starts a here-doc ending at a line
//     holding only EOT; the terminator's indentation is removed from every
//     line. Lines are joined with newlines. Comments are not removed
//     inside.
//   - <name> … </name>, <name label> … </name>, and the empty <name x/>.
//     Like Config::General, the end tag's name is not checked against the
//     start's (a mismatch is a warning).
//   - <<include FILE>> inserts FILE's lines (see Opener).
//
// A carriage return before a newline is dropped (a file edited on
// Windows); Config::General would have kept it in the value.
func Parse(name string, src []byte, open Opener) (*Tree, error) {
	r := &reader{open: open}
	r.file(name, src, 0)
	root := r.tree()
	if err := r.errs.Err(); err != nil {
		return nil, err
	}
	return &Tree{Root: root, Warnings: r.warns}, nil
}

var (
	// Config::General's expressions, written for RE2: (?<!\\)# is done by
	// hand in stripComment.
	reCOneLine   = regexp.MustCompile(`\s*/\*.*\*/\s*`)
	reCStart     = regexp.MustCompile(`^\s*/\*`)
	reCEndOfLine = regexp.MustCompile(`\*/\s*$`)
	reEmptyBlock = regexp.MustCompile(`^\s*<([^/]+?.*?)/>$`)
	reHereEq     = regexp.MustCompile(`^\s*([^=]+?)\s*=\s*<<\s*(.+?)\s*$`)
	reHereWS     = regexp.MustCompile(`^\s*(\S+?)\s+<<\s*(.+?)\s*$`)
	reInclude    = regexp.MustCompile(`(?i)^\s*<<include\s+(["']?)(.+?)(["']?)>>\s*$`)
	reBlockStart = regexp.MustCompile(`^<([^/]+?.*?)>$`)
	reBlockEnd   = regexp.MustCompile(`^</(.+?)>$`)
	reNamed      = regexp.MustCompile(`^(?:"([^"]+)"|(\S+))(?:\s+(?:"([^"]+)"|(.*)))?$`)
	reQuoted     = regexp.MustCompile(`^"([^"]+)"$`)
	reSpaceWord  = regexp.MustCompile(`\s\S`)
)

// file is Config::General's _read: the line-level pass over one file.
func (r *reader) file(name string, src []byte, depth int) {
	var (
		inC      bool // inside /* … */
		longline string
		longPos  config.Pos
		hdKey    string
		hdEnd    string
		hdPos    config.Pos
		hdLines  []string
	)
	text := strings.ReplaceAll(string(src), "\r\n", "\n")
	lines := strings.Split(text, "\n")
	if len(lines) > 0 && lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	for i, line := range lines {
		pos := config.Pos{File: name, Line: i + 1}
		if hdEnd != "" {
			if indent, ok := heredocEnd(line, hdEnd); ok {
				var b strings.Builder
				for j, l := range hdLines {
					if j > 0 {
						b.WriteByte('\n')
					}
					b.WriteString(strings.TrimPrefix(l, indent))
				}
				r.lines = append(r.lines, logical{text: strings.TrimLeft(b.String(), " \t"), pos: hdPos, heredoc: true, hdKey: hdKey})
				hdEnd, hdLines = "", nil
			} else {
				hdLines = append(hdLines, line)
			}
			continue
		}
		// C comments, branch for branch as Config::General has them.
		switch {
		case reCOneLine.MatchString(line):
			line = reCOneLine.ReplaceAllString(line, "")
		case reCStart.MatchString(line):
			inC = !reCEndOfLine.MatchString(line)
		case strings.Contains(line, "*/"):
			if !inC {
				r.warn(pos, "end of a /* comment without its start: the text up to */ is dropped")
			}
			inC = false
			line = line[strings.LastIndex(line, "*/")+2:]
		}
		if inC {
			continue
		}
		line = stripComment(line)
		if t := strings.TrimSpace(line); t == "" || t[0] == '#' {
			continue // blank, or a lone "#" that the comment rule left
		}
		if strings.HasSuffix(line, `\`) && !strings.HasSuffix(line, `\\`) {
			if longline == "" {
				longPos = pos
			}
			longline += strings.TrimLeft(line[:len(line)-1], " \t")
			continue
		}
		if m := reEmptyBlock.FindStringSubmatch(strings.TrimRight(line, " \t")); m != nil {
			block := m[1]
			if !strings.Contains(block, `"`) && !reSpaceWord.MatchString(block) {
				block = `"` + strings.TrimSpace(block) + `"`
			}
			r.lines = append(r.lines, logical{text: "<" + strings.TrimSpace(block) + ">", pos: pos}, logical{text: "</" + strings.TrimSpace(block) + ">", pos: pos})
			continue
		}
		if m := reHereEq.FindStringSubmatch(line); m != nil && !reInclude.MatchString(line) {
			hdKey, hdEnd, hdPos = m[1], m[2], pos
			continue
		}
		if m := reHereWS.FindStringSubmatch(line); m != nil && !reInclude.MatchString(line) {
			hdKey, hdEnd, hdPos = m[1], m[2], pos
			continue
		}
		if longline != "" {
			r.lines = append(r.lines, logical{text: strings.TrimSpace(longline + strings.TrimLeft(line, " \t")), pos: longPos})
			longline = ""
			continue
		}
		if m := reInclude.FindStringSubmatch(line); m != nil && m[1] == m[3] {
			r.include(m[2], name, pos, depth)
			continue
		}
		r.lines = append(r.lines, logical{text: strings.TrimSpace(line), pos: pos})
	}
	switch {
	case hdEnd != "":
		r.errs.Add(config.Errorf(hdPos, hdKey, "here-doc <<%s has no end line %q", hdEnd, hdEnd))
	case longline != "":
		// The Perl dropped a continued line at the end of the file.
		r.warn(longPos, "the file ends in a line continued with \\: ignored")
	case inC:
		r.warn(config.Pos{File: name, Line: len(lines)}, "the file ends inside a /* comment")
	}
}

// heredocEnd reports whether line ends a here-doc (the terminator alone,
// maybe indented, trailing blanks allowed), and its indentation.
func heredocEnd(line, end string) (indent string, ok bool) {
	t := strings.TrimRight(line, " \t")
	rest := strings.TrimLeft(t, " \t")
	if rest != end {
		return "", false
	}
	return t[:len(t)-len(rest)], true
}

// stripComment is s/(?<!\\)#.+$//: the first '#' not after a backslash and
// with at least one character after it starts a comment.
func stripComment(line string) string {
	for i := 0; i < len(line); i++ {
		if line[i] == '#' && (i == 0 || line[i-1] != '\\') && i+1 < len(line) {
			return line[:i]
		}
	}
	return line
}

func (r *reader) include(name, from string, pos config.Pos, depth int) {
	if depth >= maxInclude {
		r.errs.Add(config.Errorf(pos, "include", "includes nested more than %d deep (does %s include itself?)", maxInclude, name))
		return
	}
	display, src, err := r.open(name, from)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		r.errs.Add(config.Errorf(pos, "include", "%s: %v", name, err))
		return
	}
	r.file(display, src, depth+1)
}

func (r *reader) warn(pos config.Pos, format string, args ...any) {
	r.warns = append(r.warns, config.Errorf(pos, "", format, args...))
}

// tree is Config::General's _parse: logical lines into nested blocks.
func (r *reader) tree() *Node {
	root := &Node{Pos: config.Pos{File: ""}}
	if len(r.lines) > 0 {
		root.Pos.File = r.lines[0].pos.File
	}
	stack := []*Node{root}
	for _, l := range r.lines {
		top := stack[len(stack)-1]
		if l.heredoc {
			top.Items = append(top.Items, Item{Key: l.hdKey, Value: unescape(l.text), Pos: l.pos})
			continue
		}
		if m := reBlockEnd.FindStringSubmatch(l.text); m != nil {
			if len(stack) == 1 {
				r.errs.Add(config.Errorf(l.pos, "", "</%s> has no <%s> before it", m[1], m[1]))
				continue
			}
			if name, _ := blockName(m[1]); name != top.Name {
				r.warn(l.pos, "</%s> ends <%s> (line %d)", m[1], top.Name, top.Pos.Line)
			}
			stack = stack[:len(stack)-1]
			continue
		}
		if m := reBlockStart.FindStringSubmatch(l.text); m != nil {
			name, label := blockName(m[1])
			n := &Node{Name: name, Label: label, Pos: l.pos}
			top.Items = append(top.Items, Item{Key: name, Pos: l.pos, Block: n})
			stack = append(stack, n)
			continue
		}
		key, value, hasValue := splitKV(l.text)
		if hasValue && len(value) >= 1 && value[0] == '"' && value[len(value)-1] == '"' {
			value = strings.TrimSuffix(value[1:], `"`)
		}
		top.Items = append(top.Items, Item{Key: key, Value: unescape(value), Pos: l.pos, NoValue: !hasValue})
	}
	for _, n := range stack[1:] {
		r.errs.Add(config.Errorf(n.Pos, "", "<%s> has no </%s>", n.Name, n.Name))
	}
	return root
}

// blockName splits a block tag's inside into name and label.
func blockName(s string) (name, label string) {
	if m := reQuoted.FindStringSubmatch(s); m != nil {
		return m[1], ""
	}
	if m := reNamed.FindStringSubmatch(s); m != nil {
		return m[1] + m[2], m[3] + m[4]
	}
	return s, ""
}

// splitKV is Perl's split /\s*=\s*|\s+/, $_, 2: at the leftmost place
// where either alternative matches, the first preferred there.
func splitKV(s string) (key, value string, ok bool) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '=' && c != ' ' && c != '\t' {
			continue
		}
		j := i
		for j < len(s) && (s[j] == ' ' || s[j] == '\t') {
			j++
		}
		if j < len(s) && s[j] == '=' {
			j++
			for j < len(s) && (s[j] == ' ' || s[j] == '\t') {
				j++
			}
		}
		return s[:i], s[j:], true
	}
	return s, "", false
}

// unescape is _parse_value's s/\\#/#/g.
func unescape(v string) string { return strings.ReplaceAll(v, `\#`, `#`) }
