// Command knockd is Doorward's port-knock server. It reads knockd.conf
// unchanged and takes knockd's flags; see README.md for what differs.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/doorward/doorward/daemon"
	_ "github.com/doorward/doorward/protocols" // the protocols built in
)

const version = "0.1.0"

// stopSignals shut the daemon down in order: stop commands run, then exit.
// SIGQUIT is one of them: doormand(8) says so, and knockd dies on it
// without closing anything, which no admin wants. Go's goroutine dump on
// SIGQUIT is given up; -D logs what the daemon does.
var stopSignals = []os.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGQUIT}

func main() {
	// Signals first: a SIGHUP that arrives before this line would kill us.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	ctx, stop := signal.NotifyContext(context.Background(), stopSignals...)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr, hup))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer, hup <-chan os.Signal) int {
	c, err := parseArgs(args)
	if err != nil {
		fmt.Fprintf(stderr, "knockd: %v\n", err)
		fmt.Fprint(stderr, usage)
		return 1
	}
	switch {
	case c.help:
		fmt.Fprint(stdout, usage)
		return 0
	case c.version:
		fmt.Fprintf(stdout, "knockd 0.8 (doorward %s)\n", version)
		return 0
	}
	c.opts.Stdout, c.opts.Stderr = stdout, stderr
	if c.migrate != "" {
		return migrate(c.migrate, stdout, stderr)
	}
	if c.check {
		return daemon.Check(c.opts)
	}
	if c.status {
		return daemon.Status(c.opts, c.json)
	}
	if c.replay != "" {
		return daemon.Replay(ctx, c.opts, c.replay)
	}
	if c.lookup {
		fmt.Fprintln(stderr, "knockd: -l accepted; hostname lookups are not done (they block and trust DNS)")
	}
	if c.opts.Daemon && !asDaemon(&c.opts) {
		return detach(stderr)
	}
	c.opts.LeastPrivilege = true
	return daemon.Live(ctx, c.opts, hup)
}
