// Package fwlog reads firewall log lines: what one line says about one
// packet (time, addresses, ports, protocol, TCP flags), for knockdaemon's
// "file mode" (../shared/specs/knockdaemon.md §1, §3), where knocks are
// seen in the firewall's log rather than on the wire.
//
// Two kinds of Format read a line:
//
//   - The built-ins, "iptables" and "nftables", read what the kernel's
//     nf_log_syslog prints for an iptables/ip6tables LOG target or an
//     nftables log statement: an optional log prefix, then
//     "IN=eth0 OUT= MAC=… SRC=… DST=… LEN=… … PROTO=TCP SPT=… DPT=… …
//     SYN URGP=0". Both targets print through the same kernel code, so both
//     names read the same body; the names say what the admin runs. The
//     line is scanned by hand as space-separated KEY=VALUE tokens, with no
//     regexp and no allocation, because a log under a flood is long.
//   - Regex formats are knockdaemon's <logformat> blocks: one regular
//     expression per field, whose first capture group is the field.
//     Perl-only constructs are refused with a clear message (CompilePerl).
//
// Whatever the format, a timestamp at the start of the line (syslog,
// RFC 3339, journalctl's short, short-iso, short-precise and short-unix
// forms) is read by LineTime.
//
// A line that is not a packet line (any other kernel or syslog message)
// yields ErrNotPacket; a packet line that cannot be read yields an error
// matching ErrMalformed; neither is ever fatal to the caller. fwlog knows
// nothing of detectors: detectors/logtail turns Fields into a Packet.
package fwlog

import (
	"errors"
	"net/netip"
	"regexp"
	"strings"
	"time"

	"github.com/doorward/doorward/formats/proto"
)

// The protocol and TCP flag types are formats/proto's, the one definition
// the decoder, the detectors and a door's config share: a packet read from
// a log line is the same value as one read from the wire.
const (
	TCP     = proto.TCP
	UDP     = proto.UDP
	UDPLite = proto.UDPLite
	ICMP    = proto.ICMP
	ICMPv6  = proto.ICMPv6
)

// Fields is what one log line says about one packet. It is filled in place
// by Parse; strings alias the line.
type Fields struct {
	// Time is the line's own timestamp (see LineTime); zero if it has none.
	Time time.Time
	// In is the input interface (IN=, or a regex format's "interface").
	In  string
	Src netip.Addr // SRC=: the sender (knockdaemon's ipclient, LOGIP)
	Dst netip.Addr // DST=: the receiver (ipserver); invalid if a regex format has none
	// SrcPort and DstPort are valid for TCP and UDP. A regex format
	// without "sport" leaves SrcPort 0.
	SrcPort, DstPort uint16
	// Proto is the IANA protocol number; 0 if the line names one we do
	// not know.
	Proto proto.Proto
	// Flags are the TCP flags, valid when Proto is TCP. A regex format
	// without "flags" reports SYN: a LOG rule for knocks logs new
	// connections, and detectors that filter on flags then still match.
	Flags proto.TCPFlags
	// Seq is the TCP sequence number, valid when HasSeq (the LOG target's
	// --log-tcp-sequence, nft "log flags tcp sequence", or a regex "seq").
	Seq    uint32
	HasSeq bool
	// Length is the IP packet's length (the first LEN=), 0 if not given.
	Length int
}

// Reset clears f for reuse.
func (f *Fields) Reset() { *f = Fields{} }

// ErrNotPacket is returned for a line that is not a packet line of the
// format: another kernel message, a line without the format's prefix or
// required text. Callers skip such lines quietly.
var ErrNotPacket = errors.New("not a packet log line")

// ErrNoPorts is returned for a TCP or UDP packet line without ports: a
// fragment after the first, or a header the kernel found truncated
// ("INCOMPLETE"). It is a real packet but cannot be a knock.
var ErrNoPorts = errors.New("packet log line without ports (fragment or truncated header)")

// ErrMalformed matches (errors.Is) every error for a packet line that
// could not be read: a bad address or number, a missing field, a line cut
// short. The errors are fixed values, so a flood of bad lines allocates
// nothing.
var ErrMalformed = errors.New("malformed packet log line")

type malformed string

func (m malformed) Error() string        { return "malformed packet log line: " + string(m) }
func (m malformed) Is(target error) bool { return target == ErrMalformed }

// The reasons a packet line is malformed. They are constants of a string
// type, so returning one as an error does not allocate.
const (
	errNoSrc    malformed = "no valid SRC="
	errNoDst    malformed = "no valid DST="
	errNoProto  malformed = "no PROTO="
	errBadProto malformed = "bad protocol"
	errNoPort   malformed = "no valid DPT="
	errBadSPort malformed = "bad SPT="
	errBadLen   malformed = "bad LEN="
	errBadSeq   malformed = "bad SEQ="
	errBadFlags malformed = "bad TCP flags"
	errClient   malformed = "no valid client address (ipclient)"
	errServer   malformed = "bad server address (ipserver)"
)

// Format is one way of reading log lines. A Format is immutable after it
// is built and may be shared between goroutines.
type Format struct {
	// Name is the built-in's name or the config section's.
	Name string
	// Prefix is the log prefix a built-in format requires right before
	// "IN=" (iptables --log-prefix, nft log prefix), compared without
	// trailing blanks; "" accepts any line. It must start at a word
	// boundary, so "KNOCK" does not accept "NOKNOCK".
	Prefix string
	// Contains is a literal the line must contain ("" for any), for a
	// built-in format given a plain-text Required.
	Contains string
	// Location is the time zone of timestamps without one (traditional
	// syslog, journalctl short); nil means time.Local.
	Location *time.Location
	// LineTime asks a live source to stamp packets with the line's own
	// timestamp instead of the time the line was read. Replays always use
	// the line's time.
	LineTime bool

	kernel bool
	re     Regexps
}

// Regexps are a regex format's expressions, one per field, each read from
// its first capture group (knockdaemon's <logformat> keys). IPClient and
// Port are needed; the others are optional.
type Regexps struct {
	Required  *regexp.Regexp // the line must match to be considered
	Interface *regexp.Regexp
	Protocol  *regexp.Regexp // "TCP", "udp", "6", …; absent: TCP
	IPServer  *regexp.Regexp // destination address
	IPClient  *regexp.Regexp // source address: whose knock this is
	Port      *regexp.Regexp // destination port
	SPort     *regexp.Regexp // source port
	Flags     *regexp.Regexp // TCP flags as words ("ACK SYN") or a number
	Seq       *regexp.Regexp // TCP sequence number
}

// BuiltinNames are the names Builtin knows.
func BuiltinNames() []string { return []string{"iptables", "nftables"} }

// Builtin returns a new built-in format by name ("iptables" or
// "nftables", case-insensitive), with no prefix.
func Builtin(name string) (*Format, bool) {
	switch strings.ToLower(name) {
	case "iptables":
		return &Format{Name: "iptables", kernel: true}, true
	case "nftables":
		return &Format{Name: "nftables", kernel: true}, true
	}
	return nil, false
}

// IsBuiltin reports whether f reads kernel nf_log lines by hand.
func (f *Format) IsBuiltin() bool { return f.kernel }

// NewRegex builds a regex format. Every expression but Required must have
// a capture group, and IPClient and Port must be given.
func NewRegex(name string, r Regexps) (*Format, error) {
	if r.IPClient == nil {
		return nil, errors.New("ipclient is required (the sender's address)")
	}
	if r.Port == nil {
		return nil, errors.New("port is required (the destination port)")
	}
	for _, e := range []struct {
		key string
		re  *regexp.Regexp
	}{
		{"interface", r.Interface}, {"protocol", r.Protocol}, {"ipserver", r.IPServer}, {"ipclient", r.IPClient},
		{"port", r.Port}, {"sport", r.SPort}, {"flags", r.Flags}, {"seq", r.Seq},
	} {
		if e.re != nil && e.re.NumSubexp() < 1 {
			return nil, errors.New(e.key + ": no capture group: the field is the first (…) group")
		}
	}
	return &Format{Name: name, re: r}, nil
}

// Regexps returns a regex format's expressions (zero for a built-in).
func (f *Format) Regexps() Regexps { return f.re }

func (f *Format) location() *time.Location {
	if f.Location != nil {
		return f.Location
	}
	return time.Local
}

// Parse reads line into out, which it resets first. ref is the time the
// line was read, or for a file read after the fact its modification time:
// it supplies the year syslog timestamps lack (see LineTime).
//
// It returns nil for a packet line (whatever its protocol: callers look at
// out.Proto), ErrNotPacket, ErrNoPorts, or an error matching ErrMalformed.
func (f *Format) Parse(line string, ref time.Time, out *Fields) error {
	out.Reset()
	if f.kernel {
		return f.parseKernel(line, ref, out)
	}
	return f.parseRegex(line, ref, out)
}

// ParseAny tries each format in order and returns the first that reads
// line as a packet line (or finds it malformed), with its result. A line
// no format considers yields (nil, ErrNotPacket).
func ParseAny(formats []*Format, line string, ref time.Time, out *Fields) (*Format, error) {
	for _, f := range formats {
		err := f.Parse(line, ref, out)
		if err != ErrNotPacket {
			return f, err
		}
	}
	return nil, ErrNotPacket
}

// ProtoNumber maps a protocol as logged ("TCP", "udp", "ICMPv6", "6") to
// its number; ok is false for anything else.
func ProtoNumber(s string) (proto.Proto, bool) {
	switch {
	case eqFold(s, "TCP"):
		return TCP, true
	case eqFold(s, "UDP"):
		return UDP, true
	case eqFold(s, "ICMP"):
		return ICMP, true
	case eqFold(s, "ICMPv6"):
		return ICMPv6, true
	case eqFold(s, "UDPLITE"):
		return UDPLite, true
	}
	n, ok := atou(s, 255)
	return proto.Proto(n), ok
}

// eqFold is strings.EqualFold for ASCII, without the Unicode tables.
func eqFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'a' <= x && x <= 'z' {
			x -= 'a' - 'A'
		}
		if 'a' <= y && y <= 'z' {
			y -= 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// atou parses a decimal number no larger than max. Unlike strconv it
// refuses signs, spaces and underscores: the kernel prints none.
func atou(s string, max uint64) (uint64, bool) {
	if s == "" || len(s) > 20 {
		return 0, false
	}
	var n uint64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if n > (max-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	return n, true
}
