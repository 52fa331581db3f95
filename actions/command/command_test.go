package command

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"testing/synctest"
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

// TestExecTimeoutKillsGrandchild: a command that hangs is killed at its
// limit with everything it started, its output pipe included, and the
// error says it timed out.
func TestExecTimeoutKillsGrandchild(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pid")
	var out strings.Builder
	start := time.Now()
	st, err := Exec(context.Background(), "sleep 30 & echo $! > "+pidFile+"; echo started; wait", 300*time.Millisecond, &out)
	took := time.Since(start)
	if !errors.Is(err, ErrTimeout) || st == 0 {
		t.Fatalf("status %d err %v, want a timeout", st, err)
	}
	if took > 5*time.Second {
		t.Errorf("Exec returned after %v, want about 300ms", took)
	}
	if out.String() != "started\n" {
		t.Errorf("stdout %q, want the output written before the kill", out.String())
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	// The grandchild was reparented when the shell died; once reaped
	// (or a zombie) it is gone.
	for deadline := time.Now().Add(5 * time.Second); ; {
		if !alive(pid) {
			break
		}
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("grandchild %d survived the timeout", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// The state follows the command name in parentheses.
	s := string(stat)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] != 'Z'
	}
	return true
}

// TestWithTimeout: any Runner is given the limit through its context, and
// a command cut off at the limit is a failure that says so, while one
// that finishes in time is untouched.
func TestWithTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		hang := func(ctx context.Context, line string) (int, error) {
			if line == "quick" {
				return 3, nil
			}
			<-ctx.Done()
			return -1, ctx.Err()
		}
		run := WithTimeout(hang, 5*time.Second)
		start := time.Now()
		st, err := run(context.Background(), "hang")
		if !errors.Is(err, ErrTimeout) || !strings.Contains(err.Error(), "5s") {
			t.Errorf("err %v, want a timeout after 5s", err)
		}
		if took := time.Since(start); took != 5*time.Second {
			t.Errorf("took %v, want 5s", took)
		}
		if st == 0 {
			t.Errorf("status 0 for a killed command")
		}
		if st, err := run(context.Background(), "quick"); st != 3 || err != nil {
			t.Errorf("quick command: %d %v, want 3 nil", st, err)
		}
		// Cancelled from outside (shutdown budget spent): not a timeout.
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(time.Second, cancel)
		if _, err := run(ctx, "hang"); err == nil || errors.Is(err, ErrTimeout) {
			t.Errorf("cancelled: err %v, want killed", err)
		}
		if d := WithTimeout(hang, 0); d == nil {
			t.Fatal("nil runner")
		}
	})
}

// TestGrace: the commands' context outlives a shutdown by the budget, no
// more, and release ends it.
func TestGrace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		g, release := Grace(ctx, 5*time.Second)
		defer release()
		time.Sleep(time.Hour)
		if g.Err() != nil {
			t.Fatal("done before the shutdown")
		}
		cancel()
		start := time.Now()
		<-g.Done()
		if took := time.Since(start); took != 5*time.Second {
			t.Errorf("done %v after the shutdown, want 5s", took)
		}
		g2, release2 := Grace(context.Background(), time.Second)
		release2()
		if g2.Err() == nil {
			t.Error("release did not end it")
		}
	})
}
