package daemon

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/doorward/doorward/config/knockd"
)

// TestLevelOf gives each class of knockd line, as the daemon writes it,
// the priority journald shows it with.
func TestLevelOf(t *testing.T) {
	for _, tc := range []struct {
		line string
		want int
	}{
		{"starting up, listening on eth0", prioInfo},
		{"10.0.0.2: openSSH: Stage 1", prioInfo},
		{"10.0.0.2: openSSH: OPEN SESAME", prioInfo},
		{"openSSH: running command: iptables -A INPUT -s 10.0.0.2 -j ACCEPT", prioInfo},
		{"10.0.0.2: openSSH: command timeout", prioInfo},
		{"10.0.0.2: openSSH: sequence timeout (stage 2)", prioInfo},
		{"10.0.0.2: openSSH: door already open, keeping it open 10s longer", prioInfo},
		{"10.0.0.2: openSSH: in cooldown, knock ignored", prioInfo},
		{"re-reading config file: /etc/knockd.conf", prioInfo},
		{"capture eth0: 10 packets passed the filter, 0 dropped by the kernel", prioInfo},
		{"span: action a: condition false, skipped", prioInfo},
		{"shutting down", prioInfo},
		{"ssh: notice: guest alice opened 22 for 10.0.0.2", prioInfo},
		{"ssh: debug: rule added", prioDebug},
		{"config: warning: knockd.conf:3: door ssh: no Stop_Command_6", prioWarning},
		{"ssh: warn: firewall rule -s 10.0.0.2 could not be deleted (2 times); retrying in 2s", prioWarning},
		{"10.0.0.2: openSSH: stop command failed 2 times, door still open; retrying in 2s", prioWarning},
		{"capture eth0: recvfrom: network is down; will reopen", prioWarning},
		{"capture eth0: kernel dropped 12 packets (ring full; 12 since start)", prioWarning},
		{"3 knock log lines suppressed (more than 10 a second)", prioWarning},
		{"10.0.0.2: openSSH: already open for 1024 addresses (the most a door keeps), knock ignored", prioWarning},
		{"openSSH: 10.0.0.2: closing door left open by a previous run", prioWarning},
		{"event queue full, dropped 3 knocks", prioWarning},
		{"openSSH: command failed: exit status 1", prioErr},
		{"openSSH: command returned non-zero status code (1)", prioErr},
		{"10.0.0.2: openSSH: start command failed, running the stop command once to undo it", prioErr},
		{"10.0.0.2: openSSH: stop command failed 10 times, giving up; the door may still be open, run it by hand: x", prioErr},
		{"10.0.0.2: openSSH: cannot record the door in the journal, not opening it: disk full", prioErr},
		{"config: knockd.conf:4: unknown directive Foo", prioErr},
		{"config reload failed, keeping the running config", prioErr},
		{"could not create pid file /run/knockd.pid: permission denied", prioErr},
		{"shutdown: out of time, 2 stop commands left in the journal for the next start", prioErr},
		{"ssh: error: cannot record the rule in the journal, not adding it: x", prioErr},
	} {
		t.Run(tc.line, func(t *testing.T) {
			if got := levelOf(tc.line); got != tc.want {
				t.Errorf("level %d, want %d", got, tc.want)
			}
		})
	}
}

// TestLoggerJournald: on journald's stream every line, also each line of
// a message of several and a -D trace line, starts with its priority and
// carries no timestamp; the log file keeps knockd's format.
func TestLoggerJournald(t *testing.T) {
	var out bytes.Buffer
	file := filepath.Join(t.TempDir(), "knockd.log")
	l := NewLogger(LogOptions{File: file, Stdout: &out, Debug: true, Journald: true})
	l.Logf("10.0.0.2: openSSH: OPEN SESAME")
	l.Logf("config: a.conf:1: bad\na.conf:2: worse")
	l.Logf("capture eth0: kernel dropped 1 packets (ring full; 1 since start)")
	l.Debugf("tcp: %s", "10.0.0.2:4000 -> 10.0.0.1:7000")
	l.Close()
	want := "<6>10.0.0.2: openSSH: OPEN SESAME\n<3>config: a.conf:1: bad\n<3>a.conf:2: worse\n" +
		"<4>capture eth0: kernel dropped 1 packets (ring full; 1 since start)\n<7>tcp: 10.0.0.2:4000 -> 10.0.0.1:7000\n"
	if out.String() != want {
		t.Errorf("stdout\n%q, want\n%q", out.String(), want)
	}
	b, _ := os.ReadFile(file)
	if bytes.Contains(b, []byte("<6>")) {
		t.Errorf("log file got a priority: %q", b)
	}
}

// TestToJournald: only the file whose device:inode $JOURNAL_STREAM names
// is journald's; the same variable with stdout redirected elsewhere is not.
func TestToJournald(t *testing.T) {
	dir := t.TempDir()
	stream, err := os.Create(filepath.Join(dir, "stream"))
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	other, err := os.Create(filepath.Join(dir, "other"))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	var st syscall.Stat_t
	if err := syscall.Fstat(int(stream.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	t.Setenv("JOURNAL_STREAM", fmt.Sprintf("%d:%d", st.Dev, st.Ino))
	if !toJournald(stream) {
		t.Error("the stream named by JOURNAL_STREAM is not journald's")
	}
	if toJournald(other) || toJournald(&bytes.Buffer{}) {
		t.Error("another file, or not a file, taken for journald's stream")
	}
	t.Setenv("JOURNAL_STREAM", "")
	if toJournald(stream) {
		t.Error("journald's stream without JOURNAL_STREAM")
	}
}

// TestLiveOutputToJournald: with stdout and stderr on journald's stream
// (one file, as systemd connects them), a config error reaches it as an
// error and the -v log lines with their priorities.
func TestLiveOutputToJournald(t *testing.T) {
	dir := t.TempDir()
	stream, err := os.Create(filepath.Join(dir, "stream"))
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	var st syscall.Stat_t
	if err := syscall.Fstat(int(stream.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	t.Setenv("JOURNAL_STREAM", fmt.Sprintf("%d:%d", st.Dev, st.Ino))
	conf := filepath.Join(dir, "knockd.conf")
	if err := os.WriteFile(conf, []byte("[door]\n\tsequence = 7000,abc\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code := Live(t.Context(), Options{Config: conf, Stdout: stream, Stderr: stream, Verbose: true}, nil); code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	o := Options{Stdout: stream, Verbose: true}
	log := o.logger(&knockd.Config{}, nil)
	log.Logf("shutting down")
	log.Close()
	b, err := os.ReadFile(stream.Name())
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if !strings.HasPrefix(lines[0], "<3>config: "+conf+":2: ") || lines[len(lines)-1] != "<6>shutting down" {
		t.Errorf("stream:\n%s", b)
	}
	for _, l := range lines[:len(lines)-1] {
		if !strings.HasPrefix(l, "<3>") {
			t.Errorf("line without <3>: %q", l)
		}
	}
}
