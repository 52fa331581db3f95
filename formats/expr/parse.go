package expr

import (
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/doorward/doorward/formats/srcpos"
)

// Bounds. Conditions and statements are one config line each; these keep
// a hostile or broken config from costing more than a config line should.
const (
	MaxLen     = 4096  // bytes of a condition or statement
	MaxCommand = 16384 // bytes of a System command template
	MaxDepth   = 50    // nesting of parentheses, unary operators and state(...)
	MaxKeys    = 16    // arguments of one state(...)
)

// IsName reports whether w is a field or keyword: IP, PORT, TIME, CHECKSUM,
// LOGIP, KNOCKTIME, NOW, THISYEAR, THISMONTH, THISDAY, THISHOUR, or FLAGn
// (n = 0…999, no leading zero). Names are upper case; every other word is a
// literal key, and only allowed as a whole argument of state(...).
func IsName(w string) bool {
	switch w {
	case "IP", "PORT", "TIME", "CHECKSUM", "LOGIP", "KNOCKTIME", "NOW",
		"THISYEAR", "THISMONTH", "THISDAY", "THISHOUR":
		return true
	}
	d, ok := strings.CutPrefix(w, "FLAG")
	if !ok || d == "" || len(d) > 3 || (d[0] == '0' && d != "0") {
		return false
	}
	for i := 0; i < len(d); i++ {
		if !isDigit(d[i]) {
			return false
		}
	}
	return true
}

// info is what a parse learns about the names a source uses.
type info struct {
	names map[string]bool
	state bool
}

func (in *info) sortedNames() []string {
	out := make([]string, 0, len(in.names))
	for n := range in.names {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// Expr is a parsed condition. It is immutable and safe for concurrent use.
type Expr struct {
	root  node
	pos   srcpos.Pos
	key   string
	names []string
	state bool
}

// Parse parses a condition written at pos under key (the directive, for
// messages: "condition"). Errors read "file:line: condition: <problem> at
// column N" (columns count bytes from 1).
func Parse(src string, pos srcpos.Pos, key string) (*Expr, error) {
	if len(src) > MaxLen {
		return nil, srcpos.Errorf(pos, key, "longer than %d bytes", MaxLen)
	}
	p := newParser(src, 0)
	var root node
	err := p.run(func() {
		root = p.expr()
		p.end()
	})
	if err != nil {
		return nil, srcpos.Errorf(pos, key, "%v", err)
	}
	return &Expr{root: root, pos: pos, key: key, names: p.info.sortedNames(), state: p.info.state}, nil
}

// UsesState reports whether the condition reads state(...): the sign that
// it can tell a knock seen before from a new one.
func (e *Expr) UsesState() bool { return e.state }

// Names lists the fields and keywords the condition reads, sorted.
func (e *Expr) Names() []string { return slices.Clone(e.names) }

// Eval computes the condition's value.
func (e *Expr) Eval(env Env) (Value, error) {
	v, err := e.root.eval(env)
	if err != nil {
		return Value{}, srcpos.Errorf(e.pos, e.key, "%v", err)
	}
	return v, nil
}

// True evaluates the condition as a boolean (Value.Truth). On error the
// result is false: a condition that cannot be computed never opens.
func (e *Expr) True(env Env) (bool, error) {
	v, err := e.Eval(env)
	if err != nil {
		return false, err
	}
	return v.Truth(), nil
}

// Stmt is a parsed State statement: state(…) = EXPR, state(…)++,
// state(…)--, state(…) += EXPR or state(…) -= EXPR.
type Stmt struct {
	target *stateNode
	op     string
	rhs    node // nil for ++ and --
	pos    srcpos.Pos
	key    string
	names  []string
}

// ParseStatement parses a State statement; errors as for Parse.
func ParseStatement(src string, pos srcpos.Pos, key string) (*Stmt, error) {
	if len(src) > MaxLen {
		return nil, srcpos.Errorf(pos, key, "longer than %d bytes", MaxLen)
	}
	p := newParser(src, 0)
	s := &Stmt{pos: pos, key: key}
	err := p.run(func() {
		t := p.peek()
		if t.kind != tWord || t.text != "state" {
			p.fail(t.off, "a State statement starts with state(…), found %s", t)
		}
		p.take()
		s.target = p.stateRef(t.off)
		t = p.peek()
		switch t.text {
		case "=", "+=", "-=":
			if t.kind != tOp {
				break
			}
			p.take()
			s.op, s.rhs = t.text, p.expr()
			p.end()
			return
		case "++", "--":
			if t.kind != tOp {
				break
			}
			p.take()
			s.op = t.text
			p.end()
			return
		}
		p.fail(t.off, "expected =, ++, --, += or -= after state(…), found %s", t)
	})
	if err != nil {
		return nil, srcpos.Errorf(pos, key, "%v", err)
	}
	s.names = p.info.sortedNames()
	return s, nil
}

// Names lists the fields and keywords the statement reads, sorted.
func (s *Stmt) Names() []string { return slices.Clone(s.names) }

type parser struct {
	lx    lexer
	tok   token
	have  bool
	depth int
	info  info
}

func newParser(src string, off int) *parser {
	return &parser{lx: lexer{src: src, off: off}, info: info{names: map[string]bool{}}}
}

// run calls f, turning a syntax error raised by fail into a returned error
// (the text/template idiom: the grammar reads straight, errors unwind).
func (p *parser) run(f func()) (err error) {
	defer func() {
		if r := recover(); r != nil {
			se, ok := r.(*syntaxError)
			if !ok {
				panic(r)
			}
			err = se
		}
	}()
	f()
	return nil
}

func (p *parser) fail(off int, format string, args ...any) {
	panic(errAt(off, format, args...))
}

// peek returns the next token without consuming it. Tokens are read only
// when asked for, so a command template's state(…) ends at its ')'.
func (p *parser) peek() token {
	if !p.have {
		t, err := p.lx.next()
		if err != nil {
			panic(err)
		}
		p.tok, p.have = t, true
	}
	return p.tok
}

func (p *parser) take() { p.have = false }

func (p *parser) isOp(ops ...string) (token, bool) {
	t := p.peek()
	return t, t.kind == tOp && slices.Contains(ops, t.text)
}

func (p *parser) expect(op string) token {
	t, ok := p.isOp(op)
	if !ok {
		p.fail(t.off, "expected %q, found %s", op, t)
	}
	p.take()
	return t
}

// end checks that the whole source was used, explaining the likely slips.
func (p *parser) end() {
	t := p.peek()
	if t.kind == tEOF {
		return
	}
	if t.kind == tOp {
		switch t.text {
		case "=":
			p.fail(t.off, `unexpected "=" (comparison is "==")`)
		case "++", "--", "+=", "-=":
			p.fail(t.off, "%s changes state: it belongs in a State statement", t)
		}
	}
	p.fail(t.off, "unexpected %s", t)
}

func (p *parser) nest(off int) {
	if p.depth++; p.depth > MaxDepth {
		p.fail(off, "nested more than %d deep", MaxDepth)
	}
}

func (p *parser) unnest() { p.depth-- }

// Precedence, loosest first, as in Perl: || ; && ; == != ; < > <= >= ;
// + - ; * / ; unary ! and -.
var levels = [][]string{
	{"||"},
	{"&&"},
	{"==", "!="},
	{"<", ">", "<=", ">="},
	{"+", "-"},
	{"*", "/"},
}

func (p *parser) expr() node { return p.binary(0) }

func (p *parser) binary(level int) node {
	if level == len(levels) {
		return p.unary()
	}
	x := p.binary(level + 1)
	for {
		t, ok := p.isOp(levels[level]...)
		if !ok {
			return x
		}
		p.take()
		y := p.binary(level + 1)
		x = &binaryNode{op: t.text, x: x, y: y, off: t.off}
	}
}

func (p *parser) unary() node {
	if t, ok := p.isOp("!", "-"); ok {
		p.take()
		p.nest(t.off)
		x := p.unary()
		p.unnest()
		return &unaryNode{op: t.text, x: x, off: t.off}
	}
	return p.primary()
}

func (p *parser) primary() node {
	t := p.peek()
	switch t.kind {
	case tInt:
		p.take()
		return &litNode{v: Int(t.i)}
	case tStr:
		p.take()
		return &litNode{v: Str(t.text)}
	case tWord:
		p.take()
		if t.text == "state" {
			return p.stateRef(t.off)
		}
		if !IsName(t.text) {
			p.fail(t.off, "unknown name %q (fields and keywords are upper case: IP, PORT, TIME, FLAG0…, CHECKSUM, LOGIP, KNOCKTIME, NOW, THISYEAR, THISMONTH, THISDAY, THISHOUR; other words only as state(…) keys)", t.text)
		}
		p.info.names[t.text] = true
		return &nameNode{name: t.text}
	case tOp:
		if t.text == "(" {
			p.take()
			p.nest(t.off)
			x := p.expr()
			p.unnest()
			p.expect(")")
			return x
		}
	case tEOF:
		p.fail(t.off, "expression ends too early")
	}
	p.fail(t.off, "unexpected %s", t)
	return nil
}

// stateRef parses "(K1,K2,…)" after the word state. It consumes the ')'
// and reads nothing after it.
func (p *parser) stateRef(off int) *stateNode {
	p.info.state = true
	p.nest(off)
	p.expect("(")
	n := &stateNode{off: off}
	if t, ok := p.isOp(")"); ok {
		p.fail(t.off, "state() needs at least one key")
	}
	for {
		if len(n.args) == MaxKeys {
			p.fail(p.peek().off, "state(…) takes at most %d keys", MaxKeys)
		}
		n.args = append(n.args, p.stateArg())
		t := p.peek()
		if t.kind == tOp && t.text == "," {
			p.take()
			continue
		}
		if t.kind == tOp && t.text == ")" {
			p.take()
			break
		}
		p.fail(t.off, `expected "," or ")" in state(…), found %s`, t)
	}
	p.unnest()
	return n
}

// stateArg is a key: a bare word that is not a name is that word, anything
// else is an expression (usually a single field such as IP or FLAG0).
func (p *parser) stateArg() node {
	t := p.peek()
	if t.kind == tWord && t.text != "state" && !IsName(t.text) {
		p.take()
		next := p.peek()
		if next.kind == tOp && next.text != "," && next.text != ")" && next.text != "(" {
			p.fail(t.off, "unknown name %q (a lower-case word is a literal key only as a whole state(…) argument)", t.text)
		}
		if next.kind != tOp || next.text == "(" {
			p.fail(next.off, `expected "," or ")" in state(…), found %s`, next)
		}
		return &litNode{v: Str(t.text)}
	}
	return p.expr()
}

// describe renders a byte for a message, whole rune if it starts one.
func describe(s string, off int) string {
	r, _ := utf8.DecodeRuneInString(s[off:])
	return string(r)
}
