// Package doorman is the client side of doorman single-packet knocks: what
// J.B. Ward's knock(1) does, for `knock doorman`. It reads ~/.knockcf,
// builds the payload (formats/doorman), sends it as one UDP datagram over
// IPv4, and runs the "run" command with %H% and %P% substituted.
package doorman

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"

	"github.com/doorward/doorward/formats/doorman"
	"github.com/doorward/doorward/internal/trust"
)

// KnockCF is what ~/.knockcf (knockcf(5)) holds. Empty fields were not
// given.
type KnockCF struct {
	Group  string
	Secret []byte
	Run    string
	RunSet bool
	Port   int // 0: not given
}

// ReadKnockCF reads a .knockcf with doormand's config lexer (keys group,
// or grp as the doorman article spells it, secret, port, run). found is false
// when the file cannot be opened (knock then warns and goes on). A file
// with any group or other permission bit is refused, as knock refuses it:
// it holds a secret. A port outside 1..65535 is an error; values are read
// with atoi, and group and secret truncated to their limits, as knock does.
func ReadKnockCF(path string) (kc KnockCF, found bool, err error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return KnockCF{}, false, nil
	}
	if err := checkKnockCF(path); err != nil {
		return KnockCF{}, true, err
	}
	cf := doorman.ParseCF(path, src)
	e, ok := cf.First("group")
	if !ok {
		// The doorman article's example .knockcf spells the key grp;
		// knock(1) only knows group, which wins when both are given.
		e, ok = cf.First("grp")
	}
	if ok {
		kc.Group = trunc(e.Value, doorman.MaxGroup)
	}
	if e, ok := cf.First("secret"); ok {
		kc.Secret = []byte(trunc(e.Value, doorman.MaxSecret))
	}
	if e, ok := cf.First("run"); ok {
		// knock skips one leading quote: with the lexer's quote rule
		// this makes `run "ssh -l me %H%"` work (single quotes do not).
		v := e.Value
		if v != "" && (v[0] == '"' || v[0] == '\'') {
			v = v[1:]
		}
		kc.Run, kc.RunSet = v, true
	}
	if e, ok := cf.First("port"); ok {
		n := doorman.Atoi([]byte(e.Value))
		if n < 1 || n > 65535 {
			return KnockCF{}, true, fmt.Errorf("illegal port number (%s) in %s", e.Value, path)
		}
		kc.Port = n
	}
	return kc, true, nil
}

// checkKnockCF is knock's check of a .knockcf: it holds a secret, so no
// group or other permission bit may be set (mode & 077 == 0). Its owner
// is not checked, as knock does not check it.
func checkKnockCF(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if !trust.PrivateMode(fi.Mode()) {
		return fmt.Errorf("'%s' must not be readable or writeable by anyone but the owner", path)
	}
	return nil
}

func trunc(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// ServicePort reads the service argument: a number 1..65534 or an
// /etc/services name (looked up with services). knock's atoi also takes
// "22abc" as 22; we do not.
func ServicePort(service string, services func(string) (int, error)) (int, error) {
	if n, err := strconv.Atoi(service); err == nil {
		if n < 1 || n > 65534 {
			return 0, fmt.Errorf("invalid port number, %s", service)
		}
		return n, nil
	}
	n, err := services(service)
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Errorf("no such service, %s", service)
	}
	return n, nil
}

// ResolveHost returns host's IPv4 address: a literal, or the first A
// record, as knock's inet_addr/gethostbyname.
func ResolveHost(ctx context.Context, host string) (netip.Addr, error) {
	if a, err := netip.ParseAddr(host); err == nil {
		if a.Unmap().Is4() {
			return a.Unmap(), nil
		}
		return netip.Addr{}, fmt.Errorf("can't find host '%s': doorman knocks are IPv4 only", host)
	}
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip4", host)
	if err != nil || len(addrs) == 0 {
		return netip.Addr{}, fmt.Errorf("can't find host '%s'", host)
	}
	return addrs[0].Unmap(), nil
}

// Send sends payload as one UDP datagram to dst. Like knock, it waits for
// nothing.
func Send(dst netip.AddrPort, payload []byte) error {
	c, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(dst))
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = c.Write(payload)
	return err
}

// maxCommand is knock's command buffer: 256 bytes with the NUL.
const maxCommand = 255

// ErrCommandTooLong is knock's "'-r' command is too long." condition.
var ErrCommandTooLong = errors.New("'-r' command is too long")

// ExpandRun replaces every %H% in cmd with host and every %P% with
// service, both as typed on the command line (a service name stays a
// name), within knock's 256-byte buffer.
func ExpandRun(cmd, host, service string) (string, error) {
	cmd = trunc(cmd, maxCommand-1) // strncpy(command, optarg, sizeof-2)
	out := strings.ReplaceAll(strings.ReplaceAll(cmd, "%H%", host), "%P%", service)
	if len(out) > maxCommand {
		return "", ErrCommandTooLong
	}
	return out, nil
}

// RunDisabled reports whether a -r value turns the run command off: "0",
// "x", "X" or "".
func RunDisabled(v string) bool { return v == "" || v == "0" || v == "x" || v == "X" }
