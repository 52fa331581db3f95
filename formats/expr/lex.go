package expr

import (
	"fmt"
	"strconv"
	"strings"
)

type tokKind uint8

const (
	tEOF tokKind = iota
	tInt
	tStr
	tWord
	tOp
)

type token struct {
	kind tokKind
	text string // operator or word; the unquoted text of a string
	i    int64  // tInt
	off  int    // byte offset in the source
}

// syntaxError is a problem at a byte offset; the caller adds file:line.
type syntaxError struct {
	off int
	msg string
}

func (e *syntaxError) Error() string { return fmt.Sprintf("%s at column %d", e.msg, e.off+1) }

func errAt(off int, format string, args ...any) *syntaxError {
	return &syntaxError{off: off, msg: fmt.Sprintf(format, args...)}
}

// lexer produces tokens on demand, so a command template can stop parsing
// at the ')' that closes a state(...) and go on with plain text.
type lexer struct {
	src string
	off int
}

// Two-character operators first: the lexer takes the longest match.
var ops2 = []string{"==", "!=", "<=", ">=", "&&", "||", "++", "--", "+=", "-="}

const ops1 = "=!<>+-*/(),"

func isWordStart(c byte) bool { return c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
func isDigit(c byte) bool     { return '0' <= c && c <= '9' }
func isWordByte(c byte) bool  { return isWordStart(c) || isDigit(c) }

func (l *lexer) next() (token, error) {
	for l.off < len(l.src) && (l.src[l.off] == ' ' || l.src[l.off] == '\t') {
		l.off++
	}
	start := l.off
	if l.off >= len(l.src) {
		return token{kind: tEOF, off: start}, nil
	}
	c := l.src[l.off]
	switch {
	case isDigit(c):
		for l.off < len(l.src) && isWordByte(l.src[l.off]) {
			l.off++
		}
		text := l.src[start:l.off]
		i, err := strconv.ParseInt(text, 10, 64)
		if err != nil {
			for _, r := range text {
				if r < '0' || r > '9' {
					return token{}, errAt(start, "bad number %q", text)
				}
			}
			return token{}, errAt(start, "integer %s out of range", text)
		}
		return token{kind: tInt, i: i, text: text, off: start}, nil
	case isWordStart(c):
		for l.off < len(l.src) && isWordByte(l.src[l.off]) {
			l.off++
		}
		return token{kind: tWord, text: l.src[start:l.off], off: start}, nil
	case c == '"':
		var b strings.Builder
		l.off++
		for {
			if l.off >= len(l.src) {
				return token{}, errAt(start, "unterminated string")
			}
			c := l.src[l.off]
			l.off++
			switch c {
			case '"':
				return token{kind: tStr, text: b.String(), off: start}, nil
			case '\\':
				if l.off >= len(l.src) || (l.src[l.off] != '"' && l.src[l.off] != '\\') {
					return token{}, errAt(l.off-1, `bad escape in string (only \" and \\)`)
				}
				b.WriteByte(l.src[l.off])
				l.off++
			default:
				b.WriteByte(c)
			}
		}
	}
	for _, op := range ops2 {
		if strings.HasPrefix(l.src[l.off:], op) {
			l.off += 2
			return token{kind: tOp, text: op, off: start}, nil
		}
	}
	if strings.IndexByte(ops1, c) >= 0 {
		l.off++
		return token{kind: tOp, text: l.src[start:l.off], off: start}, nil
	}
	if c == '&' || c == '|' {
		return token{}, errAt(start, "unexpected %q (did you mean %q?)", string(c), string(c)+string(c))
	}
	return token{}, errAt(start, "unexpected character %q", describe(l.src, start))
}

func (t token) String() string {
	switch t.kind {
	case tEOF:
		return "end of expression"
	case tStr:
		return strconv.Quote(t.text)
	}
	return strconv.Quote(t.text)
}
