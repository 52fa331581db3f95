package sequence

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"strconv"
	"time"

	"github.com/doorward/doorward/client"
	"github.com/doorward/doorward/internal/getopt"
)

// The knockd-compatible default mode of knock, registered as the default
// command (not under a name: "knock host port ..." is this mode, so that
// every existing command line keeps working). It is Debian's knock 0.8
// command line (getopt_long "vud:hV46"), with these deliberate differences:
//
//   - ":proto" accepts "tcp" and "udp" in any case and rejects anything
//     else (`unknown protocol "foo" in "1004:foo"`, exit 1); knock 0.8 only
//     knows the exact lowercase "udp" and silently knocks TCP for "1003:UDP"
//     or "1004:foo", which sends a knock to the wrong place.
//   - Ports outside 1..65535 are rejected; knock 0.8 wraps 70000 to 4464.
//   - -d must be an integer; knock 0.8 uses atoi, so "-d abc" means no delay.
//   - The host is resolved once and every port is knocked at that address;
//     knock 0.8 resolves per port, so round-robin DNS can split a knock.
//   - All ports are checked and resolved before the first packet is sent.
//   - -V prints "knock 0.8" and then "doorward <version>" (instead of the
//     original copyright line); with -v, ignored connect/send errors are
//     reported on stderr.

func init() {
	client.RegisterDefault(client.Command{
		Name: "sequence",
		Run:  runCLI,
	})
}

// knockdCompatVersion is the knock release whose command line this mode
// reproduces; scripts parse the first line of "knock -V".
const knockdCompatVersion = "0.8"

var knockdOptions = []getopt.Option{
	{Short: 'v', Long: "verbose"},
	{Short: 'u', Long: "udp"},
	{Short: 'd', Long: "delay", HasArg: true},
	{Short: 'h', Long: "help"},
	{Short: 'V', Long: "version"},
	{Short: '4', Long: "ipv4"},
	{Short: '6', Long: "ipv6"},
}

// knockdAllOptions are knock 0.8's and ours for rotating doors (long
// only, so knock 0.8's abbreviations mean what they meant).
var knockdAllOptions = append(knockdOptions[:len(knockdOptions):len(knockdOptions)], rotatingDefaultOptions...)

const knockdUsage = `usage: knock [options] <host> <port[:proto]> [port[:proto]] ...
       knock [options] --rotating-secret FILE --rotating-ports R <host> <door>
options:
  -u, --udp            make all port hits use UDP (default is TCP)
  -d, --delay <t>      wait <t> milliseconds after each port hit
  -4, --ipv4           use IPv4 only
  -6, --ipv6           use IPv6 only
  -v, --verbose        be verbose
  -V, --version        display version
  -h, --help           this help

proto is tcp (the default) or udp; port is a number or a service name.

example:  knock myserver.example.com 123:tcp 456:udp 789:tcp
`

// knockdPlan is a parsed knockd-mode command line.
type knockdPlan struct {
	help, version bool // -h or -V came first: print and exit
	verbose       bool
	family        Family
	delay         time.Duration
	hits          []Hit
}

// usageError means: print the usage and exit 1. msg is getopt's complaint,
// if any.
type usageError struct{ msg string }

func (e *usageError) Error() string {
	if e.msg == "" {
		return "usage"
	}
	return e.msg
}

// parseKnockd turns a knockd-mode command line into a plan. It returns a
// *usageError for bad usage and a plain error for bad values.
func parseKnockd(args []string) (knockdPlan, error) {
	var p knockdPlan
	found, positional, err := getopt.Parser{Options: knockdAllOptions, Abbrev: true}.Parse(args)
	var udp bool
	var delay string
	var rot rotatingOpts
	// Act on options in order, like getopt's loop: the first -h or -V wins,
	// and a bad option only counts if no -h or -V came before it.
	for _, o := range found {
		switch o.Short {
		case 'v':
			p.verbose = true
		case 'u':
			udp = true
		case 'd':
			delay = o.Arg // validated after the argument count, as knock 0.8 does
		case '4':
			p.family = IPv4
		case '6':
			p.family = IPv6
		case 'V':
			return knockdPlan{version: true}, nil
		case 'h':
			return knockdPlan{help: true}, nil
		case 0:
			rot.set(knockdAllOptions[o.Index].Long, o.Arg)
		}
	}
	if err != nil {
		return knockdPlan{}, &usageError{err.Error()}
	}
	if len(positional) < 2 {
		return knockdPlan{}, &usageError{}
	}
	if delay != "" {
		ms, err := strconv.ParseInt(delay, 10, 64)
		switch {
		case err != nil && !errors.Is(err, strconv.ErrRange):
			return knockdPlan{}, fmt.Errorf("invalid delay %q: want an integer number of milliseconds", delay)
		case ms < 0:
			return knockdPlan{}, errors.New("delay cannot be negative")
		case err != nil || ms > math.MaxInt64/int64(time.Millisecond):
			return knockdPlan{}, fmt.Errorf("delay %q is too large", delay)
		}
		p.delay = time.Duration(ms) * time.Millisecond
	}
	if rot != (rotatingOpts{}) && rot.secret == "" {
		return knockdPlan{}, errors.New("--rotating-* options need --rotating-secret")
	}
	if rot.secret != "" {
		if udp {
			return knockdPlan{}, errRotatingUDP
		}
		p.hits, err = rotatingHits(&rot, positional)
		return p, err
	}
	host := positional[0]
	for _, arg := range positional[1:] {
		h, err := ParseHit(host, arg)
		if err != nil {
			return knockdPlan{}, err
		}
		if udp {
			h.UDP = true // -u overrides an explicit ":tcp", as in knock 0.8
		}
		p.hits = append(p.hits, h)
	}
	return p, nil
}

func (p knockdPlan) knocker(stdout, stderr io.Writer) *Knocker {
	k := &Knocker{Family: p.family, Delay: p.delay}
	if p.verbose {
		k.Trace = stdout
		k.Warn = stderr
	}
	return k
}

// runCLI prints the usage followed by env.Modes, knock's listing of
// its other modes.
func runCLI(ctx context.Context, args []string, env client.Env) int {
	stdout, stderr := env.Stdout, env.Stderr
	usage := knockdUsage + env.Modes
	p, err := parseKnockd(args)
	var ue *usageError
	switch {
	case errors.As(err, &ue):
		if ue.msg != "" {
			fmt.Fprintf(stderr, "knock: %s\n", ue.msg)
		}
		fmt.Fprint(stdout, usage) // stdout, like knock 0.8
		return 1
	case err != nil:
		fmt.Fprintf(stderr, "error: %v\n", err)
		return 1
	case p.help:
		fmt.Fprint(stdout, usage)
		return 1 // knock 0.8 exits 1 after the usage, even for -h
	case p.version:
		fmt.Fprintf(stdout, "knock %s\ndoorward %s\n", knockdCompatVersion, env.Version)
		return 0
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt)
	defer stop()
	if err := p.knocker(stdout, stderr).Knock(ctx, p.hits); err != nil {
		fmt.Fprintf(stderr, "error: %v\n", err)
		return 1
	}
	return 0
}
