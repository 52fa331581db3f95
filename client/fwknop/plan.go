package fwknop

import (
	"encoding/base64"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/doorward/doorward/formats/fwknop"
)

// plan is everything one SPA packet needs, gathered from the fwknoprc
// stanzas and the command line, which set it through the same names (the
// fwknoprc keys), so an option and its rc key cannot drift apart.
type plan struct {
	access     string // -A, ACCESS: "tcp/22,udp/53"
	allowIP    string // -a, ALLOW_IP; "0.0.0.0" for -s (ALLOW_IP source)
	server     string // -D, SPA_SERVER
	port       uint16 // -p, SPA_SERVER_PORT
	key        []byte // --key-rijndael, KEY; --key-base64-rijndael, KEY_BASE64
	hmacKey    []byte // --key-hmac, HMAC_KEY; --key-base64-hmac, HMAC_KEY_BASE64
	useHMAC    bool   // --use-hmac, USE_HMAC; implied by an HMAC key
	hmac       fwknop.Digest
	digest     fwknop.Digest // -m, DIGEST_TYPE
	mode       fwknop.Mode   // -M, ENCRYPTION_MODE
	timeout    uint32        // -f, FW_TIMEOUT
	user       string        // -U, SPOOF_USER
	nat        string        // -N, NAT_ACCESS
	command    string        // -C (no rc key in fwknop)
	ipv4Only   bool          // -4, SERVER_RESOLVE_IPV4
	verbose    bool          // -v, VERBOSE
	test       bool          // -T
	savePacket string        // -B
}

// unsupported are fwknoprc keys fwknop knows and knock does not act on:
// they are reported and skipped, so a shared fwknoprc keeps working.
var unsupported = map[string]string{
	"SPA_SOURCE_PORT": "", "TIME_OFFSET": "", "RAND_PORT": "", "USE_WGET_USER_AGENT": "",
	"HTTP_USER_AGENT": "", "RESOLVE_URL": "", "WGET_CMD": "", "NO_SAVE_ARGS": "",
	"NAT_LOCAL": "", "NAT_RAND_PORT": "", "NAT_PORT": "", "RESOLVE_HTTP_ONLY": "",
	"SPOOF_SOURCE_IP": "", "KEY_FILE": "", "HMAC_KEY_FILE": "", "USE_GPG_AGENT": "",
	"GPG_RECIPIENT": "", "GPG_SIGNER": "", "GPG_HOMEDIR": "", "GPG_EXE": "",
	"GPG_SIGNING_PW": "", "GPG_SIGNING_PW_BASE64": "", "GPG_NO_SIGNING_PW": "",
	"RESOLVE_IP_HTTP":  "resolving the external address (-R) is not supported: give -a or -s",
	"RESOLVE_IP_HTTPS": "resolving the external address (-R) is not supported: give -a or -s",
	"USE_GPG":          "GnuPG mode is not supported",
}

// errIgnored is set's answer for a known key it does not act on.
type errIgnored struct{ name string }

func (e errIgnored) Error() string { return e.name + " is not supported, ignored" }

// set applies one setting by its fwknoprc name (case as fwknop writes it).
func (p *plan) set(name, value string) error {
	yes := strings.EqualFold(value, "Y")
	switch name {
	case "ACCESS":
		p.access = value
	case "ALLOW_IP":
		switch {
		case strings.EqualFold(value, "source"):
			p.allowIP = "0.0.0.0"
		case strings.EqualFold(value, "resolve"):
			return fmt.Errorf("ALLOW_IP resolve: resolving the external address is not supported: give an address or source")
		default:
			ip, err := netip.ParseAddr(value)
			if err != nil || ip.Zone() != "" {
				return fmt.Errorf("allow-IP %q is not an IPv4 or IPv6 address", value)
			}
			p.allowIP = ip.Unmap().String()
		}
	case "SPA_SERVER":
		p.server = value
	case "SPA_SERVER_PORT":
		n, err := strconv.ParseUint(value, 10, 16)
		if err != nil || n == 0 {
			return fmt.Errorf("port %q is not a number from 1 to 65535", value)
		}
		p.port = uint16(n)
	case "SPA_SERVER_PROTO":
		if !strings.EqualFold(value, "udp") {
			return fmt.Errorf("server protocol %q: only udp is supported", value)
		}
	case "KEY":
		p.key = []byte(value)
	case "KEY_BASE64":
		b, err := decodeKey(value)
		if err != nil {
			return err
		}
		p.key = b
	case "HMAC_KEY":
		p.hmacKey, p.useHMAC = []byte(value), true
	case "HMAC_KEY_BASE64":
		b, err := decodeKey(value)
		if err != nil {
			return err
		}
		p.hmacKey, p.useHMAC = b, true
	case "USE_HMAC":
		p.useHMAC = yes
	case "HMAC_DIGEST_TYPE":
		d, err := fwknop.ParseDigest(value)
		if err != nil {
			return err
		}
		p.hmac = d
	case "DIGEST_TYPE":
		d, err := fwknop.ParseDigest(value)
		if err != nil {
			return err
		}
		p.digest = d
	case "ENCRYPTION_MODE":
		m, err := fwknop.ParseMode(value)
		if err != nil {
			return err
		}
		p.mode = m
	case "FW_TIMEOUT":
		n, err := strconv.ParseUint(value, 10, 32)
		if err != nil {
			return fmt.Errorf("firewall timeout %q is not a number of seconds", value)
		}
		p.timeout = uint32(n)
	case "SPOOF_USER":
		p.user = value
	case "NAT_ACCESS":
		p.nat = value
	case "SERVER_RESOLVE_IPV4":
		p.ipv4Only = yes
	case "VERBOSE":
		p.verbose = yes
	default:
		why, known := unsupported[name]
		switch {
		case !known:
			return fmt.Errorf("unknown key %q", name)
		case why != "" && yes:
			return fmt.Errorf("%s %s: %s", name, value, why)
		}
		return errIgnored{name}
	}
	return nil
}

// decodeKey reads a base64 key as fwknop takes it, padded or not.
func decodeKey(s string) ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		b, err = base64.RawStdEncoding.DecodeString(s)
	}
	if err != nil || len(b) == 0 {
		return nil, fmt.Errorf("%q doesn't look like base64-encoded data", s)
	}
	return b, nil
}

// message is the SPA message the plan asks for.
func (p *plan) message() (fwknop.Message, error) {
	m := fwknop.Message{User: p.user, Version: fwknop.Version, Digest: p.digest, ClientTimeout: p.timeout}
	if p.allowIP == "" {
		return m, fmt.Errorf("must use one of -s or -a to give the address to allow (-R is not supported)")
	}
	switch {
	case p.command != "":
		m.Type, m.Access, m.ClientTimeout = fwknop.MsgCommand, p.allowIP+","+p.command, 0
	case p.access == "":
		return m, fmt.Errorf("no ports to open: give -A, e.g. -A tcp/22")
	default:
		m.Type, m.Access = fwknop.MsgAccess, p.allowIP+","+p.access
		if _, _, err := fwknop.ParseAccess(m.Access); err != nil {
			return m, fmt.Errorf("-A %s: expected proto/port[,proto/port...], e.g. tcp/22,udp/53", p.access)
		}
	}
	if p.nat != "" {
		if m.Type == fwknop.MsgCommand {
			return m, fmt.Errorf("-N and -C do not go together")
		}
		m.Type, m.NATAccess = fwknop.MsgNATAccess, p.nat
	}
	// The client timeout selects the message type, as in libfko.
	switch {
	case m.ClientTimeout > 0 && m.Type == fwknop.MsgAccess:
		m.Type = fwknop.MsgClientTimeoutAccess
	case m.ClientTimeout > 0 && m.Type == fwknop.MsgNATAccess:
		m.Type = fwknop.MsgClientTimeoutNATAccess
	}
	return m, nil
}

// keys are the plan's keys for Seal; the caller has filled in any key
// that had to be asked for.
func (p *plan) keys() *fwknop.Keys {
	k := &fwknop.Keys{Key: p.key, HMAC: p.hmac, Mode: p.mode}
	if p.useHMAC {
		k.HMACKey = p.hmacKey
	}
	return k
}
