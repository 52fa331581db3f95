// Package command runs knockd-style command lines. knockd hands its
// start and stop commands to system(3), so admins write shell syntax in
// them (`;`, `&&`, redirections); we keep that by running /bin/sh -c.
//
// The only substitution is %IP%, and its value is always a netip.Addr
// rendered by the standard library, which can only contain [0-9a-f.:]:
// nothing a network peer sends ever reaches the shell.
package command

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// Render substitutes every %IP% in tmpl with addr, as knockd's parse_cmd
// does (exact, case-sensitive token; IPv6 without zone).
func Render(tmpl string, addr netip.Addr) string {
	return strings.ReplaceAll(tmpl, "%IP%", addr.WithZone("").String())
}

// Runner runs one rendered command line and returns its exit status.
// err is set only when the command could not be run or was killed.
type Runner func(ctx context.Context, line string) (status int, err error)

// Shell is the production Runner: /bin/sh -c line, in its own process group
// so a cancelled context kills the whole pipeline, not just the shell.
// stdout and stderr go where the daemon's go (the journal under systemd).
func Shell(ctx context.Context, line string) (int, error) {
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", line)
	cmd.Stdout = os.Stdout
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	cmd.WaitDelay = 2 * time.Second
	err := cmd.Run()
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
