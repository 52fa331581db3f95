// Package knockdaemon is knockdaemon's client side, Martin Krzywinski's
// knockclient (spec ../shared/specs/knockdaemon.md §9): it builds the knock
// record from a knockclient.conf and command-line overrides, encrypts it
// (formats/knockdaemon) and lists the span ports to hit, in order. Sending is
// client/sequence's: one SYN (a non-blocking connect, closed at once) or
// one UDP datagram per hit.
package knockdaemon

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/doorward/doorward/client/sequence"
	kdformat "github.com/doorward/doorward/formats/knockdaemon"
)

// DefaultDelay is the pause after each hit ([chosen]: the prototype's is
// unknown). It keeps the hits in order on the wire and in a firewall log.
const DefaultDelay = 10 * time.Millisecond

// Conf holds knockclient settings by lowercase key: the keys of a legacy
// knockclient.conf (remote, client, port, knock, cipher, encrypt, key, iv,
// portspan), the flags (flag0…flag31), and ours (time, iv_hex, header,
// port_width, time_width, checksum_mod, span_tail, delay, udp, mac_key,
// key_file, mac_key_file; the files are read by the caller, see Secrets).
type Conf map[string]string

// keys are the settings a Conf may hold, besides flagN.
var keys = []string{
	"remote", "client", "port", "knock", "cipher", "encrypt", "key", "iv", "portspan",
	"time", "iv_hex", "header", "port_width", "time_width", "checksum_mod", "span_tail", "delay", "udp",
	"mac_key", "key_file", "mac_key_file",
}

// legacyIgnored are knockclient.conf keys of features we do not have
// (writing fake firewall-log lines, Perl's log levels): read and ignored.
var legacyIgnored = []string{"logfile", "logtofile", "fileformat", "debug", "quiet"}

// Known reports whether key (lowercase) is a setting, and whether it is
// a legacy one that is accepted but ignored.
func Known(key string) (known, ignored bool) {
	if slices.Contains(keys, key) {
		return true, false
	}
	if n, ok := flagNumber(key); ok && n < kdformat.MaxFlags {
		return true, false
	}
	return slices.Contains(legacyIgnored, key), slices.Contains(legacyIgnored, key)
}

func flagNumber(key string) (int, bool) {
	digits, ok := strings.CutPrefix(key, "flag")
	if !ok || digits == "" {
		return 0, false
	}
	n, err := strconv.Atoi(digits)
	return n, err == nil && n >= 0 && strconv.Itoa(n) == digits
}

// ReadConf reads the part of Config::General a knockclient.conf uses:
// "key = value" or "key value" lines, # comments (\# is a literal #), blank
// lines, a value wholly in double quotes unquoted, and a trailing backslash
// joining the next line. Keys are case-insensitive. Unknown keys and
// blocks are errors with name:line; legacy keys we do not implement are
// returned in ignored.
func ReadConf(name string, r io.Reader) (c Conf, ignored []string, err error) {
	c = Conf{}
	var errs []error
	sc := bufio.NewScanner(r)
	var cont strings.Builder
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if s, ok := strings.CutSuffix(strings.TrimRight(line, " \t\r"), `\`); ok {
			cont.WriteString(s)
			continue
		}
		if cont.Len() > 0 {
			line = cont.String() + strings.TrimLeft(line, " \t")
			cont.Reset()
		}
		line = strings.TrimSpace(stripComment(line))
		if line == "" {
			continue
		}
		if line[0] == '<' {
			errs = append(errs, fmt.Errorf("%s:%d: blocks are not part of a knockclient config", name, n))
			continue
		}
		key, val := splitKey(line)
		key = strings.ToLower(key)
		known, ign := Known(key)
		switch {
		case !known:
			errs = append(errs, fmt.Errorf("%s:%d: unknown key %q", name, n, key))
		case ign:
			ignored = append(ignored, key)
		default:
			c[key] = val
		}
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", name, err))
	}
	return c, ignored, errors.Join(errs...)
}

// stripComment removes a # comment; \# stands for #.
func stripComment(line string) string {
	var b strings.Builder
	for i := 0; i < len(line); i++ {
		switch {
		case line[i] == '\\' && i+1 < len(line) && line[i+1] == '#':
			b.WriteByte('#')
			i++
		case line[i] == '#':
			return b.String()
		default:
			b.WriteByte(line[i])
		}
	}
	return b.String()
}

// splitKey splits at the first '=' or, failing that, the first blank, as
// Config::General does, and unquotes a value wholly in double quotes.
func splitKey(line string) (key, val string) {
	if k, v, ok := strings.Cut(line, "="); ok {
		key, val = k, v
	} else if i := strings.IndexAny(line, " \t"); i >= 0 {
		key, val = line[:i], line[i+1:]
	} else {
		key = line
	}
	key, val = strings.TrimSpace(key), strings.TrimSpace(val)
	if len(val) >= 2 && val[0] == '"' && val[len(val)-1] == '"' {
		val = val[1 : len(val)-1]
	}
	return key, val
}

// Knock is a knock ready to send.
type Knock struct {
	Remote netip.Addr
	Record kdformat.Record
	Codec  *kdformat.Codec
	UDP    bool
	Delay  time.Duration
}

// Plan validates c and builds the knock. remote is c["remote"] resolved;
// local is this host's address towards it, the default for "client" (the
// address the knock asks the server to open for); now fills a 4-byte TIME
// field that is not given.
func (c Conf) Plan(remote, local netip.Addr, now time.Time) (*Knock, error) {
	var errs []error
	bad := func(key string, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}
	s := kdformat.Settings{
		Portspan: c["portspan"], Knock: c["knock"], Encrypt: c["encrypt"], Cipher: c["cipher"],
		Key: c["key"], IV: c["iv"], IVHex: c["iv_hex"], Header: c["header"],
		PortWidth: c["port_width"], TimeWidth: c["time_width"], ChecksumMod: c["checksum_mod"], SpanTail: c["span_tail"],
		MacKey: c["mac_key"],
	}
	codec, err := s.Codec()
	if err != nil {
		var j interface{ Unwrap() []error }
		if errors.As(err, &j) {
			for _, e := range j.Unwrap() {
				var se *kdformat.SettingError
				if errors.As(e, &se) {
					bad(strings.ToLower(se.Key), "%v", se.Err)
					continue
				}
				errs = append(errs, e)
			}
		} else {
			errs = append(errs, err)
		}
	}
	k := &Knock{Remote: remote.Unmap(), Codec: codec, Delay: DefaultDelay}
	if !k.Remote.IsValid() {
		bad("remote", "missing (the host to knock)")
	}
	if v, ok := c["client"]; ok {
		a, err := netip.ParseAddr(v)
		if err != nil || !a.Unmap().Is4() {
			bad("client", "%q is not an IPv4 address (the knock carries 4 bytes)", v)
		}
		k.Record.IP = a.Unmap()
	} else if local = local.Unmap(); local.Is4() {
		k.Record.IP = local
	} else if codec != nil && codec.Layouts[0].Has(kdformat.FieldIP) {
		bad("client", "not given, and this host has no IPv4 address towards %v: give the address to open for", remote)
	}
	if v, ok := c["port"]; ok {
		n, err := strconv.ParseUint(v, 10, 16)
		if err != nil || n == 0 {
			bad("port", "%q is not a port from 1 to 65535", v)
		}
		k.Record.Port = uint16(n)
	} else if codec != nil && codec.Layouts[0].Has(kdformat.FieldPort) {
		bad("port", "missing (the port to open)")
	}
	if v, ok := c["time"]; ok {
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			bad("time", "%q is not a number from 0 to 4294967295", v)
		}
		k.Record.Time = uint32(n)
	} else if c["time_width"] == "4" {
		k.Record.Time = uint32(now.Unix())
	}
	for key, v := range c {
		if i, ok := flagNumber(key); ok && i < kdformat.MaxFlags {
			n, err := strconv.ParseUint(v, 10, 8)
			if err != nil {
				bad(key, "%q is not a number from 0 to 255", v)
			}
			k.Record.Flags[i] = uint8(n)
		}
	}
	if v, ok := c["delay"]; ok {
		ms, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			bad("delay", "%q is not a whole number of milliseconds", v)
		}
		k.Delay = time.Duration(ms) * time.Millisecond
	}
	if v, ok := c["udp"]; ok {
		switch strings.ToLower(v) {
		case "yes", "true", "1", "":
			k.UDP = true
		case "no", "false", "0":
		default:
			bad("udp", "%q is not yes or no", v)
		}
	}
	if err := errors.Join(sortErrs(errs)...); err != nil {
		return nil, err
	}
	// Check the record fits its fields now, not at send time.
	if _, err := codec.Layouts[0].Append(nil, &k.Record, codec.Sums); err != nil {
		return nil, err
	}
	return k, nil
}

func sortErrs(errs []error) []error {
	slices.SortStableFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
	return errs
}

// Encode encrypts the record (IV or salt from random) and spells it on the
// span: the wire bytes (with the MAC tag when mac_key is set) and the
// ports to hit, in order.
func (k *Knock) Encode(random io.Reader) (wire []byte, ports []uint16, err error) {
	if wire, err = k.Codec.Knock(nil, &k.Record, random); err != nil {
		return nil, nil, err
	}
	tail := k.Codec.Tail
	if tail == kdformat.TailAuto {
		tail = kdformat.TailPad
	}
	return wire, k.Codec.Span.Encode(nil, wire, tail), nil
}

// Hits are the ports as client/sequence hits, in order.
func (k *Knock) Hits(ports []uint16) []sequence.Hit {
	hits := make([]sequence.Hit, len(ports))
	for i, p := range ports {
		hits[i] = sequence.Hit{Host: k.Remote.String(), Port: strconv.Itoa(int(p)), UDP: k.UDP}
	}
	return hits
}

// Resolve looks up host once (an address is taken as it is).
func Resolve(ctx context.Context, host string) (netip.Addr, error) {
	if host == "" {
		return netip.Addr{}, nil
	}
	if a, err := netip.ParseAddr(host); err == nil {
		return a, nil
	}
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("cannot resolve %q: %w", host, err)
	}
	if len(addrs) == 0 {
		return netip.Addr{}, fmt.Errorf("cannot resolve %q: no address", host)
	}
	// Prefer IPv4: the record carries an IPv4 address, and the server
	// sees the knock come from the same family.
	for _, a := range addrs {
		if a.Unmap().Is4() {
			return a.Unmap(), nil
		}
	}
	return addrs[0], nil
}

// LocalAddr is the address this host sends from towards remote, found by
// routing a UDP socket (no packet is sent).
func LocalAddr(remote netip.Addr) (netip.Addr, error) {
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(remote, 9)))
	if err != nil {
		return netip.Addr{}, err
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).AddrPort().Addr().Unmap(), nil
}
