package fwlog

import (
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/doorward/doorward/formats/proto"
)

// CompilePerl compiles one of knockdaemon's <logformat> expressions, which
// were written for Perl, as a Go regexp. Go's RE2 engine runs in time
// linear in the line, which matters for a log an attacker can fill, and so
// has no lookaround, backreference, atomic group, possessive quantifier,
// recursion, conditional or \G, \K, \Z: each is refused here by name, with
// its offset, so the admin knows what to rewrite. Everything else common
// to both (classes, \d \w \s, {n,m}, lazy quantifiers, (?i), named groups)
// means the same.
func CompilePerl(expr string) (*regexp.Regexp, error) {
	if why, at := perlOnly(expr); why != "" {
		return nil, fmt.Errorf("%s at offset %d is Perl-only (Go regexps are RE2: no lookaround or backreferences); rewrite the expression without it", why, at)
	}
	re, err := regexp.Compile(expr)
	if err != nil {
		return nil, fmt.Errorf("not a valid RE2 expression: %w", err)
	}
	return re, nil
}

// perlOnly finds the first Perl construct RE2 lacks.
func perlOnly(s string) (why string, at int) {
	inClass := false
	quant := false // the previous token was a quantifier
	for i := 0; i < len(s); i++ {
		c := s[i]
		wasQuant := quant
		quant = false
		if c == '\\' && i+1 < len(s) {
			n := s[i+1]
			i++
			if inClass {
				continue
			}
			switch {
			case n >= '1' && n <= '9':
				return "backreference \\" + string(n), i - 1
			case n == 'g' && i+1 < len(s) && (isDigit(s[i+1]) || s[i+1] == '{' || s[i+1] == '-'):
				return "backreference \\g", i - 1
			case n == 'k' && i+1 < len(s) && (s[i+1] == '<' || s[i+1] == '{' || s[i+1] == '\''):
				return "named backreference \\k", i - 1
			case n == 'K':
				return "keep-out \\K", i - 1
			case n == 'G':
				return "anchor \\G", i - 1
			case n == 'Z':
				return "anchor \\Z (use \\z or $)", i - 1
			}
			continue
		}
		if inClass {
			if c == ']' {
				inClass = false
			}
			continue
		}
		switch c {
		case '[':
			inClass = true
			// A ']' or '^]' right after '[' is a literal.
			if i+1 < len(s) && s[i+1] == '^' {
				i++
			}
			if i+1 < len(s) && s[i+1] == ']' {
				i++
			}
		case '(':
			if i+1 >= len(s) || s[i+1] != '?' {
				continue
			}
			rest := s[i+2:]
			switch {
			case strings.HasPrefix(rest, "="):
				return "lookahead (?=", i
			case strings.HasPrefix(rest, "!"):
				return "negative lookahead (?!", i
			case strings.HasPrefix(rest, "<="):
				return "lookbehind (?<=", i
			case strings.HasPrefix(rest, "<!"):
				return "negative lookbehind (?<!", i
			case strings.HasPrefix(rest, ">"):
				return "atomic group (?>", i
			case strings.HasPrefix(rest, "("):
				return "conditional (?(", i
			case strings.HasPrefix(rest, "#"):
				return "comment group (?#", i
			case strings.HasPrefix(rest, "|"):
				return "branch reset (?|", i
			case strings.HasPrefix(rest, "&"), strings.HasPrefix(rest, "P>"), strings.HasPrefix(rest, "R"),
				rest != "" && (isDigit(rest[0]) || rest[0] == '+' || rest[0] == '-') && strings.IndexByte(rest, ')') > 0 && allDigits(strings.TrimLeft(rest[:strings.IndexByte(rest, ')')], "+-")):
				return "recursion (?…)", i
			}
			i++ // skip the '?', which is not a quantifier here
		case '*', '?':
			quant = true
		case '+':
			if wasQuant {
				return "possessive quantifier " + s[i-1:i+1], i - 1
			}
			quant = true
		case '}':
			quant = true
		}
	}
	return "", 0
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return true
}

// group returns re's first capture group in line.
func group(re *regexp.Regexp, line string) (string, bool) {
	if re == nil {
		return "", false
	}
	m := re.FindStringSubmatchIndex(line)
	if m == nil || len(m) < 4 || m[2] < 0 {
		return "", false
	}
	return line[m[2]:m[3]], true
}

// parseRegex reads a line with knockdaemon's per-field expressions. A line
// is considered when it matches Required; without Required, when the
// client and port expressions both match (otherwise every other syslog
// line would count as malformed). Optional fields that do not match are
// absent; fields that match but do not parse make the line malformed.
func (f *Format) parseRegex(line string, ref time.Time, out *Fields) error {
	r := &f.re
	if r.Required != nil && !r.Required.MatchString(line) {
		return ErrNotPacket
	}
	client, okc := group(r.IPClient, line)
	port, okp := group(r.Port, line)
	if !okc || !okp {
		switch {
		case r.Required == nil:
			return ErrNotPacket
		case !okc:
			return errClient
		default:
			return errNoPort
		}
	}
	out.Time = LineTime(line, ref, f.location())
	a, err := netip.ParseAddr(strings.TrimSpace(client))
	if err != nil || a.Zone() != "" {
		return errClient
	}
	out.Src = a
	n, ok := atou(strings.TrimSpace(port), 65535)
	if !ok {
		return errNoPort
	}
	out.DstPort = uint16(n)
	out.Proto = TCP
	if s, ok := group(r.Protocol, line); ok {
		p, ok := ProtoNumber(strings.TrimSpace(s))
		if !ok {
			return errBadProto
		}
		out.Proto = p
	}
	if s, ok := group(r.IPServer, line); ok {
		a, err := netip.ParseAddr(strings.TrimSpace(s))
		if err != nil || a.Zone() != "" {
			return errServer
		}
		out.Dst = a
	}
	if s, ok := group(r.Interface, line); ok {
		out.In = s
	}
	if s, ok := group(r.SPort, line); ok {
		n, ok := atou(strings.TrimSpace(s), 65535)
		if !ok {
			return errBadSPort
		}
		out.SrcPort = uint16(n)
	}
	out.Flags = proto.SYN
	if s, ok := group(r.Flags, line); ok {
		fl, ok := parseFlags(s)
		if !ok {
			return errBadFlags
		}
		out.Flags = fl
	}
	if s, ok := group(r.Seq, line); ok {
		n, ok := atou(strings.TrimSpace(s), 1<<32-1)
		if !ok {
			return errBadSeq
		}
		out.Seq, out.HasSeq = uint32(n), true
	}
	return nil
}

// parseFlags reads TCP flags captured by a regex format: words as the
// kernel prints them ("ACK SYN"), in any case and separated by blanks,
// commas or '|', or a number ("18", "0x12").
func parseFlags(s string) (proto.TCPFlags, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, true
	}
	if isDigit(s[0]) {
		n, err := strconv.ParseUint(s, 0, 8)
		return proto.TCPFlags(n), err == nil
	}
	var fl proto.TCPFlags
	for w := range strings.FieldsFuncSeq(s, func(r rune) bool { return r == ' ' || r == '\t' || r == ',' || r == '|' }) {
		bit := flagWord(strings.ToUpper(w))
		if bit == 0 {
			return 0, false
		}
		fl |= bit
	}
	return fl, true
}
