package sequence

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/doorward/doorward/client"
	"github.com/doorward/doorward/client/secret"
	"github.com/doorward/doorward/formats/rotating"
	fseq "github.com/doorward/doorward/formats/sequence"
	"github.com/doorward/doorward/internal/getopt"
)

// Rotating doors (docs/rotating.md): knock computes the current sequence
// from the door's secret, so nothing but the secret file and the door's
// parameters is needed on the client. "knock --rotating-secret FILE host
// door" sends it; "knock rotating --show door" prints it for any other
// client.

// rotatingOpts are a rotating door's parameters as the command line gives
// them, under the default mode's --rotating-* names or knock rotating's.
type rotatingOpts struct {
	secret, ports, length, period, mode, addr, at string
}

// set takes option name's argument; false: not one of them.
func (o *rotatingOpts) set(name, arg string) bool {
	name = strings.TrimPrefix(name, "rotating-")
	switch name {
	case "secret":
		o.secret = arg
	case "ports":
		o.ports = arg
	case "length":
		o.length = arg
	case "period":
		o.period = arg
	case "protocol":
		o.mode = arg
	case "address":
		o.addr = arg
	case "time":
		o.at = arg
	default:
		return false
	}
	return true
}

// params reads the secret file and the options into door's parameters.
func (o *rotatingOpts) params(door, prefix string) (rotating.Params, error) {
	p := rotating.Params{Door: door, Period: rotating.DefaultPeriod, Length: rotating.DefaultLength, Addr: o.addr}
	if o.ports == "" {
		return p, fmt.Errorf("--%sports is required: the door's Rotating_Ports", prefix)
	}
	var err error
	if p.Ports, err = rotating.ParsePorts(o.ports); err != nil {
		return p, fmt.Errorf("--%sports: %w", prefix, err)
	}
	for _, n := range []struct {
		name, val string
		to        *int
	}{{"length", o.length, &p.Length}, {"period", o.period, &p.Period}} {
		if n.val == "" {
			continue
		}
		if *n.to, err = strconv.Atoi(n.val); err != nil {
			return p, fmt.Errorf("--%s%s: %q is not a whole number", prefix, n.name, n.val)
		}
	}
	if o.mode != "" {
		if p.Mode, err = rotating.ParseMode(o.mode); err != nil {
			return p, fmt.Errorf("--%sprotocol: %w", prefix, err)
		}
	}
	text, err := secret.ReadFile(o.secret)
	if err != nil {
		return p, err
	}
	defer secret.Zero(text)
	if p.Secret, err = rotating.ParseSecret(string(text)); err != nil {
		return p, fmt.Errorf("%s: %w", o.secret, err)
	}
	return p, p.Check()
}

// now is the time to derive at: --time (unix seconds) or the clock.
func (o *rotatingOpts) now() (time.Time, error) {
	if o.at == "" {
		return time.Now(), nil
	}
	s, err := strconv.ParseInt(o.at, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("--time: %q is not a number of seconds since 1970", o.at)
	}
	return time.Unix(s, 0), nil
}

// current derives the sequence at now, as hits on host.
func current(p *rotating.Params, now time.Time, host string) ([]Hit, int64, error) {
	w := rotating.Window(now, p.Period)
	seq, err := rotating.Derive(nil, p, w)
	if err != nil {
		return nil, 0, err
	}
	hits := make([]Hit, len(seq))
	for i, k := range seq {
		hits[i] = Hit{Host: host, Port: strconv.Itoa(int(k.Port)), UDP: k.Proto == fseq.UDP}
	}
	return hits, w, nil
}

// rotatingDefaultOptions are the default mode's options for rotating
// doors, long only.
var rotatingDefaultOptions = []getopt.Option{
	{Long: "rotating-secret", HasArg: true},
	{Long: "rotating-ports", HasArg: true},
	{Long: "rotating-length", HasArg: true},
	{Long: "rotating-period", HasArg: true},
	{Long: "rotating-protocol", HasArg: true},
	{Long: "rotating-address", HasArg: true},
}

func init() {
	client.Register(client.Command{
		Name:     "rotating",
		Synopsis: "--show --secret FILE --ports R [options] door",
		Summary:  "print a rotating door's current sequence, for any knock client",
		Run:      runRotating,
	})
}

const rotatingUsage = `usage: knock rotating --show --secret FILE --ports R [options] door
Print the current sequence of a rotating door (docs/rotating.md) on
stdout, in knock's syntax (knock host $(knock rotating --show ...)), and
the window and the seconds it has left on stderr.
options:
  --secret FILE        the door's base32 secret (a file only you can read)
  --ports R            the door's Rotating_Ports (20000-40000,!30000)
  --length N           its Rotating_Length (default 4)
  --period S           its Rotating_Period (default 30)
  --protocol P         its Rotating_Protocol: tcp, udp or both (default tcp)
  --address A          the address the server sees you knock from, if the
                       door binds sequences to it
  --time T             the sequence at unix time T instead of now
  -h, --help           this help
`

var rotatingOptions = []getopt.Option{
	{Long: "show"}, {Long: "secret", HasArg: true}, {Long: "ports", HasArg: true}, {Long: "length", HasArg: true},
	{Long: "period", HasArg: true}, {Long: "protocol", HasArg: true}, {Long: "address", HasArg: true},
	{Long: "time", HasArg: true}, {Short: 'h', Long: "help"},
}

func runRotating(_ context.Context, args []string, env client.Env) int {
	found, positional, err := getopt.Parser{Options: rotatingOptions}.Parse(args)
	if err != nil {
		fmt.Fprintf(env.Stderr, "knock rotating: %v\n%s", err, rotatingUsage)
		return 1
	}
	var o rotatingOpts
	show := false
	for _, f := range found {
		name := rotatingOptions[f.Index].Long
		switch {
		case name == "help":
			fmt.Fprint(env.Stdout, rotatingUsage)
			return 0
		case name == "show":
			show = true
		default:
			o.set(name, f.Arg)
		}
	}
	if !show || len(positional) != 1 || o.secret == "" {
		fmt.Fprint(env.Stderr, rotatingUsage)
		return 1
	}
	err = showRotating(&o, positional[0], env)
	if err != nil {
		fmt.Fprintf(env.Stderr, "knock rotating: %v\n", err)
		return 1
	}
	return 0
}

func showRotating(o *rotatingOpts, door string, env client.Env) error {
	p, err := o.params(door, "")
	if err != nil {
		return err
	}
	defer secret.Zero(p.Secret)
	now, err := o.now()
	if err != nil {
		return err
	}
	hits, w, err := current(&p, now, "")
	if err != nil {
		return err
	}
	words := make([]string, len(hits))
	for i, h := range hits {
		words[i] = h.Port + ":" + h.proto()
	}
	fmt.Fprintln(env.Stdout, strings.Join(words, " "))
	left := rotating.Start(w+1, p.Period).Sub(now).Truncate(time.Second)
	fmt.Fprintf(env.Stderr, "door %s, window %d, %v left\n", door, w, left)
	return nil
}

// rotatingHits are the default mode's hits for a rotating door: the
// positional arguments are host and door.
func rotatingHits(o *rotatingOpts, positional []string) ([]Hit, error) {
	if len(positional) != 2 {
		return nil, &usageError{"with --rotating-secret, give the host and the door's name"}
	}
	p, err := o.params(positional[1], "rotating-")
	if err != nil {
		return nil, err
	}
	defer secret.Zero(p.Secret)
	hits, _, err := current(&p, time.Now(), positional[0])
	return hits, err
}

var errRotatingUDP = errors.New("-u cannot be used with --rotating-secret: the door's Rotating_Protocol decides")
