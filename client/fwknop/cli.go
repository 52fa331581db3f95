package fwknop

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/doorward/doorward/client"
	"github.com/doorward/doorward/client/secret"
	"github.com/doorward/doorward/formats/fwknop"
	"github.com/doorward/doorward/internal/getopt"
)

// "knock fwknop ..." is the fwknop client's command line (fwknop 2.6):
// the same option names, the same ~/.fwknoprc stanzas, packets fwknopd
// accepts. What it leaves out is listed in README.md.
func init() {
	client.Register(client.Command{
		Name:     "fwknop",
		Synopsis: "-A proto/port -a IP|-s -D host [options]",
		Summary:  "an fwknop single packet authorization (SPA) packet",
		Run:      runCLI,
	})
}

// option is one command-line option and the fwknoprc key it sets; key ""
// is an option that acts itself. value is the key's value for an option
// without an argument.
type option struct {
	getopt.Option
	key, value string
}

var options = []option{
	{Option: getopt.Option{Short: 'A', Long: "access", HasArg: true}, key: "ACCESS"},
	{Option: getopt.Option{Short: 'a', Long: "allow-ip", HasArg: true}, key: "ALLOW_IP"},
	{Option: getopt.Option{Short: 's', Long: "source-ip"}, key: "ALLOW_IP", value: "source"},
	{Option: getopt.Option{Short: 'D', Long: "destination", HasArg: true}, key: "SPA_SERVER"},
	{Option: getopt.Option{Short: 'p', Long: "server-port", HasArg: true}, key: "SPA_SERVER_PORT"},
	{Option: getopt.Option{Short: 'P', Long: "server-proto", HasArg: true}, key: "SPA_SERVER_PROTO"},
	{Option: getopt.Option{Long: "key-rijndael", HasArg: true}, key: "KEY"},
	{Option: getopt.Option{Long: "key-base64-rijndael", HasArg: true}, key: "KEY_BASE64"},
	{Option: getopt.Option{Long: "key-hmac", HasArg: true}, key: "HMAC_KEY"},
	{Option: getopt.Option{Long: "key-base64-hmac", HasArg: true}, key: "HMAC_KEY_BASE64"},
	{Option: getopt.Option{Long: "use-hmac"}, key: "USE_HMAC", value: "Y"},
	{Option: getopt.Option{Long: "hmac-digest-type", HasArg: true}, key: "HMAC_DIGEST_TYPE"},
	{Option: getopt.Option{Short: 'm', Long: "digest-type", HasArg: true}, key: "DIGEST_TYPE"},
	{Option: getopt.Option{Short: 'M', Long: "encryption-mode", HasArg: true}, key: "ENCRYPTION_MODE"},
	{Option: getopt.Option{Short: 'f', Long: "fw-timeout", HasArg: true}, key: "FW_TIMEOUT"},
	{Option: getopt.Option{Short: 'U', Long: "spoof-user", HasArg: true}, key: "SPOOF_USER"},
	{Option: getopt.Option{Short: 'N', Long: "nat-access", HasArg: true}, key: "NAT_ACCESS"},
	{Option: getopt.Option{Short: '4', Long: "server-resolve-ipv4"}, key: "SERVER_RESOLVE_IPV4", value: "Y"},
	{Option: getopt.Option{Short: 'v', Long: "verbose"}, key: "VERBOSE", value: "Y"},
	{Option: getopt.Option{Short: 'C', Long: "server-cmd", HasArg: true}},
	{Option: getopt.Option{Short: 'n', Long: "named-config", HasArg: true}},
	{Option: getopt.Option{Long: "rc-file", HasArg: true}},
	{Option: getopt.Option{Long: "no-rc-file"}},
	{Option: getopt.Option{Short: 'k', Long: "key-gen"}},
	{Option: getopt.Option{Short: 'T', Long: "test"}},
	{Option: getopt.Option{Short: 'B', Long: "save-packet", HasArg: true}},
	{Option: getopt.Option{Short: 'R', Long: "resolve-ip-https"}},
	{Option: getopt.Option{Short: 'h', Long: "help"}},
	{Option: getopt.Option{Short: 'V', Long: "version"}},
}

const usage = `usage: knock fwknop -A <port list> [-s|-a <IP>] -D <spa_server> [options]

 -A, --access LIST            ports to open, e.g. tcp/22 or tcp/22,udp/53
 -a, --allow-ip IP            the address to allow (IPv4, or IPv6 for doorward)
 -s, --source-ip              let the server allow the packet's source address
 -D, --destination HOST       the fwknopd server (name, IPv4 or IPv6 address)
 -p, --server-port PORT       its UDP port (default 62201)
 -P, --server-proto udp       the only protocol supported
 -n, --named-config NAME      read stanza [NAME] of ~/.fwknoprc after [default]
     --rc-file PATH           read PATH instead of ~/.fwknoprc
     --no-rc-file             read no rc file
     --key-rijndael KEY       the Rijndael key (visible in ps; prefer the rc file)
     --key-base64-rijndael K  the Rijndael key, base64
     --key-hmac KEY           the HMAC key
     --key-base64-hmac K      the HMAC key, base64
     --use-hmac               add an HMAC (implied by an HMAC key)
     --hmac-digest-type TYPE  md5, sha1, sha256 (default), sha384, sha512, sha3_256, sha3_512
 -m, --digest-type TYPE       the inner digest, same types (default sha256)
 -M, --encryption-mode MODE   CBC (default) or legacy
 -f, --fw-timeout SECONDS     ask the server to keep the door open this long
 -U, --spoof-user USER        the user name in the packet (default $USER)
 -N, --nat-access HOST,PORT   ask for NAT access to an inner host
 -C, --server-cmd CMD         ask the server to run CMD (if it allows that)
 -4, --server-resolve-ipv4    resolve the server's name to IPv4 only
 -k, --key-gen                print a new KEY_BASE64 and HMAC_KEY_BASE64 and exit
 -T, --test                   build the packet and print it, send nothing
 -B, --save-packet FILE       also write the packet to FILE
 -v, --verbose                show the packet's fields
 -h, --help                   this help
 -V, --version                the version

Keys not given are read from the rc file, else asked for on the terminal.
`

func runCLI(ctx context.Context, args []string, env client.Env) int {
	stdout, stderr := env.Stdout, env.Stderr
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "knock fwknop: "+format+"\n", a...)
		return 1
	}
	opts := make([]getopt.Option, len(options))
	for i, o := range options {
		opts[i] = o.Option
	}
	found, operands, err := getopt.Parser{Options: opts, Abbrev: true}.Parse(args)
	if err != nil {
		return fail("%v\nTry 'knock fwknop -h' for more information.", err)
	}
	if len(operands) > 0 {
		return fail("unexpected argument %q\nTry 'knock fwknop -h' for more information.", operands[0])
	}
	var (
		rcPath, named string
		noRC, keyGen  bool
		p             = plan{port: fwknop.DefaultPort}
	)
	defer func() { secret.Zero(p.key); secret.Zero(p.hmacKey) }()
	for _, f := range found {
		switch options[f.Index].Long {
		case "help":
			fmt.Fprint(stdout, usage)
			return 0
		case "version":
			fmt.Fprintf(stdout, "knock fwknop (doorward %s), FKO protocol version %s\n", env.Version, fwknop.Version)
			return 0
		case "named-config":
			named = f.Arg
		case "rc-file":
			rcPath = f.Arg
		case "no-rc-file":
			noRC = true
		case "key-gen":
			keyGen = true
		case "resolve-ip-https":
			return fail("-R: resolving the external address is not supported: give -a or -s")
		}
	}
	if !noRC {
		if rcPath == "" {
			rcPath = filepath.Join(env.Getenv("HOME"), ".fwknoprc")
		}
		settings, err := readRC(rcPath, named)
		if err != nil {
			return fail("%v", err)
		}
		if len(settings) > 0 && secret.ReadableByOthers(rcPath) {
			fmt.Fprintf(stderr, "knock fwknop: warning: %s holds keys and is readable by others (chmod 600 %s)\n", rcPath, rcPath)
		}
		for _, s := range settings {
			var ign errIgnored
			if err := p.set(s.Name, s.Value); errors.As(err, &ign) {
				fmt.Fprintf(stderr, "knock fwknop: warning: %s:%d: %v\n", rcPath, s.Line, err)
			} else if err != nil {
				return fail("%s:%d: %s: %v", rcPath, s.Line, s.Name, err)
			}
		}
	} else if named != "" {
		return fail("-n %s and --no-rc-file do not go together", named)
	}
	for _, f := range found {
		o := options[f.Index]
		switch {
		case o.Long == "server-cmd":
			p.command = f.Arg
		case o.Long == "test":
			p.test = true
		case o.Long == "save-packet":
			p.savePacket = f.Arg
		case o.key != "":
			v := f.Arg
			if !o.HasArg {
				v = o.value
			}
			if err := p.set(o.key, v); err != nil {
				return fail("--%s: %v", o.Long, err)
			}
		}
	}
	if keyGen {
		return printKeys(stdout, p.hmac)
	}
	return send(ctx, &p, env)
}

// printKeys is fwknop --key-gen: a 32-byte Rijndael key and an HMAC key as
// long as the digest's block (fwknop's fko_key_gen sizes), base64.
func printKeys(w io.Writer, d fwknop.Digest) int {
	n := 64
	switch d {
	case fwknop.DigestMD5:
		n = 16
	case fwknop.DigestSHA1:
		n = 20
	case fwknop.DigestSHA384, fwknop.DigestSHA512:
		n = 128
	}
	key, hmacKey := make([]byte, fwknop.MaxKey), make([]byte, n)
	rand.Read(key)
	rand.Read(hmacKey)
	fmt.Fprintf(w, "KEY_BASE64: %s\nHMAC_KEY_BASE64: %s\n",
		base64.StdEncoding.EncodeToString(key), base64.StdEncoding.EncodeToString(hmacKey))
	return 0
}

// send builds the packet of p and sends it (or, with -T, prints it).
func send(ctx context.Context, p *plan, env client.Env) int {
	stdout, stderr := env.Stdout, env.Stderr
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "knock fwknop: "+format+"\n", a...)
		return 1
	}
	if p.user == "" {
		for _, v := range []string{"SPOOF_USER", "LOGNAME", "USER"} {
			if p.user = env.Getenv(v); p.user != "" {
				break
			}
		}
		if p.user == "" {
			p.user = "NO_USER" // fwknop's name when it finds none
		}
	}
	m, err := p.message()
	if err != nil {
		return fail("%v", err)
	}
	if !p.test && p.server == "" {
		return fail("no server: give -D (or SPA_SERVER in the rc file), or -T to only build the packet")
	}
	if len(p.key) == 0 {
		if p.key, err = secret.Read("Enter encryption key: "); err != nil {
			return fail("%v", err)
		}
	}
	if p.useHMAC && len(p.hmacKey) == 0 {
		if p.hmacKey, err = secret.Read("Enter HMAC key: "); err != nil {
			return fail("%v", err)
		}
	}
	m.Time = time.Now().Unix()
	pkt, err := fwknop.Seal(&m, p.keys(), rand.Reader)
	if err != nil {
		return fail("%v", err)
	}
	if p.verbose {
		fmt.Fprintf(stdout, "user: %s\ntimestamp: %d\nmessage type: %d\nmessage: %s\n", m.User, m.Time, m.Type, m.Access)
		if m.NATAccess != "" {
			fmt.Fprintf(stdout, "NAT access: %s\n", m.NATAccess)
		}
		if m.ClientTimeout > 0 {
			fmt.Fprintf(stdout, "client timeout: %d\n", m.ClientTimeout)
		}
		hmacName := "none"
		if p.useHMAC {
			hmacName = p.hmac.String()
		}
		fmt.Fprintf(stdout, "digest: %s\nHMAC: %s\nencryption mode: %s\npacket: %d bytes\n", p.digest, hmacName, p.mode, len(pkt))
	}
	if p.savePacket != "" {
		if err := os.WriteFile(p.savePacket, append(pkt, '\n'), 0o600); err != nil {
			return fail("%v", err)
		}
	}
	if p.test {
		fmt.Fprintf(stdout, "%s\n", pkt)
		return 0
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	dst, err := resolve(ctx, p.server, p.ipv4Only)
	if err != nil {
		return fail("%v", err)
	}
	if p.verbose {
		fmt.Fprintf(stdout, "sending to udp %s\n", netip.AddrPortFrom(dst, p.port))
	}
	if err := sendUDP(netip.AddrPortFrom(dst, p.port), pkt); err != nil {
		return fail("send: %v", err)
	}
	return 0
}

// resolve returns the server's address: a literal, or the first address
// DNS gives (IPv4 only with -4).
func resolve(ctx context.Context, host string, ipv4Only bool) (netip.Addr, error) {
	if a, err := netip.ParseAddr(host); err == nil {
		return a.Unmap(), nil
	}
	network := "ip"
	if ipv4Only {
		network = "ip4"
	}
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, network, host)
	if err != nil || len(addrs) == 0 {
		return netip.Addr{}, fmt.Errorf("can't resolve the server %q", host)
	}
	return addrs[0].Unmap(), nil
}

// sendUDP sends the packet as one datagram, as fwknop does; nothing comes
// back.
func sendUDP(dst netip.AddrPort, pkt []byte) error {
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(dst))
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = c.Write(pkt)
	return err
}
