// Command knockd is Doorward's port-knock server. It reads knockd.conf
// unchanged and takes knockd's flags; see README.md for what differs.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"syscall"

	"github.com/doorward/doorward/daemon"
)

const version = "0.1.0"

func main() {
	// Signals first: a SIGHUP that arrives before this line would kill us.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	// SIGQUIT shuts down in order like SIGTERM and SIGINT, stop commands
	// run: doormand(8) says so, and knockd dies on it without closing
	// anything, which no admin wants. Go's goroutine dump on SIGQUIT is
	// given up; -D logs what the daemon does.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT, syscall.SIGQUIT)
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
	if c.replay != "" {
		return daemon.Replay(ctx, c.opts, c.replay)
	}
	if c.lookup {
		fmt.Fprintln(stderr, "knockd: -l accepted; hostname lookups are not done (they block and trust DNS)")
	}
	if c.opts.Daemon && os.Getenv(childEnv) == "" {
		return detach(stderr)
	}
	return daemon.Live(ctx, c.opts, hup)
}

const childEnv = "DOORWARD_DETACHED"

// detach re-executes knockd in a new session with stdio on /dev/null, the
// Go equivalent of knockd's daemon(0, 0): a Go program cannot fork safely.
func detach(stderr io.Writer) int {
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintf(stderr, "knockd: cannot daemonize: %v\n", err)
		return 1
	}
	cmd := exec.Command(self, os.Args[1:]...)
	cmd.Env = append(os.Environ(), childEnv+"=1")
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(stderr, "knockd: cannot daemonize: %v\n", err)
		return 1
	}
	return 0
}
