package daemon

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestCheckPidFile: a pid file naming a running knockd refuses the start
// with its pid; a stale one (dead pid, reused pid, our own, garbage) is
// replaced and logged.
func TestCheckPidFile(t *testing.T) {
	// A dead pid: a child that has exited and been reaped.
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	// Another program, running.
	other := exec.Command("sleep", "30")
	if err := other.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { other.Process.Kill(); other.Wait() }()
	// This program, running: the test binary again, waiting on stdin.
	same := exec.Command(os.Args[0], "-test.run=^TestPidHelper$")
	same.Env = append(os.Environ(), "PID_HELPER=1")
	stdin, err := same.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := same.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { stdin.Close(); same.Wait() }()

	pid := func(n int) string { return strconv.Itoa(n) + "\n" }
	tests := []struct {
		name, content string // "" content: no file
		note, err     string
	}{
		{"missing", "", "", ""},
		{"garbage", "knockd\n", "holds no pid: replacing it", ""},
		{"dead", pid(dead.Process.Pid), "which is not running: a previous daemon died without removing it; replacing it", ""},
		{"reused by another program", pid(other.Process.Pid), "which is another program (the pid was reused): replacing it", ""},
		{"our own pid", pid(os.Getpid()), "names this process", ""},
		{"running knockd", pid(same.Process.Pid), "", "names pid " + strconv.Itoa(same.Process.Pid) + ", which is still running (another knockd?)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "knockd.pid")
			if tt.content != "" {
				if err := os.WriteFile(path, []byte(tt.content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			note, err := checkPidFile(path)
			gotErr := ""
			if err != nil {
				gotErr = err.Error()
			}
			if (tt.note == "") != (note == "") || !strings.Contains(note, tt.note) ||
				(tt.err == "") != (gotErr == "") || !strings.Contains(gotErr, tt.err) {
				t.Fatalf("checkPidFile = %q, %q; want note %q, error %q", note, gotErr, tt.note, tt.err)
			}
		})
	}
}

// TestPidHelper is the running "knockd" of TestCheckPidFile: it waits for
// its stdin to close.
func TestPidHelper(t *testing.T) {
	if os.Getenv("PID_HELPER") != "1" {
		t.Skip("helper process")
	}
	var b [1]byte
	os.Stdin.Read(b[:])
}
