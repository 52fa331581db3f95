package fwknop

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/doorward/doorward/config"
	cfg "github.com/doorward/doorward/config/fwknop"
	"github.com/doorward/doorward/config/knockd"
	"github.com/doorward/doorward/formats/fwknop"
	"github.com/doorward/doorward/formats/nftset"
	"github.com/doorward/doorward/formats/proto"
)

// fwknopd's defaults (server/fwknopd_common.h).
const (
	DefaultPort          = 62201 // DEF_PCAP_FILTER "udp port 62201"
	DefaultAccessTimeout = 30 * time.Second
	DefaultMaxTimeout    = 300 * time.Second
	DefaultMaxAge        = 120 * time.Second
	DefaultDigestFile    = "/var/run/fwknop/digest.cache"
	// maxTimeout is fwknopd's RCHK_MAX_FW_TIMEOUT and
	// RCHK_MAX_CMD_CYCLE_TIMER: 2<<22 seconds.
	maxTimeout = 2 << 22
)

// Stanza is one access.conf stanza (one Type = fwknop door), validated.
// The detector tries stanzas in file order, as fwknopd does.
type Stanza struct {
	Key  string // actions.Event.Door
	Name string // for log lines
	Num  int    // 1-based position among the doors, fwknopd's "stanza #n"
	Pos  config.Pos

	Source []netip.Prefix // SOURCE; 0.0.0.0/0 and ::/0 for ANY
	Dest   []netip.Prefix // DESTINATION; nil: any
	Open   []fwknop.Port  // OPEN_PORTS; nil: any port the client asks for
	Refuse []fwknop.Port  // RESTRICT_PORTS

	Keys fwknop.Keys

	AccessTimeout time.Duration // FW_ACCESS_TIMEOUT
	MaxTimeout    time.Duration // MAX_FW_TIMEOUT
	Expire        time.Time     // ACCESS_EXPIRE(_EPOCH); zero: never

	RequireUser    string // REQUIRE_USERNAME; "" with HasRequireUser false: any
	HasRequireUser bool
	RequireSource  bool // REQUIRE_SOURCE_ADDRESS: refuse allow-IP 0.0.0.0 ("-s")

	CmdOpen  string        // CMD_CYCLE_OPEN; "" uses the firewall
	CmdClose string        // CMD_CYCLE_CLOSE; "" with CmdOpen: NONE
	CmdTimer time.Duration // CMD_CYCLE_TIMER

	// Server-wide keys (fwknopd.conf), per door here.
	Port       uint16        // the SPA port, from PCAP_FILTER
	MaxAge     time.Duration // MAX_SPA_PACKET_AGE
	Aging      bool          // ENABLE_SPA_PACKET_AGING
	Persist    bool          // ENABLE_DIGEST_PERSISTENCE
	DigestFile string        // DIGEST_FILE: an fwknopd replay cache to import

	NftSet, NftSet6 nftset.Ref
}

// accessKeys are the access.conf keys a door reads, serverKeys the
// fwknopd.conf keys, both matched case-insensitively (REQUIRE_SOURCE is
// fwknopd's other spelling of REQUIRE_SOURCE_ADDRESS).
var (
	accessKeys = []string{
		"SOURCE", "DESTINATION", "OPEN_PORTS", "RESTRICT_PORTS",
		"KEY", "KEY_BASE64", "HMAC_KEY", "HMAC_KEY_BASE64", "HMAC_DIGEST_TYPE", "ENCRYPTION_MODE",
		"FW_ACCESS_TIMEOUT", "MAX_FW_TIMEOUT", "ACCESS_EXPIRE", "ACCESS_EXPIRE_EPOCH",
		"REQUIRE_USERNAME", "REQUIRE_SOURCE_ADDRESS",
		"CMD_CYCLE_OPEN", "CMD_CYCLE_CLOSE", "CMD_CYCLE_TIMER", "ENABLE_CMD_EXEC",
		"CMD_EXEC_USER", "CMD_EXEC_GROUP",
	}
	serverKeys = []string{
		"PCAP_FILTER", "MAX_SPA_PACKET_AGE", "ENABLE_SPA_PACKET_AGING",
		"ENABLE_DIGEST_PERSISTENCE", "DIGEST_FILE", "ENABLE_UDP_SERVER", "UDPSERV_PORT",
		"CMD_EXEC_TIMEOUT", "ENABLE_DESTINATION_RULE",
	}
	// ignoredKeys are fwknopd keys of features left out (GnuPG, commands
	// through sudo, NAT): a door that has one still loads, with a warning,
	// so an access.conf written for fwknopd runs.
	ignoredKeys = []string{
		"GPG_HOME_DIR", "GPG_EXE", "GPG_DECRYPT_ID", "GPG_DECRYPT_PW", "GPG_ALLOW_NO_PW",
		"GPG_REQUIRE_SIG", "GPG_DISABLE_SIG", "GPG_IGNORE_SIG_VERIFY_ERROR", "GPG_REMOTE_ID",
		"GPG_FINGERPRINT_ID", "CMD_SUDO_EXEC_USER", "CMD_SUDO_EXEC_GROUP", "DISABLE_DNAT",
	}
)

// Directives are the keys a Type = fwknop door may have, for the docs
// test: access.conf's, fwknopd.conf's, those ignored with a warning, and
// the nftables sets.
func Directives() []knockd.Key {
	var out []knockd.Key
	for _, l := range [][]string{accessKeys, serverKeys, ignoredKeys} {
		for _, k := range l {
			key := knockd.Key{Name: k}
			if k == "REQUIRE_SOURCE_ADDRESS" {
				key.Aliases = []string{"REQUIRE_SOURCE"}
			}
			out = append(out, key)
		}
	}
	return append(out, knockd.Key{Name: "Nft_Set"}, knockd.Key{Name: "Nft_Set_6"})
}

// SetupOptions are FromDoors' seams.
type SetupOptions struct {
	// Logf receives warnings about ignored keys.
	Logf func(format string, args ...any)
	// Now is the clock ACCESS_EXPIRE dates are read in (time.Local).
	Location *time.Location
}

// FromDoors validates Type = fwknop doors: every error is returned, each
// with its file:line.
func FromDoors(doors []*knockd.Door, key func(*knockd.Door) string, opt SetupOptions) ([]*Stanza, error) {
	if opt.Logf == nil {
		opt.Logf = func(string, ...any) {}
	}
	if opt.Location == nil {
		opt.Location = time.Local
	}
	var errs []error
	var out []*Stanza
	for i, d := range doors {
		s, err := fromDoor(d, opt)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		s.Key, s.Num = key(d), i+1
		out = append(out, s)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

func fromDoor(d *knockd.Door, opt SetupOptions) (*Stanza, error) {
	s := &Stanza{
		Name: d.Name, Pos: d.Pos,
		Port: DefaultPort, MaxAge: DefaultMaxAge, Aging: true, Persist: true,
		Keys: fwknop.Keys{HMAC: fwknop.DigestSHA256, Mode: fwknop.ModeCBC},
	}
	var errs config.List
	bad := func(p config.Param, format string, args ...any) {
		errs.Add(config.Errorf(p.Pos, p.Key, format, args...))
	}
	seen := map[string]config.Param{}
	var hasSource, hasHMACType, udpServer bool
	udpPort := uint16(DefaultPort)
	for _, p := range d.Params {
		if p.Key == cfg.WarningKey {
			// The loader's warnings about an fwknopd config (unknown and
			// ignored keys), logged once per load.
			opt.Logf("%s: %s", p.Pos, p.Value)
			continue
		}
		k := strings.ToUpper(strings.ReplaceAll(p.Key, "-", "_"))
		// A key given again replaces the first, as in fwknopd.
		seen[k] = p
		v := p.Value
		var err error
		switch k {
		case "SOURCE":
			hasSource = true
			s.Source, err = parseAddrs(v)
		case "DESTINATION":
			s.Dest, err = parseAddrs(v)
		case "OPEN_PORTS":
			s.Open, err = parsePorts(v)
		case "RESTRICT_PORTS":
			s.Refuse, err = parsePorts(v)
		case "KEY":
			if v == "" || v == "__CHANGEME__" {
				err = errors.New("no key: set a passphrase (fwknop --key-gen makes one)")
			}
			s.Keys.Key = []byte(v)
		case "KEY_BASE64":
			s.Keys.Key, err = parseBase64(v)
		case "HMAC_KEY":
			if v == "" || v == "__CHANGEME__" {
				err = errors.New("no key: set one (fwknop --key-gen makes one)")
			}
			s.Keys.HMACKey = []byte(v)
		case "HMAC_KEY_BASE64":
			s.Keys.HMACKey, err = parseBase64(v)
		case "HMAC_DIGEST_TYPE":
			hasHMACType = true
			s.Keys.HMAC, err = fwknop.ParseDigest(v)
		case "ENCRYPTION_MODE":
			s.Keys.Mode, err = fwknop.ParseMode(v)
		case "FW_ACCESS_TIMEOUT":
			s.AccessTimeout, err = parseTimeout(v, 0)
		case "MAX_FW_TIMEOUT":
			s.MaxTimeout, err = parseTimeout(v, 0)
		case "CMD_CYCLE_TIMER":
			s.CmdTimer, err = parseTimeout(v, 1)
		case "MAX_SPA_PACKET_AGE":
			s.MaxAge, err = parseTimeout(v, 1)
		case "ACCESS_EXPIRE":
			s.Expire, err = parseDate(v, opt.Location)
		case "ACCESS_EXPIRE_EPOCH":
			var n uint64
			n, err = strconv.ParseUint(v, 10, 63)
			if err == nil {
				s.Expire = time.Unix(int64(n), 0)
			}
		case "REQUIRE_USERNAME":
			s.RequireUser, s.HasRequireUser = v, true
		case "REQUIRE_SOURCE_ADDRESS", "REQUIRE_SOURCE":
			s.RequireSource, err = parseBool(v)
		case "ENABLE_SPA_PACKET_AGING":
			s.Aging, err = parseBool(v)
		case "ENABLE_DIGEST_PERSISTENCE":
			s.Persist, err = parseBool(v)
		case "ENABLE_CMD_EXEC":
			var on bool
			if on, err = parseBool(v); err == nil && on {
				opt.Logf("%s: ENABLE_CMD_EXEC: command messages are always refused here (detectors/fwknop/README.md)", p.Pos)
			}
		case "CMD_CYCLE_OPEN":
			if v == "" {
				err = errors.New("empty command")
			}
			s.CmdOpen = v
		case "CMD_CYCLE_CLOSE":
			if v == "" {
				err = errors.New("empty command (NONE: no close command)")
			}
			s.CmdClose = v
		case "DIGEST_FILE":
			if !strings.HasPrefix(v, "/") {
				err = errors.New("not an absolute path")
			}
			s.DigestFile = v
		case "PCAP_FILTER":
			s.Port, err = filterPort(v)
		case "ENABLE_UDP_SERVER":
			udpServer, err = parseBool(v)
		case "UDPSERV_PORT":
			var n int
			if n, err = strconv.Atoi(v); err != nil || n < 1 || n > 65535 {
				err = fmt.Errorf("%q is not a port", v)
			}
			udpPort = uint16(n)
		case "CMD_EXEC_USER", "CMD_EXEC_GROUP", "CMD_EXEC_TIMEOUT", "ENABLE_DESTINATION_RULE":
			// For command messages, which are refused, and for rules
			// naming the packet's destination, which ours do not: only
			// that the value reads.
			if k == "ENABLE_DESTINATION_RULE" {
				_, err = parseBool(v)
			}
		case "NFT_SET", "NFT_SET_6":
			var r nftset.Ref
			if r, err = nftset.Parse(v); err == nil {
				err = checkSet(r, k == "NFT_SET_6")
			}
			if k == "NFT_SET" {
				s.NftSet = r
			} else {
				s.NftSet6 = r
			}
		default:
			if contains(ignoredKeys, k) {
				opt.Logf("%s: %s: not supported (GnuPG and commands through sudo are left out), ignored", p.Pos, p.Key)
				continue
			}
			err = errors.New("unknown directive")
		}
		if err != nil {
			bad(p, "%v", err)
		}
	}
	at := func(k string) config.Pos {
		if p, ok := seen[k]; ok {
			return p.Pos
		}
		return d.Pos
	}
	switch {
	case !hasSource:
		errs.Add(config.Errorf(d.Pos, "SOURCE", "a fwknop door needs SOURCE (ANY, addresses or networks)"))
	case len(s.Keys.Key) == 0 && len(errs) == 0:
		errs.Add(config.Errorf(d.Pos, "KEY", "no keys found for access stanza: KEY or KEY_BASE64 is required (GnuPG is not supported)"))
	}
	if _, two := seen["KEY"]; two {
		if _, b := seen["KEY_BASE64"]; b {
			errs.Add(config.Errorf(at("KEY_BASE64"), "KEY_BASE64", "KEY is given too: one key per stanza"))
		}
	}
	if _, two := seen["HMAC_KEY"]; two {
		if _, b := seen["HMAC_KEY_BASE64"]; b {
			errs.Add(config.Errorf(at("HMAC_KEY_BASE64"), "HMAC_KEY_BASE64", "HMAC_KEY is given too: one key per stanza"))
		}
	}
	keyAt, hmacAt := at("KEY"), at("HMAC_KEY")
	if p, ok := seen["KEY_BASE64"]; ok {
		keyAt = p.Pos
	}
	if p, ok := seen["HMAC_KEY_BASE64"]; ok {
		hmacAt = p.Pos
	}
	if len(s.Keys.Key) > fwknop.MaxKey {
		errs.Add(config.Errorf(keyAt, "KEY", "%d bytes: at most %d (fwknop's longest key)", len(s.Keys.Key), fwknop.MaxKey))
	}
	if len(s.Keys.HMACKey) > fwknop.MaxHMACKey {
		errs.Add(config.Errorf(hmacAt, "HMAC_KEY", "%d bytes: at most %d (fwknop's longest HMAC key)", len(s.Keys.HMACKey), fwknop.MaxHMACKey))
	}
	if hasHMACType && s.Keys.HMACKey == nil {
		errs.Add(config.Errorf(at("HMAC_DIGEST_TYPE"), "HMAC_DIGEST_TYPE", "no HMAC_KEY or HMAC_KEY_BASE64 to use it with"))
	}
	if s.Keys.HMACKey != nil && string(s.Keys.HMACKey) == string(s.Keys.Key) {
		// fwknopd refuses it too: the same secret for both keys.
		errs.Add(config.Errorf(at("HMAC_KEY"), "HMAC_KEY", "the HMAC key must differ from the encryption key"))
	}
	if s.CmdClose != "" && s.CmdOpen == "" {
		errs.Add(config.Errorf(at("CMD_CYCLE_CLOSE"), "CMD_CYCLE_CLOSE", "without CMD_CYCLE_OPEN"))
	}
	if s.CmdOpen != "" {
		if s.CmdClose == "" {
			errs.Add(config.Errorf(at("CMD_CYCLE_OPEN"), "CMD_CYCLE_CLOSE", "CMD_CYCLE_OPEN needs CMD_CYCLE_CLOSE (NONE: no close command)"))
		}
		if s.CmdTimer == 0 && s.CmdClose != "" && !strings.EqualFold(s.CmdClose, "NONE") {
			errs.Add(config.Errorf(at("CMD_CYCLE_OPEN"), "CMD_CYCLE_TIMER", "CMD_CYCLE_CLOSE needs CMD_CYCLE_TIMER (seconds)"))
		}
		if strings.EqualFold(s.CmdClose, "NONE") {
			s.CmdClose = ""
		}
	}
	if udpServer {
		// fwknopd then reads SPA packets from a socket on UDPSERV_PORT
		// instead of capturing; we capture that port.
		s.Port = udpPort
	}
	if s.AccessTimeout < time.Second {
		s.AccessTimeout = DefaultAccessTimeout
	}
	if s.MaxTimeout < time.Second {
		s.MaxTimeout = DefaultMaxTimeout
	}
	if s.Persist && s.DigestFile == "" {
		s.DigestFile = DefaultDigestFile
	}
	if err := errs.Err(); err != nil {
		return nil, err
	}
	return s, nil
}

func contains(l []string, k string) bool {
	for _, s := range l {
		if s == k {
			return true
		}
	}
	return false
}

// parseAddrs reads a SOURCE or DESTINATION list: ANY, addresses,
// networks as address/bits or (IPv4, as fwknopd) address/dotted-mask,
// separated by commas or spaces. IPv6 is ours: fwknopd reads IPv4 only.
func parseAddrs(v string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' }) {
		if strings.EqualFold(f, "ANY") {
			out = append(out, netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0"))
			continue
		}
		a, mask, hasMask := strings.Cut(f, "/")
		addr, err := netip.ParseAddr(a)
		if err != nil || addr.Zone() != "" {
			return nil, fmt.Errorf("%q is not an address", f)
		}
		addr = addr.Unmap()
		bits := addr.BitLen()
		if hasMask {
			if m, err := netip.ParseAddr(mask); err == nil && m.Is4() && addr.Is4() {
				bits = maskBits(m)
				if bits < 0 {
					return nil, fmt.Errorf("%q: %s is not a netmask", f, mask)
				}
			} else if n, err := strconv.Atoi(mask); err == nil && n >= 0 && n <= addr.BitLen() && mask[0] != '+' {
				bits = n
			} else {
				return nil, fmt.Errorf("%q: %q is not a prefix length or netmask", f, mask)
			}
		}
		out = append(out, netip.PrefixFrom(addr, bits).Masked())
	}
	if len(out) == 0 {
		return nil, errors.New("empty list (ANY for any address)")
	}
	return out, nil
}

// maskBits is the prefix length of a contiguous IPv4 netmask, or -1.
func maskBits(m netip.Addr) int {
	b := m.As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	n := 0
	for v&0x80000000 != 0 {
		v <<= 1
		n++
	}
	if v != 0 {
		return -1
	}
	return n
}

// parsePorts reads "tcp/22, udp/53" as access.conf's OPEN_PORTS does.
func parsePorts(v string) ([]fwknop.Port, error) {
	var out []fwknop.Port
	for _, f := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' }) {
		pr, num, ok := strings.Cut(f, "/")
		n, err := strconv.ParseUint(num, 10, 16)
		if !ok || err != nil {
			return nil, fmt.Errorf("%q is not proto/port (tcp/22)", f)
		}
		var p proto.Proto
		switch strings.ToLower(pr) {
		case "tcp":
			p = proto.TCP
		case "udp":
			p = proto.UDP
		default:
			return nil, fmt.Errorf("%q: protocol %q is not tcp or udp", f, pr)
		}
		out = append(out, fwknop.Port{Proto: p, Port: uint16(n)})
	}
	if len(out) == 0 {
		return nil, errors.New("empty list")
	}
	return out, nil
}

func parseBase64(v string) ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(v)
	if err != nil {
		return nil, errors.New("not base64")
	}
	if len(b) == 0 {
		return nil, errors.New("empty key")
	}
	return b, nil
}

// parseTimeout reads seconds in [low, 2<<22], fwknopd's range.
func parseTimeout(v string, low int) (time.Duration, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < low || n > maxTimeout || v[0] == '+' {
		return 0, fmt.Errorf("%q is not a number of seconds in [%d,%d]", v, low, maxTimeout)
	}
	return time.Duration(n) * time.Second, nil
}

// parseBool is fwknopd's: "Y…" (any case) is yes, "N…" no; we refuse
// anything else rather than read it as no.
func parseBool(v string) (bool, error) {
	switch {
	case len(v) > 0 && (v[0] == 'Y' || v[0] == 'y'):
		return true, nil
	case len(v) > 0 && (v[0] == 'N' || v[0] == 'n'):
		return false, nil
	}
	return false, fmt.Errorf("%q is not Y or N", v)
}

// parseDate reads ACCESS_EXPIRE's MM/DD/YYYY, local midnight as
// fwknopd's mktime gives it.
func parseDate(v string, loc *time.Location) (time.Time, error) {
	t, err := time.ParseInLocation("01/02/2006", v, loc)
	if err != nil {
		if t, err = time.ParseInLocation("1/2/2006", v, loc); err != nil {
			return time.Time{}, fmt.Errorf("%q is not a date MM/DD/YYYY", v)
		}
	}
	return t, nil
}

// filterPort finds the SPA port in a PCAP_FILTER ("udp port 62201",
// "udp dst port 62201"): we capture with our own filter, so only the port
// matters, and a filter naming several is refused rather than guessed.
func filterPort(v string) (uint16, error) {
	f := strings.Fields(strings.ToLower(v))
	var port uint16
	for i := 0; i+1 < len(f); i++ {
		if f[i] != "port" {
			continue
		}
		n, err := strconv.ParseUint(f[i+1], 10, 16)
		if err != nil || n == 0 {
			return 0, fmt.Errorf("%q: %q is not a port", v, f[i+1])
		}
		if port != 0 && uint16(n) != port {
			return 0, fmt.Errorf("%q: more than one port: give the SPA port once", v)
		}
		port = uint16(n)
	}
	if port == 0 {
		return 0, fmt.Errorf("%q names no port (\"udp port 62201\")", v)
	}
	if strings.Contains(v, "tcp") && !strings.Contains(v, "udp") {
		return 0, fmt.Errorf("%q: SPA over TCP is not supported, only UDP", v)
	}
	return port, nil
}

// checkSet: each address family has its own set (docs/nftables.md), and
// the port of an element is the one the client asked for, so a set
// reference names no port of its own.
func checkSet(r nftset.Ref, v6 bool) error {
	switch {
	case r.Port != 0:
		return fmt.Errorf("%q: no port here: each element gets the port the client asked for (a set of address . inet_service)", r)
	case v6 && !r.For6():
		return fmt.Errorf("%q: family %s holds no IPv6 addresses", r, r.Family)
	case !v6 && !r.For4():
		return fmt.Errorf("%q: family %s holds no IPv4 addresses", r, r.Family)
	}
	return nil
}
