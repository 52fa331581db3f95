package fwknop

import (
	"strings"

	"github.com/doorward/doorward/config"
)

// maxLine is the longest line fwknopd reads whole: it reads with
// fgets(MAX_LINE_LEN = 1024), so a longer line would be cut in two and
// its tail read as a line of its own. We refuse such a line instead.
const maxLine = 1023

// space is C's isspace in the C locale, what sscanf's %s and " " skip.
const space = " \t\n\v\f\r"

// entry is one "KEY value" line.
type entry struct {
	Key, Value string
	Pos        config.Pos
}

type lineKind int

const (
	blank   lineKind = iota // comment or empty
	keyed                   // an entry
	noValue                 // a key without a value: fwknopd's "invalid entry"
	tooLong
)

// splitLine reads one line (without its "\n") as fwknopd's
// sscanf(line, "%s %[^;\n\r]", var, val) does: the key is the first word,
// the value runs from the next non-space to the first ';' or '\r' (so a
// trailing ';' ends it, and so does anything after one), without trailing
// spaces (as fwknopd 2.6.11 chops them; 2.6.10 kept them).
//
// fwknopd takes a line as a comment only when its first byte is '#', ';'
// or the end of the line; we also take blank lines of spaces and indented
// comments for comments, where fwknopd stops at the first (access.conf)
// or warns about a key named "#" (fwknopd.conf). A NUL ends the line, as
// it ends fwknopd's C string.
func splitLine(line string) (key, value string, kind lineKind) {
	if i := strings.IndexByte(line, 0); i >= 0 {
		line = line[:i]
	}
	if len(line) > maxLine {
		return "", "", tooLong
	}
	line = strings.TrimLeft(line, space)
	if line == "" || line[0] == '#' || line[0] == ';' {
		return "", "", blank
	}
	end := strings.IndexAny(line, space)
	if end < 0 {
		return line, "", noValue
	}
	key = line[:end]
	rest := strings.TrimLeft(line[end:], space)
	if i := strings.IndexAny(rest, ";\r"); i >= 0 {
		rest = rest[:i]
	}
	value = strings.TrimRight(rest, space)
	if value == "" {
		return key, "", noValue
	}
	return key, value, keyed
}

// entries calls f with each "KEY value" line of the file path, whose
// content is src, at its place. Comments are skipped, a line too long is
// an error, and a key without a value goes to valueless, since fwknopd
// stops at one in an access file but not in fwknopd.conf.
func (n *notes) entries(path string, src []byte, valueless func(pos config.Pos, key string), f func(pos config.Pos, key, value string)) {
	for i, line := range strings.Split(string(src), "\n") {
		pos := config.Pos{File: path, Line: i + 1}
		switch key, value, kind := splitLine(line); kind {
		case tooLong:
			n.errorf(pos, "", "line too long (fwknopd reads at most %d bytes a line)", maxLine)
		case noValue:
			valueless(pos, key)
		case keyed:
			f(pos, key, value)
		}
	}
}
