package doorman

import (
	"context"
	"fmt"
	"net/netip"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/doorward/doorward/client"
	"github.com/doorward/doorward/client/secret"
	"github.com/doorward/doorward/formats/doorman"
	"github.com/doorward/doorward/formats/services"
	"github.com/doorward/doorward/internal/getopt"
)

// "knock doorman ..." is J.B. Ward's doorman client (knock 0.9), with its
// command line unchanged after the subcommand:
//
//	knock doorman [-h] [-v] [-f cfgpath] [-g group] [-p port] [-s secret] [-r "cmd args"] host service
//
// A subcommand, not a flag, selects the mode: doorman's options (-g, -p,
// -r, -s, -f) clash with the knockd-style default mode's, and its two
// positional arguments mean something else. "knock host port ..." stays
// the knockd client. Deliberate differences from knock 0.9 are listed in
// docs/doorman.md.
func init() {
	client.Register(client.Command{
		Name:     "doorman",
		Synopsis: "[options] host service",
		Summary:  "a doorman (doormand) single-packet knock",
		Run:      runCLI,
	})
}

// getopt "?f:g:hp:r:s:v", as knock 0.9.
var doormanOptions = []getopt.Option{
	{Short: '?'},
	{Short: 'f', HasArg: true},
	{Short: 'g', HasArg: true},
	{Short: 'h'},
	{Short: 'p', HasArg: true},
	{Short: 'r', HasArg: true},
	{Short: 's', HasArg: true},
	{Short: 'v'},
}

const doormanUsage = `Portknocker client V0.9 (doorward)
Usage :
  knock doorman [-h] [-v] [-p port] [-f pathname] [-g groupid] \
        [-s secret] [-r "program arg1 arg2... "]  host service

    -h             print this message and quit
    -v             print version number the and quit
    -f pathname    use this configuration file (default ~/.knockcf)
    -g groupid     use this group-name
    -p port        knock on this UDP port (default 1001)
    -s secret      use this secret (else .knockcf's, else asked for)
    -r "program arg1 arg2.."   run this program after sending the knock
                   (%H% is replaced by host, %P% by service; 0, x, X or ""
                   turn off the config file's "run")
    host           IP address or name of the remote server
    service        port number or name of the service requested

  -g, -p, -r, and -s override the corresponding values in ".knockcf"
`

// doormanURL is what knock -v prints after its version.
const doormanURL = "http://doorman.sourceforge.net/"

func runCLI(ctx context.Context, args []string, env client.Env) int {
	stdout, stderr := env.Stdout, env.Stderr
	found, positional, err := getopt.Parser{Options: doormanOptions, Abbrev: true}.Parse(args)
	var (
		cfgPath, group, run string
		sec                 []byte
		port                int
		runGiven, runOff    bool
	)
	defer func() { secret.Zero(sec) }()
	for _, o := range found {
		switch o.Short {
		case 'f':
			cfgPath = o.Arg
		case 'g':
			group = trunc(o.Arg, doorman.MaxGroup)
		case 'h':
			fmt.Fprint(stderr, doormanUsage)
			return 0
		case 'p':
			n, perr := strconv.Atoi(o.Arg)
			if perr != nil || n < 1 || n > 65534 {
				fmt.Fprintf(stderr, "Invalid port number, '-p %s'\n", o.Arg)
				return 1
			}
			port = n
		case 'r':
			runGiven = true
			runOff = RunDisabled(o.Arg)
			run = o.Arg
		case 's':
			secret.Zero(sec)
			sec = []byte(trunc(o.Arg, doorman.MaxSecret))
		case 'v':
			fmt.Fprintf(stdout, "Port knocking client V0.9 (doorward %s)\n%s\n\n", env.Version, doormanURL)
			return 0
		case '?':
			fmt.Fprint(stderr, doormanUsage)
			return 1
		}
	}
	if err != nil || len(positional) < 2 {
		if err != nil {
			fmt.Fprintf(stderr, "knock doorman: %v\n", err)
		}
		fmt.Fprint(stderr, doormanUsage)
		return 1
	}
	// host and service are the last two arguments; more are ignored.
	host, service := positional[len(positional)-2], positional[len(positional)-1]

	if cfgPath == "" {
		cfgPath = filepath.Join(env.Getenv("HOME"), ".knockcf")
	}
	kc, ok, err := ReadKnockCF(cfgPath)
	switch {
	case err != nil:
		fmt.Fprintf(stderr, "%v\n", err)
		return 1
	case !ok:
		fmt.Fprintf(stderr, "Warning: can't open configuration file '%s'\n", cfgPath)
	}
	defer secret.Zero(kc.Secret)
	if group == "" {
		group = kc.Group
	}
	if sec == nil && len(kc.Secret) > 0 {
		sec = append([]byte(nil), kc.Secret...)
	}
	if !runGiven && kc.RunSet {
		run = kc.Run
	}
	if port == 0 {
		port = kc.Port
	}
	if port == 0 {
		port = doorman.DefaultPort // knock 0.9 sends to port 0 here
	}
	if group == "" {
		fmt.Fprintln(stderr, "knock doorman: no group: give -g or \"group\" in .knockcf")
		return 1
	}

	svc, err := ServicePort(service, func(name string) (int, error) {
		m, err := services.Read(services.File)
		if err != nil {
			return 0, err
		}
		if p, ok := m[name]; ok {
			return p, nil
		}
		return 0, fmt.Errorf("no service %q", name)
	})
	if err != nil {
		fmt.Fprintf(stderr, "knock doorman: %v\n", err)
		return 1
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	addr, err := ResolveHost(ctx, host)
	if err != nil {
		fmt.Fprintf(stderr, "knock doorman: %v\n", err)
		return 1
	}
	if len(sec) == 0 {
		if sec, err = secret.Read("Enter secret: "); err != nil {
			fmt.Fprintf(stderr, "knock doorman: %v\n", err)
			return 1
		}
		sec = []byte(trunc(string(sec), doorman.MaxSecret))
	}
	tag, err := doorman.NewTag()
	if err != nil {
		fmt.Fprintf(stderr, "knock doorman: %v\n", err)
		return 1
	}
	payload := doorman.Format(uint16(svc), group, tag, sec)
	secret.Zero(sec)
	if len(payload) > doorman.MaxOriginalPayload {
		fmt.Fprintf(stderr, "knock doorman: warning: the knock is %d bytes; an original doormand ignores knocks over %d bytes (use a shorter group name)\n",
			len(payload), doorman.MaxOriginalPayload)
	}
	if err := Send(netip.AddrPortFrom(addr, uint16(port)), payload); err != nil {
		// knock ignores send errors; say so, but keep its exit code.
		fmt.Fprintf(stderr, "knock doorman: warning: send: %v\n", err)
	}

	if run == "" || runOff {
		return 0
	}
	cmdline, err := ExpandRun(run, host, service)
	if err != nil {
		fmt.Fprintf(stderr, "%v.\n", err)
		return 1
	}
	time.Sleep(100 * time.Millisecond) // knock's pause before the command
	cmd := exec.Command("/bin/sh", "-c", cmdline)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = env.Stdin, stdout, stderr
	if err := cmd.Run(); err != nil {
		return 1 // the shell has complained
	}
	return 0
}
