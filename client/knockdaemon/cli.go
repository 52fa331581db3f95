package knockdaemon

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/doorward/doorward/client"
	"github.com/doorward/doorward/client/secret"
	"github.com/doorward/doorward/client/sequence"
)

// The knockdaemon port-span mode: knockclient's command line. "span" is
// its name before the protocol had one name everywhere, kept as an alias.
//
//	knock knockdaemon [-conf FILE] [-remote HOST] [-client IP] [-port N] … [HOST]
//
// Options are knockclient's, single-dash long names with a separate or
// "="-joined value (Getopt::Long style; a double dash works too), and they
// override the -conf file. Ours: -flagN, -time, -iv_hex, -header,
// -port_width, -time_width, -checksum_mod, -span_tail, -delay MS, -udp.
// -test prints the ports and sends nothing; -v also prints the record and
// the ciphertext and traces each hit.
func init() {
	client.Register(client.Command{
		Name:     "knockdaemon",
		Aliases:  []string{"span"},
		Synopsis: "[options] [remote]",
		Summary:  "a knockdaemon port-span knock",
		Run:      runCLI,
	})
}

const usage = `usage: knock knockdaemon [options] [remote]
Sends a knockdaemon (knockclient) port-span knock: the record is encrypted
and spelled as one TCP SYN (or UDP datagram) per port of the span.
"knock span" is an alias, the mode's former name.

options (override the -conf file's keys of the same name):
  -conf FILE          a knocconf ("key = value" lines)
  -remote HOST        the host to knock
  -client IP          the IPv4 address to open for (default: this host's
                      address towards remote)
  -port N             the port to open
  -knock FIELDS       the record layout, e.g. IP,PORT,FLAG0,CHECKSUM
  -portspan SPAN      e.g. 1024-5000,6000-25000,26000-35789
  -encrypt yes|no     -cipher blowfish
  -key PASSPHRASE     visible to every user in the process list (ps):
                      prefer -key-file, or no key at all to be asked for it
                      on the terminal
  -key-file FILE      read the passphrase from FILE's first line; FILE must
                      not be readable by group or others (chmod 600)
  -mac-key KEY, -mac-key-file FILE
                      the authenticated mode: append a MAC tag made with
                      this key (the door's Mac_Key)
  -iv yes|no|salted   -iv_hex HEX (IV of iv = no; default zeros)
  -flag0 N … -flag31 N, -time N
  -port_width auto|1|2   -time_width 1|4   -checksum_mod 256|255
  -span_tail auto|pad|raw
  -delay MS           wait after each hit (default 10)
  -udp                knock with UDP datagrams
  -test               print the ports, send nothing
  -v                  print the record, ciphertext and each hit
  -h                  this help
`

// cliArgs is a parsed knock knockdaemon command line.
type cliArgs struct {
	conf          string
	set           Conf // overrides
	test, verbose bool
	help          bool
}

func parseArgs(args []string) (cliArgs, error) {
	a := cliArgs{set: Conf{}}
	for i := 0; i < len(args); i++ {
		arg := args[i]
		if arg == "--" {
			if rest := args[i+1:]; len(rest) == 1 {
				a.set["remote"] = rest[0]
			} else if len(rest) > 1 {
				return a, fmt.Errorf("unexpected arguments %q", rest[1:])
			}
			break
		}
		if !strings.HasPrefix(arg, "-") || arg == "-" {
			if _, dup := a.set["remote"]; dup || i != len(args)-1 {
				return a, fmt.Errorf("unexpected argument %q", arg)
			}
			a.set["remote"] = arg
			continue
		}
		name := strings.TrimLeft(arg, "-")
		name, val, hasVal := strings.Cut(name, "=")
		name = strings.ReplaceAll(strings.ToLower(name), "-", "_")
		switch name {
		case "h", "help":
			a.help = true
			continue
		case "test":
			a.test = true
			continue
		case "v", "verbose":
			a.verbose = true
			continue
		case "udp":
			if !hasVal {
				val = "yes"
			}
			a.set["udp"] = val
			continue
		}
		known, ignored := Known(name)
		if name != "conf" && (!known || ignored || name == "udp") {
			return a, fmt.Errorf("unknown option %q", arg)
		}
		if !hasVal {
			if i+1 >= len(args) {
				return a, fmt.Errorf("option %s needs a value", arg)
			}
			i++
			val = args[i]
		}
		if name == "conf" {
			a.conf = val
			continue
		}
		a.set[name] = val
	}
	return a, nil
}

func runCLI(ctx context.Context, args []string, env client.Env) int {
	stdout, stderr := env.Stdout, env.Stderr
	a, err := parseArgs(args)
	if err != nil {
		fmt.Fprintf(stderr, "knock %s: %v\n", env.Name, err)
		fmt.Fprint(stderr, usage)
		return 1
	}
	if a.help {
		fmt.Fprint(stdout, usage)
		return 0
	}
	conf := Conf{}
	if a.conf != "" {
		f, err := os.Open(a.conf)
		if err != nil {
			fmt.Fprintf(stderr, "error: %v\n", err)
			return 1
		}
		var ignored []string
		conf, ignored, err = ReadConf(a.conf, f)
		f.Close()
		if err != nil {
			fmt.Fprintf(stderr, "error: %v\n", err)
			return 1
		}
		for _, k := range ignored {
			fmt.Fprintf(stderr, "warning: %s: %s is not supported, ignored\n", a.conf, k)
		}
	}
	if err := mergeSecrets(conf, a, env); err != nil {
		fmt.Fprintf(stderr, "error: %v\n", err)
		return 1
	}

	ctx, stop := signal.NotifyContext(ctx, os.Interrupt)
	defer stop()
	remote, err := Resolve(ctx, conf["remote"])
	if err != nil {
		fmt.Fprintf(stderr, "error: %v\n", err)
		return 1
	}
	var local netip.Addr
	if _, given := conf["client"]; !given && remote.IsValid() {
		local, _ = LocalAddr(remote) // no route: Plan asks for -client
	}
	k, err := conf.Plan(remote, local, time.Now())
	if err != nil {
		for _, line := range strings.Split(err.Error(), "\n") {
			fmt.Fprintf(stderr, "error: %s\n", line)
		}
		return 1
	}
	wire, ports, err := k.Encode(rand.Reader)
	if err != nil {
		fmt.Fprintf(stderr, "error: %v\n", err)
		return 1
	}
	if a.verbose {
		plain, desc := describeRecord(k)
		fmt.Fprintf(stdout, "record %x (%s)\n", plain, desc)
		fmt.Fprintf(stdout, "wire %x\n", wire)
		fmt.Fprintf(stdout, "%d hits on %s\n", len(ports), k.Codec.Span)
	}
	if a.test {
		fmt.Fprintln(stdout, joinPorts(ports))
		return 0
	}
	kn := &sequence.Knocker{Delay: k.Delay}
	if a.verbose {
		kn.Trace, kn.Warn = stdout, stderr
	}
	if err := kn.Knock(ctx, k.Hits(ports)); err != nil {
		if errors.Is(err, context.Canceled) {
			return 130
		}
		fmt.Fprintf(stderr, "error: %v\n", err)
		return 1
	}
	return 0
}

// describeRecord is the record's bytes and its fields by name, with the
// CHECKSUM the encoder computed.
func describeRecord(k *Knock) (plain []byte, desc string) {
	l := k.Codec.Layouts[0]
	plain, _ = l.Append(nil, &k.Record, k.Codec.Sums) // Plan checked it fits
	parsed := k.Record
	l.Parse(plain, &parsed, k.Codec.Sums)
	return plain, l.Describe(&parsed)
}

func joinPorts(ports []uint16) string {
	s := make([]string, len(ports))
	for i, p := range ports {
		s[i] = strconv.Itoa(int(p))
	}
	return strings.Join(s, ",")
}

// mergeSecrets merges the command line's settings into conf (read from
// a.conf) and resolves the secrets: key_file and mac_key_file are read
// (relative to the -conf file's folder when the file names them), a key
// given one way on the command line replaces the file's key given either
// way, and with no key at all on a terminal the passphrase is asked for.
// A -conf file that holds a key and is readable by others gets a warning.
func mergeSecrets(conf Conf, a cliArgs, env client.Env) error {
	stderr := env.Stderr
	for _, name := range []string{"key", "mac_key"} {
		if conf[name] != "" && a.conf != "" && secret.ReadableByOthers(a.conf) {
			fmt.Fprintf(stderr, "warning: %s holds the %s and is readable by others (chmod 600 %s)\n", a.conf, strings.ReplaceAll(name, "_", " "), a.conf)
		}
		if f := conf[name+"_file"]; f != "" && !filepath.IsAbs(f) && a.conf != "" {
			conf[name+"_file"] = filepath.Join(filepath.Dir(a.conf), f)
		}
		_, cliKey := a.set[name]
		_, cliFile := a.set[name+"_file"]
		switch {
		case cliKey && cliFile:
			return fmt.Errorf("give either %s or %s_file, not both", name, name)
		case cliKey:
			delete(conf, name+"_file")
		case cliFile:
			delete(conf, name)
		}
	}
	for k, v := range a.set {
		conf[k] = v
	}
	for _, name := range []string{"key", "mac_key"} {
		f, ok := conf[name+"_file"]
		if !ok {
			continue
		}
		if _, both := conf[name]; both {
			return fmt.Errorf("give either %s or %s_file, not both", name, name)
		}
		b, err := secret.ReadFile(f)
		if err != nil {
			return fmt.Errorf("%s_file: %w", name, err)
		}
		conf[name] = string(b)
		secret.Zero(b)
		delete(conf, name+"_file")
	}
	if conf["key"] == "" && !strings.EqualFold(conf["encrypt"], "no") && stdinIsTerminal(env) {
		b, err := secret.Read("Enter key: ")
		if err != nil {
			return err
		}
		conf["key"] = string(b)
		secret.Zero(b)
	}
	return nil
}

func stdinIsTerminal(env client.Env) bool {
	fd, ok := env.StdinFd()
	return ok && secret.IsTerminal(fd)
}
