package expr

import (
	"fmt"
	"slices"
	"strings"

	"github.com/doorward/doorward/formats/srcpos"
)

// Command is a parsed System command template: shell text in which whole
// upper-case words that are names (IsName) and state(…) look-ups are
// replaced by their values.
//
// A word is a maximal run of [A-Za-z0-9_], so substitution never splits
// one: LOGIP is LOGIP, not LOG followed by IP, and FLAG10 is not FLAG1
// followed by 0 (the "longest name first" rule, made exact). Words that are
// not names (INPUT, ACCEPT, LOG) are left alone.
type Command struct {
	parts []part
	pos   srcpos.Pos
	key   string
	names []string
	state bool
}

// part is literal text, a name, or a state(…) look-up.
type part struct {
	text  string
	name  string
	state *stateNode
}

// ParseCommand parses a System command template; errors as for Parse.
func ParseCommand(src string, pos srcpos.Pos, key string) (*Command, error) {
	if len(src) > MaxCommand {
		return nil, srcpos.Errorf(pos, key, "longer than %d bytes", MaxCommand)
	}
	c := &Command{pos: pos, key: key}
	in := info{names: map[string]bool{}}
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			c.parts = append(c.parts, part{text: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(src); {
		if !isWordByte(src[i]) {
			lit.WriteByte(src[i])
			i++
			continue
		}
		j := i
		for j < len(src) && isWordByte(src[j]) {
			j++
		}
		w := src[i:j]
		switch {
		case w == "state" && j < len(src) && src[j] == '(':
			p := newParser(src, j)
			var n *stateNode
			if err := p.run(func() { n = p.stateRef(i) }); err != nil {
				return nil, srcpos.Errorf(pos, key, "%v", err)
			}
			for name := range p.info.names {
				in.names[name] = true
			}
			in.state = true
			flush()
			c.parts = append(c.parts, part{state: n})
			j = p.lx.off
		case IsName(w):
			in.names[w] = true
			flush()
			c.parts = append(c.parts, part{name: w})
		default:
			lit.WriteString(w)
		}
		i = j
	}
	flush()
	c.names, c.state = in.sortedNames(), in.state
	return c, nil
}

// Names lists the fields and keywords the command substitutes, sorted.
func (c *Command) Names() []string { return slices.Clone(c.names) }

// UsesState reports whether the command substitutes state(…) values.
func (c *Command) UsesState() bool { return c.state }

// Render substitutes every name and state(…) look-up. A name the knock
// does not carry is an error (the command would mean something else); an
// undefined state(…) renders as "", as Perl's interpolation of undef did.
//
// Each value must consist of letters, digits and . : _ - + / , @ % =
// only, which is all that integers, addresses and sane state keys need:
// no value can add a shell word or operator. Field values come from our
// own decoder and always pass; a state entry set from a config string with
// a blank or a quote makes the command fail rather than run.
func (c *Command) Render(env Env) (string, error) {
	var b strings.Builder
	for _, p := range c.parts {
		var v string
		var what string
		switch {
		case p.state != nil:
			val, err := p.state.eval(env)
			if err != nil {
				return "", fmtErr(c.pos, c.key, err)
			}
			v, what = val.String(), "state(…)"
		case p.name != "":
			val := env.Lookup(p.name)
			if !val.Defined() {
				return "", srcpos.Errorf(c.pos, c.key, "%s is not set for this knock", p.name)
			}
			v, what = val.String(), p.name
		default:
			b.WriteString(p.text)
			continue
		}
		if i := strings.IndexFunc(v, unsafeRune); i >= 0 {
			return "", srcpos.Errorf(c.pos, c.key, "value %q of %s has a character unsafe in a shell command (%q)", v, what, v[i:i+1])
		}
		b.WriteString(v)
	}
	return b.String(), nil
}

func unsafeRune(r rune) bool {
	switch {
	case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9':
		return false
	}
	return !strings.ContainsRune(".:_-+/,@%=", r)
}

// String shows the template as parsed, for debugging.
func (c *Command) String() string {
	var b strings.Builder
	for _, p := range c.parts {
		switch {
		case p.state != nil:
			fmt.Fprintf(&b, "{state/%d}", len(p.state.args))
		case p.name != "":
			b.WriteString("{" + p.name + "}")
		default:
			b.WriteString(p.text)
		}
	}
	return b.String()
}
