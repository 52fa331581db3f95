package main

import (
	"fmt"
	"strings"

	"github.com/doorward/doorward/daemon"
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
}

type flagSpec struct {
	short byte
	long  string
	arg   bool
	set   func(c *cli, v string) error
}

// knockd's getopt_long set ("4vDdli:c:p:g:hV") plus --check and --replay.
var flagSpecs = []flagSpec{
	{'4', "only-ip-v4", false, func(c *cli, _ string) error { c.opts.OnlyIPv4 = true; return nil }},
	{'v', "verbose", false, func(c *cli, _ string) error { c.opts.Verbose = true; return nil }},
	{'D', "debug", false, func(c *cli, _ string) error { c.opts.Debug = true; return nil }},
	{'d', "daemon", false, func(c *cli, _ string) error { c.opts.Daemon = true; return nil }},
	{'l', "lookup", false, func(c *cli, _ string) error { c.lookup = true; return nil }},
	{'i', "interface", true, func(c *cli, v string) error {
		for _, f := range strings.Split(v, ",") {
			if f = strings.TrimSpace(f); f == "" {
				return fmt.Errorf("empty interface name in %q", v)
			}
			c.opts.Interfaces = append(c.opts.Interfaces, f)
		}
		return nil
	}},
	{'c', "config", true, func(c *cli, v string) error { c.opts.Config = v; return nil }},
	{'p', "pidfile", true, func(c *cli, v string) error { c.opts.PidFile = v; return nil }},
	{'g', "logfile", true, func(c *cli, v string) error { c.opts.LogFile = v; return nil }},
	{'h', "help", false, func(c *cli, _ string) error { c.help = true; return nil }},
	{'V', "version", false, func(c *cli, _ string) error { c.version = true; return nil }},
	{0, "check", false, func(c *cli, _ string) error { c.check = true; return nil }},
	{0, "replay", true, func(c *cli, v string) error { c.replay = v; return nil }},
	{0, "state-dir", true, func(c *cli, v string) error { c.opts.StateDir = v; return nil }},
	{0, "migrate", true, func(c *cli, v string) error { c.migrate = v; return nil }},
}

// parseArgs is a small getopt_long: bundled short flags (-vD), attached or
// separate values (-ieth0, -i eth0), --long and --long=value, "--" ends
// options. knockd takes no operands, so any is an error.
func parseArgs(args []string) (*cli, error) {
	c := &cli{}
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			if i+1 < len(args) {
				return nil, fmt.Errorf("unexpected argument %q", args[i+1])
			}
			return c, nil
		case strings.HasPrefix(a, "--"):
			name, val, hasVal := strings.Cut(a[2:], "=")
			spec := findLong(name)
			if spec == nil {
				return nil, fmt.Errorf("unrecognized option '--%s'", name)
			}
			if spec.arg && !hasVal {
				if i+1 >= len(args) {
					return nil, fmt.Errorf("option '--%s' requires an argument", name)
				}
				i++
				val = args[i]
			} else if !spec.arg && hasVal {
				return nil, fmt.Errorf("option '--%s' doesn't allow an argument", name)
			}
			if err := spec.set(c, val); err != nil {
				return nil, err
			}
		case strings.HasPrefix(a, "-") && len(a) > 1:
			for j := 1; j < len(a); j++ {
				spec := findShort(a[j])
				if spec == nil {
					return nil, fmt.Errorf("invalid option -- '%c'", a[j])
				}
				val := ""
				if spec.arg {
					if j+1 < len(a) {
						val = a[j+1:]
					} else if i+1 < len(args) {
						i++
						val = args[i]
					} else {
						return nil, fmt.Errorf("option requires an argument -- '%c'", a[j])
					}
					j = len(a)
				}
				if err := spec.set(c, val); err != nil {
					return nil, err
				}
			}
		default:
			return nil, fmt.Errorf("unexpected argument %q", a)
		}
	}
	return c, nil
}

func findLong(name string) *flagSpec {
	for i := range flagSpecs {
		if flagSpecs[i].long == name {
			return &flagSpecs[i]
		}
	}
	return nil
}

func findShort(b byte) *flagSpec {
	for i := range flagSpecs {
		if flagSpecs[i].short == b && b != 0 {
			return &flagSpecs[i]
		}
	}
	return nil
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
`
