// Package command runs knockd-style command lines. knockd hands its
// start and stop commands to system(3), so admins write shell syntax in
// them (`;`, `&&`, redirections); we keep that by running /bin/sh -c.
//
// The only substitution is %IP%, and its value is always a netip.Addr
// rendered by the standard library, which can only contain [0-9a-f.:]:
// nothing a network peer sends ever reaches the shell.
//
// This is the one place a shell command is started: knockd's start and
// stop commands (actions/engine), knockdaemon's System commands
// (actions/knockdaemon) and doormand's firewall scripts (actions/doorman)
// all go through Exec, so every command has a time limit, runs in its own
// process group and takes that whole group with it when it is killed.
package command

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/doorward/doorward/actions"
)

// DefaultTimeout is how long a command may run when [options]
// Command_Timeout is not set. iptables, nft and ip(8) return in
// milliseconds; 30 s leaves room for a slow DNS lookup in a rule or a
// firewall under load, and doormand's scripts had the same bound.
const DefaultTimeout = 30 * time.Second

// waitDelay bounds how long Exec waits for a killed command's output pipe
// to close: a grandchild that left the process group (setsid, double fork)
// could otherwise hold it open forever.
const waitDelay = 2 * time.Second

// Render substitutes every %IP% in tmpl with addr, as knockd's parse_cmd
// does (exact, case-sensitive token; IPv6 without zone).
func Render(tmpl string, addr netip.Addr) string {
	return strings.ReplaceAll(tmpl, "%IP%", addr.WithZone("").String())
}

// Runner runs one rendered command line and returns its exit status.
// err is set only when the command could not be run, was killed or ran
// out of time; every caller counts that as a failed command. The type is
// the actions contract's, so an action's Env can carry one.
type Runner = actions.Runner

// ErrTimeout is wrapped by the error of a command killed at its time limit.
var ErrTimeout = errors.New("timed out")

// Shell is the production Runner: /bin/sh -c line, stdout and stderr going
// where the daemon's go (the journal under systemd). Its time limit is
// ctx's deadline (the daemon's WithTimeout sets it), DefaultTimeout if ctx
// has none.
func Shell(ctx context.Context, line string) (int, error) {
	return Exec(ctx, line, 0, os.Stdout)
}

// WithTimeout returns a Runner that gives run at most d for each command
// (d <= 0: DefaultTimeout). The daemon wraps whatever Runner it has with
// [options] Command_Timeout, so a test's fake runner is bounded the same
// way as the shell.
func WithTimeout(run Runner, d time.Duration) Runner {
	return WithLimit(run, func() time.Duration { return d })
}

// WithLimit is WithTimeout with the limit read at each command's start, so
// a reload that changes Command_Timeout applies to the next command.
func WithLimit(run Runner, limit func() time.Duration) Runner {
	return func(ctx context.Context, line string) (int, error) {
		d := limit()
		if d <= 0 {
			d = DefaultTimeout
		}
		ctx, cancel := context.WithTimeoutCause(ctx, d, fmt.Errorf("%w after %v", ErrTimeout, d))
		defer cancel()
		st, err := run(ctx, line)
		if err == nil && st == 0 || context.Cause(ctx) == nil {
			return st, err
		}
		// Whatever the runner made of the cancellation, say why.
		if errors.Is(context.Cause(ctx), ErrTimeout) {
			return st, context.Cause(ctx)
		}
		return st, fmt.Errorf("killed: %w", context.Cause(ctx))
	}
}

// Exec runs /bin/sh -c line in its own process group, writing its
// standard output to stdout (nil: discarded) and its standard error to the
// daemon's. At timeout (<= 0: ctx's deadline, or DefaultTimeout if ctx
// has none), or when ctx is done, the
// whole group gets SIGKILL: a pipeline or a background child goes too,
// not just the shell. status is the exit status (128+signal when killed);
// err is set when the command could not be started or was killed.
func Exec(ctx context.Context, line string, timeout time.Duration, stdout io.Writer) (status int, err error) {
	return Start(ctx, line, timeout, stdout)()
}

// Start is Exec in two halves: it returns once the shell's process
// exists (or could not be created), and wait waits for it and returns what
// Exec would. The time limit runs from Start. wait must be called exactly
// once. The daemon forks this way on the thread that saw the knock, and
// waits elsewhere (actions.Starter).
func Start(ctx context.Context, line string, timeout time.Duration, stdout io.Writer) (wait func() (status int, err error)) {
	cancel := context.CancelFunc(func() {})
	if _, ok := ctx.Deadline(); timeout > 0 || !ok {
		if timeout <= 0 {
			timeout = DefaultTimeout
		}
		ctx, cancel = context.WithTimeoutCause(ctx, timeout, fmt.Errorf("%w after %v", ErrTimeout, timeout))
	}
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", line)
	cmd.Stdout = stdout
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	cmd.WaitDelay = waitDelay
	if err := cmd.Start(); err != nil {
		cancel()
		return func() (int, error) { return -1, err }
	}
	return func() (int, error) {
		defer cancel()
		return status(ctx, cmd, cmd.Wait())
	}
}

// status is Exec's result from cmd's Wait error.
func status(ctx context.Context, cmd *exec.Cmd, err error) (int, error) {
	if cause := context.Cause(ctx); cause != nil && cmd.ProcessState != nil && !cmd.ProcessState.Success() {
		// Killed by us (or it failed just as its time ran out): either
		// way it did not finish in time.
		st := -1
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			st = 128 + int(ws.Signal())
		}
		if !errors.Is(cause, ErrTimeout) {
			cause = fmt.Errorf("killed: %w", cause)
		}
		return st, cause
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal()), err
		}
		return ee.ExitCode(), nil
	}
	if err != nil {
		return -1, err
	}
	return 0, nil
}

// ShutdownBudget is how long a daemon told to stop (SIGTERM) keeps running
// commands after it was told: the start and stop commands still running,
// then every pending stop command, earliest first, each within its own
// time limit. Whatever is still running when the budget is spent is killed
// (its process group), and stop commands not yet run stay in the journal:
// the next start runs them before it accepts a knock. systemd's default
// stop timeout is 90 s, so the daemon always exits by itself first.
const ShutdownBudget = 5 * time.Second

// Grace returns the context commands run under: unlike ctx it is not done
// when ctx is, but budget later, so a stop command can finish during a
// shutdown without holding it up forever. cancel releases it.
func Grace(ctx context.Context, budget time.Duration) (context.Context, context.CancelFunc) {
	g, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, func() {
		t := time.NewTimer(budget)
		defer t.Stop()
		select {
		case <-t.C:
			cancel()
		case <-g.Done():
		}
	})
	return g, func() { stop(); cancel() }
}
