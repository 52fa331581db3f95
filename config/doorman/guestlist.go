// Package doorman reads the configuration files of J.B. Ward's doormand:
// the guest list (guestlist(5)), doormand.cf and the client's ~/.knockcf
// (both read by one small lexer), and the doorman door of Doorward's own
// knockd.conf dialect (a section with Type = doorman). An admin moving from
// doormand keeps every file unchanged; see ../../docs/doorman.md.
package doorman

import (
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"regexp"
	"strconv"
	"strings"

	"github.com/doorward/doorward/config"
)

// Limits of guestlist(5) (constants.h).
const (
	MaxGroup  = 32
	MaxSecret = 64
	// DefaultGuestlist is doormand's compiled-in path (its man page says
	// there is none).
	DefaultGuestlist = "/etc/dd_guestlist"
)

// Guest is one record of the guest list: a group name and its secret, the
// ports it may open and the source networks it may knock from.
type Guest struct {
	Name   string
	Secret string
	Ports  []uint16       // in file order, duplicates kept
	Addrs  []netip.Prefix // IPv4, masked (see ParseGuestlist)
	Pos    config.Pos     // of the group name
}

// HasPort reports whether port is one of g's ports.
func (g *Guest) HasPort(port int) bool {
	for _, p := range g.Ports {
		if int(p) == port {
			return true
		}
	}
	return false
}

// Allows reports whether src may knock as g.
func (g *Guest) Allows(src netip.Addr) bool {
	for _, p := range g.Addrs {
		if p.Contains(src) {
			return true
		}
	}
	return false
}

// Guestlist is a parsed guest list.
type Guestlist struct {
	File   string
	Guests []*Guest // in file order
	byName map[string]*Guest
}

// Lookup finds a guest by the group name a packet carries; names are
// case-sensitive, as doormand's strcmp. It does not allocate.
func (gl *Guestlist) Lookup(name []byte) *Guest { return gl.byName[string(name)] }

// Resolver turns the names a guest list may contain into numbers, once, at
// load time (doormand calls getservbyname and gethostbyname while lexing).
// Tests inject their own so they never touch DNS.
type Resolver struct {
	// Service returns the port of an /etc/services name (any protocol,
	// case-sensitive, first entry wins).
	Service func(name string) (int, error)
	// Host returns the first IPv4 address of a host name.
	Host func(name string) (netip.Addr, error)
}

// Phases of doormand's guest list lexer: what it expects next.
const (
	phaseGroup    = iota // a group name in column 1
	phaseSecret          // the group's secret
	phasePort            // the first port
	phasePortAddr        // another port, or the first address
	phaseAddr            // another address, or a new group in column 1
)

var phaseWant = [...]string{
	phaseGroup:    "group name",
	phaseSecret:   "secret",
	phasePort:     "port or service name",
	phasePortAddr: "port or hostname/address",
	phaseAddr:     "hostname or IP address",
}

// The token rules of doormand's lexer.l, in its order: flex takes the
// longest match, and the earliest rule among equally long ones.
const (
	ruleNewline = iota
	ruleComment
	ruleSpace
	ruleGroupDot   // ^{NAME}/\.   group name followed by a period
	ruleGroup      // ^{NAME}      group name (column 1 only)
	ruleDigits     // [0-9]+       port, or a secret
	ruleService    // [a-zA-Z][a-zA-Z0-9]+  service name, or a secret
	ruleNameDot    // {NAME}/\.    something odd with a period
	ruleName       // {NAME}       secret
	ruleIP         // a.b.c.d
	ruleMaskedIP   // a.b.c.d/n
	ruleHost       // name.with.dots
	ruleMaskedHost // name.with.dots/n
	numRules
)

// The address rules, anchored; matched leftmost-longest like flex. The
// masked-IP rule's repeated group is lexer.l's own (it accepts oddities
// such as "1.2.3.4/242.3.4/5", whose bit count then fails).
var (
	reIP         = longest(`^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+`)
	reMaskedIP   = longest(`^[0-9]+\.([0-9]+\.[0-9]+\.[0-9]+/[0-9]+)+`)
	reHost       = longest(`^[a-zA-Z0-9-]+\.([a-zA-Z0-9-]+\.)*[a-zA-Z0-9-]+`)
	reMaskedHost = longest(`^[a-zA-Z0-9-]+\.([a-zA-Z0-9-]+\.)*[a-zA-Z0-9-]+/[0-9]+`)
)

func longest(expr string) *regexp.Regexp {
	re := regexp.MustCompile(expr)
	re.Longest()
	return re
}

// isName is lexer.l's NAME class: letters, digits and
// !@$%^&*()-_=+|\?/,<>[]{}"':; — no white space, '#', '.', '~' or '`'.
func isName(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte(`!@$%^&*()-_=+|\?/,<>[]{}"':;`, c) >= 0
}

func isDigit(c byte) bool  { return c >= '0' && c <= '9' }
func isLetter(c byte) bool { return c|0x20 >= 'a' && c|0x20 <= 'z' }

// match returns the winning rule at src[i:] and the length it consumes
// (trailing context excluded), or -1 when no rule matches: flex's default
// rule then copies one byte to stdout, i.e. skips it.
func match(src []byte, i int, bol bool) (rule, n int) {
	var lens [numRules]int // match length, trailing context included
	c := src[i]
	rest := src[i:]
	if c == '\n' {
		lens[ruleNewline] = 1
	}
	if c == '#' {
		j := bytes.IndexByte(rest, '\n')
		if j < 0 {
			j = len(rest)
		}
		lens[ruleComment] = j
	}
	for lens[ruleSpace] < len(rest) && (rest[lens[ruleSpace]] == ' ' || rest[lens[ruleSpace]] == '\t') {
		lens[ruleSpace]++
	}
	name := 0
	for name < len(rest) && isName(rest[name]) {
		name++
	}
	dot := name > 0 && name < len(rest) && rest[name] == '.'
	if bol && name > 0 {
		lens[ruleGroup] = name
		if dot {
			lens[ruleGroupDot] = name + 1
		}
	}
	for lens[ruleDigits] < len(rest) && isDigit(rest[lens[ruleDigits]]) {
		lens[ruleDigits]++
	}
	if isLetter(c) {
		k := 1
		for k < len(rest) && (isLetter(rest[k]) || isDigit(rest[k])) {
			k++
		}
		if k >= 2 {
			lens[ruleService] = k
		}
	}
	if dot {
		lens[ruleNameDot] = name + 1
	}
	lens[ruleName] = name
	if isDigit(c) || isLetter(c) || c == '-' {
		// The address rules only span [A-Za-z0-9./-]: match within that
		// run, so a long file costs no long regexp scans.
		w := 0
		for w < len(rest) && (isDigit(rest[w]) || isLetter(rest[w]) || rest[w] == '.' || rest[w] == '-' || rest[w] == '/') {
			w++
		}
		win := rest[:w]
		for r, re := range [...]*regexp.Regexp{ruleIP: reIP, ruleMaskedIP: reMaskedIP, ruleHost: reHost, ruleMaskedHost: reMaskedHost} {
			if re == nil {
				continue
			}
			if loc := re.FindIndex(win); loc != nil {
				lens[r] = loc[1]
			}
		}
	}
	rule, best := -1, 0
	for r, l := range lens {
		if l > best {
			rule, best = r, l
		}
	}
	switch rule {
	case ruleGroupDot, ruleNameDot:
		best-- // the period is trailing context
	}
	return rule, best
}

// ParseGuestlist reads a guest list exactly as doormand's flex lexer does
// (guestlist(5) and ../../../shared/specs/doorman.md §2):
//
//	<group> <secret> <port>… <address>…
//
// with the group name in column 1, continuation lines indented, '#'
// comments anywhere, at least one port (1..65534 or an /etc/services name
// of the form [A-Za-z][A-Za-z0-9]+) and then at least one address (a.b.c.d,
// a.b.c.d/n, or a host name with at least one dot, optionally /n). Service
// and host names are resolved now, through r.
//
// Where doormand stops at the first fatal error, every error of the file is
// returned (a config.List, sorted by line), so the admin fixes them in one
// pass. Warnings are about entries that load but probably do not mean what
// they say: they should be logged.
//
// Addresses: doormand stores a.b.c.d/n unmasked and compares (src & mask)
// with it, so an entry with host bits set (the man page's own
// "9.10.11.12/16") never matches anything. We mask both sides, so such an
// entry matches its network, and warn at load time.
func ParseGuestlist(file string, src []byte, r Resolver) (*Guestlist, []string, error) {
	p := &glParser{file: file, gl: &Guestlist{File: file, byName: map[string]*Guest{}}, r: r, line: 1}
	bol := true
	for i := 0; i < len(src); {
		rule, n := match(src, i, bol)
		if rule < 0 {
			i++ // flex's default rule: the byte is echoed and skipped
			bol = false
			continue
		}
		p.token(rule, string(src[i:i+n]))
		i += n
		bol = rule == ruleNewline
	}
	if p.phase != phaseAddr && !p.recovering {
		p.errorf("unexpected end-of-file in guest list")
	}
	return p.gl, p.warns, p.errs.Err()
}

type glParser struct {
	file  string
	gl    *Guestlist
	r     Resolver
	line  int
	phase int
	cur   *Guest // nil after a syntax error in a group's name
	// recovering is set after a syntax error: doormand stops at the
	// first one; we skip to the next group name in column 1 and go on,
	// so every record's errors are reported without a cascade of
	// follow-on errors from one mistake.
	recovering bool
	errs       config.List
	warns      []string
}

func (p *glParser) pos() config.Pos { return config.Pos{File: p.file, Line: p.line} }

func (p *glParser) errorf(format string, args ...any) {
	p.errs.Add(config.Errorf(p.pos(), "", format, args...))
}

func (p *glParser) warnf(format string, args ...any) {
	p.warns = append(p.warns, fmt.Sprintf("%s: ", p.pos())+fmt.Sprintf(format, args...))
}

func (p *glParser) syntax(text string) {
	p.errorf("expected a %s, but found %q", phaseWant[p.phase], text)
	p.recovering = true
}

func (p *glParser) token(rule int, text string) {
	if p.recovering {
		switch rule {
		case ruleNewline:
			p.line++
		case ruleGroup:
			p.recovering = false
			p.phase = phaseGroup
			p.token(rule, text)
		}
		return
	}
	switch rule {
	case ruleNewline:
		p.line++
	case ruleComment, ruleSpace:
	case ruleGroupDot:
		p.errorf("group name %q contains a period", text)
		p.recovering = true
	case ruleGroup:
		if len(text) > MaxGroup {
			p.errorf("group name %q is too long: max %d characters", text, MaxGroup)
		}
		if p.phase == phaseGroup || p.phase == phaseAddr {
			p.newGroup(text)
		} else {
			p.syntax(text)
			p.cur = nil
		}
		p.phase = phaseSecret
	case ruleDigits, ruleService:
		switch p.phase {
		case phaseSecret:
			p.secret(text)
		case phasePort, phasePortAddr:
			p.port(rule, text)
			p.phase = phasePortAddr
		default:
			p.syntax(text)
		}
	case ruleNameDot:
		switch p.phase {
		case phaseGroup:
			p.errorf("%q: a group name must begin in column 1", text)
		case phaseAddr:
			p.errorf("%q: illegal address", text)
		case phaseSecret:
			p.errorf("%q: secret contains a period", text)
		default:
			p.errorf("%q: illegal port or service name", text)
		}
		p.recovering = true
	case ruleName:
		if p.phase == phaseSecret {
			p.secret(text)
		} else {
			p.syntax(text)
		}
	case ruleIP, ruleMaskedIP, ruleHost, ruleMaskedHost:
		if p.phase != phasePortAddr && p.phase != phaseAddr {
			p.syntax(text)
			return
		}
		p.address(rule, text)
		p.phase = phaseAddr
	}
}

func (p *glParser) newGroup(name string) {
	g := &Guest{Name: name, Pos: p.pos()}
	p.cur = g
	p.gl.Guests = append(p.gl.Guests, g)
	if first, dup := p.gl.byName[name]; dup {
		p.warnf("group %q is listed again (first at line %d); the first entry is used", name, first.Pos.Line)
		return
	}
	p.gl.byName[name] = g
}

func (p *glParser) secret(s string) {
	if len(s) > MaxSecret {
		p.errorf("the secret of %s is too long: max %d characters", p.groupName(), MaxSecret)
	}
	if p.cur != nil {
		p.cur.Secret = s
	}
	p.phase = phasePort
}

func (p *glParser) groupName() string {
	if p.cur == nil {
		return "this group"
	}
	return strconv.Quote(p.cur.Name)
}

func (p *glParser) port(rule int, text string) {
	var port int
	if rule == ruleDigits {
		// doormand truncates atoi's result to 16 bits, so "70000" is
		// silently port 4464; we refuse anything outside 1..65534.
		n, err := strconv.Atoi(text)
		if err != nil || n < 1 || n > 65534 {
			p.errorf("bad port number %q (want 1..65534)", text)
			return
		}
		port = n
	} else {
		if p.r.Service == nil {
			p.errorf("bad service name %q: no service resolver", text)
			return
		}
		n, err := p.r.Service(text)
		if err != nil {
			p.errorf("bad service name %q: %v", text, err)
			return
		}
		if n < 1 || n > 65535 {
			p.errorf("service %q has port %d", text, n)
			return
		}
		port = n
	}
	if p.cur != nil {
		p.cur.Ports = append(p.cur.Ports, uint16(port))
	}
}

func (p *glParser) address(rule int, text string) {
	host, bitsText, masked := strings.Cut(text, "/")
	bits := 32
	if masked {
		// lexer.l reads the bit count with atoi, after the first '/'.
		n, err := strconv.Atoi(leadingDigits(bitsText))
		if err != nil || n > 32 {
			p.errorf("number of bits %q out of range 0-32", bitsText)
			return
		}
		bits = n
	}
	var addr netip.Addr
	switch rule {
	case ruleIP, ruleMaskedIP:
		a, err := netip.ParseAddr(host)
		if err != nil || !a.Is4() {
			// Also refuses leading zeros, which doormand's inet_addr
			// reads as octal ("010" is 8): a silent surprise.
			p.errorf("illegal IP address %q", host)
			return
		}
		addr = a
	default:
		if p.r.Host == nil {
			p.errorf("unknown host %q: no host resolver", host)
			return
		}
		a, err := p.r.Host(host)
		if err != nil {
			p.errorf("unknown host %q: %v", host, err)
			return
		}
		if !a.Unmap().Is4() {
			p.errorf("host %q has no IPv4 address", host)
			return
		}
		addr = a.Unmap()
	}
	pfx := netip.PrefixFrom(addr, bits)
	if m := pfx.Masked(); m.Addr() != addr {
		p.warnf("%s has host bits set: doormand never matches such an entry; Doorward matches %s", text, m)
		pfx = m
	}
	if p.cur != nil {
		p.cur.Addrs = append(p.cur.Addrs, pfx)
	}
}

func leadingDigits(s string) string {
	i := 0
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	return s[:i]
}

// LoadGuestlist reads and parses the guest list at path.
func LoadGuestlist(path string, r Resolver) (*Guestlist, []string, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, config.List{{Pos: config.Pos{File: path}, Err: fmt.Errorf("cannot open guest list: %w", unwrapPath(err))}}
	}
	return ParseGuestlist(path, src, r)
}

// unwrapPath drops the *fs.PathError wrapper, whose path the position
// already shows.
func unwrapPath(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return fmt.Errorf("%s: %w", pe.Op, pe.Err)
	}
	return err
}
