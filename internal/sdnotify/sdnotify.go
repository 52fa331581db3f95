// Package sdnotify tells systemd what a Type=notify service is doing: a
// datagram of "KEY=value" lines on the unix socket named by $NOTIFY_SOCKET
// (sd_notify(3)). It is written by hand: the protocol is one sendto, and
// a library would bring more than it takes away.
//
// Outside systemd (no $NOTIFY_SOCKET) every call does nothing, so the
// daemon calls it unconditionally.
package sdnotify

import (
	"fmt"
	"net"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// Notifier sends to one socket. The zero value (and nil) sends nothing.
type Notifier struct {
	addr string // "" outside systemd
}

// FromEnv takes the socket from $NOTIFY_SOCKET and unsets it, so the
// commands the daemon runs (which systemd would ignore anyway under
// NotifyAccess=main) do not inherit it.
func FromEnv() *Notifier {
	addr := os.Getenv("NOTIFY_SOCKET")
	os.Unsetenv("NOTIFY_SOCKET")
	return &Notifier{addr: addr}
}

// Enabled reports whether a manager listens.
func (n *Notifier) Enabled() bool { return n != nil && n.addr != "" }

// Send writes state, one "KEY=value" per line, as one datagram. An
// address starting with '@' is in the abstract namespace (a leading NUL).
func (n *Notifier) Send(state ...string) error {
	if !n.Enabled() {
		return nil
	}
	name := n.addr
	switch {
	case strings.HasPrefix(name, "@"):
		name = "\x00" + name[1:]
	case strings.HasPrefix(name, "/"):
	default:
		return fmt.Errorf("sd_notify: NOTIFY_SOCKET %q is neither a path nor an abstract name", n.addr)
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("sd_notify: %w", err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(strings.Join(state, "\n") + "\n")); err != nil {
		return fmt.Errorf("sd_notify: %w", err)
	}
	return nil
}

// Ready says the service serves: start-up is complete, or a reload ended.
func (n *Notifier) Ready() error { return n.Send("READY=1") }

// Reloading says a reload began. MONOTONIC_USEC (CLOCK_MONOTONIC) lets
// systemd tell this reload from an earlier one, as Type=notify-reload
// requires.
func (n *Notifier) Reloading() error {
	if !n.Enabled() {
		return nil
	}
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return fmt.Errorf("sd_notify: %w", err)
	}
	return n.Send("RELOADING=1", fmt.Sprintf("MONOTONIC_USEC=%d", ts.Nano()/1000))
}

// Stopping says shutdown began: stop commands may take seconds more.
func (n *Notifier) Stopping() error { return n.Send("STOPPING=1") }
