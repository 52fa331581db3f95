package main

import (
	"fmt"
	"strings"

	"github.com/doorward/doorward/daemon"
	"github.com/doorward/doorward/internal/getopt"
)

// cli is the parsed command line.
type cli struct {
	opts    daemon.Options
	help    bool
	version bool
	check   bool
	replay  string
	lookup  bool
	migrate string // --migrate FILE: print a legacy config as our INI
	status  bool   // --status: list the open doors
	json    bool   // --json: --status as JSON
}

// flagSpec is an option and what it sets.
type flagSpec struct {
	getopt.Option
	set func(c *cli, v string) error
}

func spec(short byte, long string, hasArg bool, set func(c *cli, v string) error) flagSpec {
	return flagSpec{getopt.Option{Short: short, Long: long, HasArg: hasArg}, set}
}

// knockd's getopt_long set ("4vDdli:c:p:g:hV") plus our long options.
var flagSpecs = []flagSpec{
	spec('4', "only-ip-v4", false, func(c *cli, _ string) error { c.opts.OnlyIPv4 = true; return nil }),
	spec('v', "verbose", false, func(c *cli, _ string) error { c.opts.Verbose = true; return nil }),
	spec('D', "debug", false, func(c *cli, _ string) error { c.opts.Debug = true; return nil }),
	spec('d', "daemon", false, func(c *cli, _ string) error { c.opts.Daemon = true; return nil }),
	spec('l', "lookup", false, func(c *cli, _ string) error { c.lookup = true; return nil }),
	spec('i', "interface", true, func(c *cli, v string) error {
		for _, f := range strings.Split(v, ",") {
			if f = strings.TrimSpace(f); f == "" {
				return fmt.Errorf("empty interface name in %q", v)
			}
			c.opts.Interfaces = append(c.opts.Interfaces, f)
		}
		return nil
	}),
	spec('c', "config", true, func(c *cli, v string) error { c.opts.Config = v; return nil }),
	spec('p', "pidfile", true, func(c *cli, v string) error { c.opts.PidFile = v; return nil }),
	spec('g', "logfile", true, func(c *cli, v string) error { c.opts.LogFile = v; return nil }),
	spec('h', "help", false, func(c *cli, _ string) error { c.help = true; return nil }),
	spec('V', "version", false, func(c *cli, _ string) error { c.version = true; return nil }),
	spec(0, "check", false, func(c *cli, _ string) error { c.check = true; return nil }),
	spec(0, "replay", true, func(c *cli, v string) error { c.replay = v; return nil }),
	spec(0, "state-dir", true, func(c *cli, v string) error { c.opts.StateDir = v; return nil }),
	spec(0, "migrate", true, func(c *cli, v string) error { c.migrate = v; return nil }),
	spec(0, "status", false, func(c *cli, _ string) error { c.status = true; return nil }),
	spec(0, "json", false, func(c *cli, _ string) error { c.json = true; return nil }),
}

// parser reads knockd's command line: long names only whole (no
// abbreviations, which knockd has never accepted here), and options end
// at the first operand, which is an error: knockd takes none.
var parser = getopt.Parser{Options: options(flagSpecs), InOrder: true}

func options(specs []flagSpec) []getopt.Option {
	o := make([]getopt.Option, len(specs))
	for i, s := range specs {
		o[i] = s.Option
	}
	return o
}

// parseArgs applies the options in command-line order, so the first
// error is the one reported: a bad value (an empty interface name) before
// a bad option after it, a bad option before an operand after it.
func parseArgs(args []string) (*cli, error) {
	found, operands, err := parser.Parse(args)
	c := &cli{}
	for _, f := range found {
		if err := flagSpecs[f.Index].set(c, f.Arg); err != nil {
			return nil, err
		}
	}
	if err != nil {
		return nil, err
	}
	if len(operands) > 0 {
		return nil, fmt.Errorf("unexpected argument %q", operands[0])
	}
	if c.json && !c.status {
		return nil, fmt.Errorf("--json is an option of --status")
	}
	return c, nil
}

const usage = `usage: knockd [options]
options:
  -i, --interface <int>  network interface(s) to listen on, comma-separated
                         or "any" (default "eth0")
  -d, --daemon           run as a daemon
  -c, --config <file>    use an alternate config file (default /etc/knockd.conf)
  -D, --debug            output debug messages
  -l, --lookup           accepted for compatibility; hostnames are not looked up
  -p, --pidfile <file>   pid file (overrides PidFile in the config)
  -g, --logfile <file>   log file (overrides LogFile in the config)
  -v, --verbose          be verbose
  -4, --only-ip-v4       ignore IPv6 packets
  -V, --version          display version
  -h, --help             this help
      --check            validate the config file and exit (0 valid, 1 not)
      --replay <file>    run the config over a pcap/pcapng file instead of
                         live capture, with the packets' time as the clock
      --state-dir <dir>  journal of open doors (overrides StateDir in the
                         config; default /var/lib/doorward)
      --migrate <file>   print a knockdaemon.conf or doormand.cf as an
                         equivalent config for -c, with notes, and exit
      --status           list the open doors from the journal in the state
                         directory (-c's StateDir, or --state-dir), soonest
                         to close first, and exit; works while knockd runs
      --json             with --status: print JSON for scripts
`
