package daemon

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/doorward/doorward/actions/command"
	"github.com/doorward/doorward/actions/journal"
)

// TestShutdownWithHangingStop: SIGTERM (ctx cancelled, as main's
// NotifyContext does) while a door's stop command hangs. The daemon runs
// it, kills it and its child when the shutdown budget is spent, keeps the
// door in the journal for the next start, and exits: it never waits for
// the command, whatever Command_Timeout says. Real shell, real processes.
func TestShutdownWithHangingStop(t *testing.T) {
	dir := t.TempDir()
	logPath := filepath.Join(dir, "firewall.log")
	if err := os.WriteFile(logPath, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	stateDir := filepath.Join(dir, "state")
	conf := strings.NewReplacer("LOG", logPath, "STATE", stateDir, "DIR", dir).Replace(`[options]
	LogTail = LOG
	StateDir = STATE
	Command_Timeout = 600

[fw]
	Type   = logformat
	Format = iptables
	Prefix = DOORWARD:

[openSSH]
	sequence      = 7000,8000,9000
	seq_timeout   = 5
	tcpflags      = syn
	start_command = echo %IP% > DIR/opened
	cmd_timeout   = 600
	stop_command  = sleep 600 & echo $! > DIR/stop.pid; wait
`)
	confPath := filepath.Join(dir, "knockd.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errOut syncBuffer
	o := Options{Config: confPath, LogFile: filepath.Join(dir, "knockd.log"), Stdout: &out, Stderr: &errOut, Verbose: true}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan int, 1)
	go func() { done <- Live(ctx, o, nil) }()
	waitFor(t, &out, "starting up, following "+logPath)
	time.Sleep(300 * time.Millisecond) // tail reaches the end of the file
	now := time.Now()
	f, err := os.OpenFile(logPath, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(kernLine(now, "192.0.2.10", 40000, 7000) + kernLine(now, "192.0.2.10", 40001, 8000) + kernLine(now, "192.0.2.10", 40002, 9000))
	f.Close()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if b, _ := os.ReadFile(filepath.Join(dir, "opened")); string(b) == "192.0.2.10\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the knock did not open; log:\n%s", out.String())
		}
	}

	cancel()
	start := time.Now()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut.String())
		}
	case <-time.After(command.ShutdownBudget + 10*time.Second):
		t.Fatalf("still running %v after SIGTERM; log:\n%s", time.Since(start), out.String())
	}
	if took := time.Since(start); took > command.ShutdownBudget+3*time.Second {
		t.Errorf("shutdown took %v, budget %v", took, command.ShutdownBudget)
	}
	b, err := os.ReadFile(filepath.Join(dir, "stop.pid"))
	if err != nil {
		t.Fatalf("the stop command did not run at shutdown: %v; log:\n%s", err, out.String())
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	for deadline := time.Now().Add(3 * time.Second); pid > 0 && syscall.Kill(pid, 0) == nil; time.Sleep(20 * time.Millisecond) {
		if stat, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); strings.Contains(string(stat), ") Z ") {
			break
		}
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("the stop command's child %d outlived the daemon", pid)
		}
	}
	jr, left, err := journal.Open(stateDir)
	if err != nil {
		t.Fatal(err)
	}
	jr.Shutdown()
	if len(left) != 1 || left[0].Addr != "192.0.2.10" || left[0].Failures != 1 {
		t.Errorf("journal after shutdown: %+v, want the door, one failure", left)
	}
	if s := out.String(); !strings.Contains(s, "openSSH: command failed: killed: ") || !strings.Contains(s, "stop command failed at shutdown; the door will be closed at next start") {
		t.Errorf("log:\n%s", s)
	}
}
