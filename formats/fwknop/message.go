package fwknop

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/doorward/doorward/formats/proto"
)

// Version is the SPA protocol version fwknop 2.x writes (FKO_PROTOCOL_VERSION).
const Version = "3.0.0"

// Field limits of libfko (fko_limits.h).
const (
	randLen        = 16   // FKO_RAND_VAL_SIZE: 16 decimal digits
	maxUser        = 64   // MAX_SPA_USERNAME_SIZE, base64 on the wire
	maxTimestamp   = 12   // MAX_SPA_TIMESTAMP_SIZE
	maxVersion     = 8    // MAX_SPA_VERSION_SIZE
	maxMsgType     = 2    // MAX_SPA_MESSAGE_TYPE_SIZE
	maxField       = 256  // MAX_SPA_MESSAGE_SIZE: message, NAT, auth, timeout (base64 on the wire)
	maxCommand     = 1400 // MAX_SPA_CMD_LEN
	maxHost        = 70   // MAX_HOSTNAME_LEN of a NAT access host
	minPlain       = 36   // MIN_SPA_ENCODED_MSG_SIZE
	maxPlain       = 1500 // MAX_SPA_ENCODED_MSG_SIZE (exclusive)
	minFields      = 6    // MIN_SPA_FIELDS: colons before the digest
	maxFields      = 10   // MAX_SPA_FIELDS + the digest
	maxClientTimer = 2 << 15
)

// MsgType is the SPA message type, numbered as fwknop numbers them.
type MsgType int

const (
	MsgCommand                     MsgType = iota // a command for the server to run (fwknop -C)
	MsgAccess                                     // open ports for the allow-IP
	MsgNATAccess                                  // forward to an inner host (fwknop -N)
	MsgClientTimeoutAccess                        // MsgAccess with the client's timeout
	MsgClientTimeoutNATAccess                     // MsgNATAccess with the client's timeout
	MsgLocalNATAccess                             // NAT to a port of the server itself (--nat-local)
	MsgClientTimeoutLocalNATAccess                // MsgLocalNATAccess with the client's timeout
)

// hasNAT reports whether a message of type t carries the NAT field.
func (t MsgType) hasNAT() bool {
	return t == MsgNATAccess || t == MsgLocalNATAccess || t == MsgClientTimeoutNATAccess || t == MsgClientTimeoutLocalNATAccess
}

// hasTimeout reports whether a message of type t carries the client timeout.
func (t MsgType) hasTimeout() bool {
	return t == MsgClientTimeoutAccess || t == MsgClientTimeoutNATAccess || t == MsgClientTimeoutLocalNATAccess
}

// withTimeout is t adjusted to whether a client timeout is present, as
// libfko's fko_set_spa_client_timeout adjusts it.
func (t MsgType) withTimeout(on bool) MsgType {
	pairs := [][2]MsgType{
		{MsgAccess, MsgClientTimeoutAccess},
		{MsgNATAccess, MsgClientTimeoutNATAccess},
		{MsgLocalNATAccess, MsgClientTimeoutLocalNATAccess},
	}
	for _, p := range pairs {
		if on && t == p[0] {
			return p[1]
		}
		if !on && t == p[1] {
			return p[0]
		}
	}
	return t
}

// maxAfterType is how many colons may follow the message type field
// (libfko's parse_msg_type): the message, then NAT and/or client timeout
// as the type says, then an optional server auth.
func (t MsgType) maxAfterType() int {
	switch t {
	case MsgNATAccess, MsgLocalNATAccess, MsgClientTimeoutAccess:
		return 3
	case MsgClientTimeoutNATAccess, MsgClientTimeoutLocalNATAccess:
		return 4
	}
	return 2
}

// Port is one requested port of an access message ("tcp/22").
type Port struct {
	Proto proto.Proto
	Port  uint16
}

func (p Port) String() string { return p.Proto.String() + "/" + strconv.Itoa(int(p.Port)) }

// Message is a decrypted SPA packet's fields, decoded from base64.
type Message struct {
	Random        string  // 16 decimal digits; Seal draws them when empty
	User          string  // the client's user name (fwknop -U, default the login)
	Time          int64   // unix seconds when the client built the packet
	Version       string  // protocol version, "3.0.0"; Seal writes Version when empty
	Type          MsgType // Seal adjusts it to whether ClientTimeout is set, as libfko does
	Access        string  // "allow-IP,proto/port,..." (MsgCommand: "allow-IP,command")
	NATAccess     string  // "host,port" for the NAT types, "" otherwise
	ServerAuth    string  // optional, "" if absent
	ClientTimeout uint32  // seconds asked for by the client (fwknop -f); 0 if none
	Digest        Digest  // inner digest type (fwknop -m); Open reports the one it found
}

// ParseAccess splits an access message into the allow-IP and the
// requested ports. fwknop clients send an IPv4 allow-IP, "0.0.0.0" for -s
// (the server then takes the packet's source address); an IPv6 allow-IP is
// Doorward's extension, which fwknopd refuses. Only tcp and udp ports
// pass, as in libfko (its "icmp" and "none" never fit its own length
// check).
func ParseAccess(s string) (netip.Addr, []Port, error) {
	ipText, specs, ok := strings.Cut(s, ",")
	if !ok || specs == "" {
		return netip.Addr{}, nil, fmt.Errorf("access message %q: no ports", s)
	}
	ip, err := parseAllowIP(ipText)
	if err != nil {
		return netip.Addr{}, nil, err
	}
	var ports []Port
	for spec := range strings.SplitSeq(specs, ",") {
		p, err := parsePort(spec)
		if err != nil {
			return netip.Addr{}, nil, fmt.Errorf("access message %q: %w", s, err)
		}
		ports = append(ports, p)
	}
	return ip, ports, nil
}

// parseAllowIP reads the allow-IP of a message: a dotted-quad IPv4 address
// (libfko's have_allow_ip) or an IPv6 address.
func parseAllowIP(s string) (netip.Addr, error) {
	ip, err := netip.ParseAddr(s)
	if err != nil || ip.Zone() != "" || ip.Is4In6() {
		return netip.Addr{}, fmt.Errorf("allow-IP %q is not an IPv4 or IPv6 address", s)
	}
	return ip, nil
}

// parsePort reads "tcp/N" or "udp/N", N in 1..65535 with at most 5 digits.
func parsePort(spec string) (Port, error) {
	name, num, _ := strings.Cut(spec, "/")
	var p Port
	switch name {
	case "tcp":
		p.Proto = proto.TCP
	case "udp":
		p.Proto = proto.UDP
	default:
		return p, fmt.Errorf("port %q: not tcp/N or udp/N", spec)
	}
	n, ok := parseDigits(num, 5)
	if !ok || n < 1 || n > 65535 {
		return p, fmt.Errorf("port %q: not a port number", spec)
	}
	p.Port = uint16(n)
	return p, nil
}

// parseDigits reads 1..max decimal digits.
func parseDigits(s string, max int) (int64, bool) {
	if len(s) < 1 || len(s) > max {
		return 0, false
	}
	var n int64
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + int64(s[i]-'0')
	}
	return n, true
}

// validateMessage checks the message field as libfko does for its type:
// "allow-IP,command" for a command, an access message otherwise.
func validateMessage(t MsgType, s string) error {
	if t != MsgCommand {
		_, _, err := ParseAccess(s)
		return err
	}
	ipText, cmd, ok := strings.Cut(s, ",")
	if !ok || cmd == "" || len(s) >= maxCommand {
		return fmt.Errorf("command message: not allow-IP,command")
	}
	_, err := parseAllowIP(ipText)
	return err
}

// validateNAT checks a NAT access field as libfko's
// validate_nat_access_msg: "host,port", one comma, a host without
// " /?\"'\\" of at most 70 characters.
func validateNAT(s string) error {
	host, port, ok := strings.Cut(s, ",")
	if !ok || strings.Contains(port, ",") || len(host) > maxHost || strings.ContainsAny(host, " /?\"'\\") {
		return fmt.Errorf("NAT access %q: not host,port", s)
	}
	if n, ok := parseDigits(port, 5); !ok || n < 1 || n > 65535 {
		return fmt.Errorf("NAT access %q: not host,port", s)
	}
	return nil
}

// validUser is libfko's validate_username: 1..64 characters, each a
// letter, a digit, or printable ASCII other than " / \ [ ] : ; | = , + * ? < >.
func validUser(s string) bool {
	if s == "" || len(s) > maxUser {
		return false
	}
	for i := range len(s) {
		c := s[i]
		if c < 0x20 || c > 0x7e || strings.IndexByte(`"/\[]:;|=,+*?<>`, c) >= 0 {
			return false
		}
	}
	return true
}

var errField = errors.New("field")

// decodeField base64-decodes one field and, as libfko keeps it as a C
// string, ends it at a NUL byte.
func decodeField(s string) (string, error) {
	b, ok := appendB64Decode(nil, []byte(s))
	if !ok {
		return "", errField
	}
	if i := strings.IndexByte(string(b), 0); i >= 0 {
		b = b[:i]
	}
	return string(b), nil
}
