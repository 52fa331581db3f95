package doorman

import (
	"bytes"
	"fmt"
	"strings"
)

// CF is a file in doormand's key-value format: doormand.cf, and the
// client's ~/.knockcf. It is here, with the wire format, because both
// sides read it: the server's config reader (config/doorman) and the
// knock client, which must not import a config dialect (arch_test.go).
// Its lexer is doormand's cfg_next_ascii_value, kept
// exactly because admins' files depend on its quirks:
//
//   - a line is read with fgets(buf, 128): a line longer than 127 bytes is
//     split, and each piece is read as a line of its own;
//   - '#' starts a comment anywhere, even between quotes;
//   - the key is the first token (space, tab or newline separated) and is
//     compared case-insensitively;
//   - the value is the next token, unless the rest of the line holds a '"':
//     then it runs from the first '"', which is kept, to the last '"',
//     which is dropped (run "ssh %H%" gives `"ssh %H%`; one '"' alone gives
//     an empty value); single quotes are ordinary characters;
//   - a key without a value is skipped, and the first occurrence of a key
//     wins; unknown keys are ignored.
type CF struct {
	File    string
	Entries []CFEntry // every key with a value, in file order
}

// CFEntry is one "key value" line.
type CFEntry struct {
	Key   string // as written
	Value string
	Line  int
}

// cfLine is fgets' buffer size minus the terminating NUL.
const cfLine = 127

// ParseCF lexes src. It cannot fail: doormand ignores what it does not
// understand, and so does this; the reader of each key validates it.
func ParseCF(file string, src []byte) *CF {
	cf := &CF{File: file}
	line := 1
	for len(src) > 0 {
		n := bytes.IndexByte(src, '\n') + 1
		if n == 0 {
			n = len(src)
		}
		n = min(n, cfLine)
		piece := src[:n]
		src = src[n:]
		if k, v, ok := cfPiece(piece); ok {
			cf.Entries = append(cf.Entries, CFEntry{Key: k, Value: v, Line: line})
		}
		if piece[len(piece)-1] == '\n' {
			line++
		}
	}
	return cf
}

// cfPiece is cfg_next_ascii_value on one fgets buffer.
func cfPiece(b []byte) (key, value string, ok bool) {
	if i := bytes.IndexByte(b, 0); i >= 0 { // C strings end at NUL
		b = b[:i]
	}
	if i := bytes.IndexByte(b, '#'); i >= 0 {
		b = b[:i]
	}
	const delims = " \t\n"
	k, rest, found := cfToken(b, delims)
	if !found {
		return "", "", false
	}
	if first := bytes.IndexByte(rest, '"'); first >= 0 {
		last := bytes.LastIndexByte(rest, '"')
		if last == first {
			return string(k), "", true
		}
		return string(k), string(rest[first:last]), true
	}
	v, _, found := cfToken(rest, delims)
	if !found {
		return "", "", false
	}
	return string(k), string(v), true
}

// cfToken is utilities.c's token(): skip delimiters, take up to the next
// one, step over it.
func cfToken(b []byte, delims string) (tok, rest []byte, ok bool) {
	i := 0
	for i < len(b) && strings.IndexByte(delims, b[i]) >= 0 {
		i++
	}
	if i == len(b) {
		return nil, nil, false
	}
	j := i
	for j < len(b) && strings.IndexByte(delims, b[j]) < 0 {
		j++
	}
	if j < len(b) {
		return b[i:j], b[j+1:], true
	}
	return b[i:j], nil, true
}

// First returns the first entry whose key equals key, ignoring case.
func (cf *CF) First(key string) (CFEntry, bool) {
	for _, e := range cf.Entries {
		if strings.EqualFold(e.Key, key) {
			return e, true
		}
	}
	return CFEntry{}, false
}

// Dump prints a doormand.cf's reading for tests and --check style tools.
func (cf *CF) Dump() string {
	var b strings.Builder
	for _, e := range cf.Entries {
		fmt.Fprintf(&b, "%d: %s = %q\n", e.Line, e.Key, e.Value)
	}
	return b.String()
}
