package daemon

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/doorward/doorward/actions"
	"github.com/doorward/doorward/actions/command"
	"github.com/doorward/doorward/actions/filestore"
	"github.com/doorward/doorward/config"
	"github.com/doorward/doorward/config/knockd"
)

// Options are knockd's command-line settings plus ours.
type Options struct {
	Config     string   // -c
	Interfaces []string // -i, overrides Interface=
	LogFile    string   // -g, overrides LogFile=
	PidFile    string   // -p, overrides PidFile=
	Verbose    bool     // -v
	Debug      bool     // -D
	OnlyIPv4   bool     // -4
	Daemon     bool     // -d: write the pid file
	StateDir   string   // --state-dir, overrides StateDir=
	Stdout     io.Writer
	Stderr     io.Writer
	Runner     command.Runner // nil: /bin/sh -c
	// Ready is called once Live serves: config valid, captures and log
	// open, pid file written, leftover doors closed. -d's parent process
	// waits for it (or for an error on Stderr) before it exits.
	Ready func()
	// LeastPrivilege: once its sockets are open, the daemon gives up every
	// capability but those it and its commands need (privileges.go). Off
	// for tests that run Live in their own process.
	LeastPrivilege bool
}

func (o *Options) defaults() {
	if o.Stdout == nil {
		o.Stdout = os.Stdout
	}
	if o.Stderr == nil {
		o.Stderr = os.Stderr
	}
	if o.Runner == nil {
		o.Runner = command.Shell
	}
	if o.Config == "" {
		o.Config = "/etc/knockd.conf"
	}
}

// runner is o.Runner with [options] Command_Timeout: every command the
// daemon runs goes through it.
func (o *Options) runner(cfg *knockd.Config) command.Runner {
	return command.WithTimeout(o.Runner, cfg.Options.CommandTimeout)
}

// cmdLimit is the live daemon's Command_Timeout: set at start and by every
// accepted reload, read as each command starts.
type cmdLimit struct{ d atomic.Int64 }

// set takes cfg's limit; a nil cmdLimit (a test's bare live) ignores it.
func (c *cmdLimit) set(cfg *knockd.Config) {
	if c != nil {
		c.d.Store(int64(cfg.Options.CommandTimeout))
	}
}

func (c *cmdLimit) get() time.Duration { return time.Duration(c.d.Load()) }
func (c *cmdLimit) runner(run command.Runner) command.Runner {
	return command.WithLimit(run, c.get)
}

// starter is the shell Runner (command.Shell) under c, in two halves.
func (c *cmdLimit) starter() actions.Starter {
	return func(ctx context.Context, line string) func() (int, error) {
		return command.Start(ctx, line, c.get(), os.Stdout)
	}
}

// load reads the config and prints every error with its file:line.
func (o *Options) load() (*knockd.Config, bool) {
	cfg, err := o.loadConfig()
	if err != nil {
		for _, e := range config.Errors(err) {
			fmt.Fprintf(o.Stderr, "config: %v\n", e)
		}
		return nil, false
	}
	warnSecrets(cfg, o.Stderr)
	return cfg, true
}

// loadConfig reads o.Config: a knockd.conf, or another dialect a protocol
// registered a loader for (an unchanged doormand.cf); -D is passed on.
func (o *Options) loadConfig() (*knockd.Config, error) {
	return knockd.LoadFile(o.Config, knockd.LoadOptions{Debug: o.Debug})
}

// Check validates the config without privileges or capture: knockd --check.
func Check(o Options) int {
	o.defaults()
	cfg, ok := o.load()
	if !ok {
		return 1
	}
	// Build every door as the daemon would (each protocol validates its own
	// directives, one-time sequence files are opened), and every protocol's
	// Action (port-span action sections are parsed there), but start
	// nothing: with Replay set no Action touches state files or the journal.
	err := checkState(cfg)
	if err != nil {
		fmt.Fprintf(o.Stderr, "config: %v\n", err)
		return 1
	}
	p, err := newPlan(cfg, &Env{Logf: actions.Discard, Replay: true, Store: filestore.Memory()}, func(string, actions.Event) {})
	if err == nil {
		err = p.checkActions()
		p.close()
	}
	if err != nil {
		for _, line := range strings.Split(err.Error(), "\n") {
			fmt.Fprintf(o.Stderr, "config: %s\n", line)
		}
		return 1
	}
	for _, w := range p.warnings {
		fmt.Fprintf(o.Stderr, "warning: %s\n", w)
	}
	for _, h := range p.hints {
		fmt.Fprintf(o.Stderr, "hint: %s\n", h)
	}
	fmt.Fprintf(o.Stdout, "%s: %d doors, config OK\n", o.Config, len(cfg.Doors))
	return 0
}

func (o *Options) logger(cfg *knockd.Config, now func() time.Time) *Logger {
	var stdout io.Writer
	if o.Verbose || o.Debug {
		stdout = o.Stdout
	}
	return NewLogger(LogOptions{File: o.logFile(cfg), Syslog: cfg.Options.UseSyslog, Stdout: stdout, Debug: o.Debug, Now: now, Warn: o.Stderr,
		Journald: stdout != nil && toJournald(stdout)})
}
