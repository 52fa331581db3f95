package command

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestRender(t *testing.T) {
	for _, tc := range []struct{ tmpl, addr, want string }{
		{"iptables -A INPUT -s %IP% -j ACCEPT", "10.0.0.1", "iptables -A INPUT -s 10.0.0.1 -j ACCEPT"},
		{"%IP% %IP% %ip%", "fe80::1%eth0", "fe80::1 fe80::1 %ip%"},
		{"no token", "10.0.0.1", "no token"},
	} {
		if got := Render(tc.tmpl, netip.MustParseAddr(tc.addr)); got != tc.want {
			t.Errorf("Render(%q, %s) = %q, want %q", tc.tmpl, tc.addr, got, tc.want)
		}
	}
}

func TestShell(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	st, err := Shell(context.Background(), "echo a > "+out+"; echo b >> "+out+" && exit 7")
	if st != 7 || err != nil {
		t.Fatalf("status %d err %v, want 7 nil", st, err)
	}
	b, _ := os.ReadFile(out)
	if string(b) != "a\nb\n" {
		t.Errorf("shell syntax not honoured: %q", b)
	}
}

// TestShellKillsGroup: a cancelled command takes its children with it.
func TestShellKillsGroup(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	st, err := Shell(ctx, "sleep 30 | cat")
	if err == nil || st == 0 {
		t.Fatalf("status %d err %v, want a killed command", st, err)
	}
	if time.Since(start) > 10*time.Second {
		t.Errorf("pipeline survived cancellation")
	}
}
