package e2e

import (
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/doorward/doorward/e2e/netns"
	"github.com/doorward/doorward/internal/sdnotify/sdnotifytest"
)

// TestSystemdNotify runs knockd as systemd's Type=notify would (a socket
// path in $NOTIFY_SOCKET; an abstract name would not cross into the
// namespace): READY=1 comes only once the capture is open and the start-up
// line written, a SIGHUP is bracketed by RELOADING=1 and READY=1, and
// SIGTERM starts with STOPPING=1.
func TestSystemdNotify(t *testing.T) {
	t.Parallel()
	netns.Require(t, "ip", "env")
	p := netns.NewPair(t)
	sock, next := sdnotifytest.Listen(t)
	k := startKnockdIn(t, p, []string{"env", "NOTIFY_SOCKET=" + sock}, example("knockd-iptables.conf"))
	if got := next(); got != "READY=1\n" {
		t.Fatalf("first notification %q, want READY=1", got)
	}
	if !strings.Contains(k.output(), "starting up, listening on "+p.ServerIf) {
		t.Fatalf("READY=1 before the start-up line:\n%s", k.output())
	}
	k.cmd.Process.Signal(syscall.SIGHUP)
	if got := next(); !strings.HasPrefix(got, "RELOADING=1\nMONOTONIC_USEC=") {
		t.Fatalf("after SIGHUP %q, want RELOADING=1 and MONOTONIC_USEC", got)
	}
	if got := next(); got != "READY=1\n" {
		t.Fatalf("after the reload %q, want READY=1", got)
	}
	k.cmd.Process.Signal(syscall.SIGTERM)
	if got := next(); got != "STOPPING=1\n" {
		t.Fatalf("after SIGTERM %q, want STOPPING=1", got)
	}
	if _, ok := p.Wait(k.cmd, 10*time.Second); !ok {
		t.Fatal("knockd did not exit within 10 s of SIGTERM")
	}
}
