package daemon

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestLoggerDestinations: the same knockd message goes to the log file as
// "[YYYY-MM-DD HH:MM] msg", to syslog as user.notice with ident knockd,
// and bare to stdout in verbose mode.
func TestLoggerDestinations(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "log.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var stdout bytes.Buffer
	file := filepath.Join(dir, "knockd.log")
	at := time.Date(2026, 11, 25, 9, 7, 59, 0, time.Local)
	l := NewLogger(LogOptions{File: file, Syslog: true, SyslogAddr: sock, Stdout: &stdout, Now: func() time.Time { return at }})
	l.Logf("%s: %s: OPEN SESAME", "10.0.0.2", "openSSH")
	l.Close()

	if got, want := stdout.String(), "10.0.0.2: openSSH: OPEN SESAME\n"; got != want {
		t.Errorf("stdout %q, want %q", got, want)
	}
	b, _ := os.ReadFile(file)
	if got, want := string(b), "[2026-11-25 09:07] 10.0.0.2: openSSH: OPEN SESAME\n"; got != want {
		t.Errorf("log file %q, want %q", got, want)
	}
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 1024)
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	msg := string(buf[:n])
	// <13> is facility user (1) × 8 + notice (5).
	if !regexp.MustCompile(`^<13>.* knockd\[\d+\]: 10\.0\.0\.2: openSSH: OPEN SESAME\n?$`).MatchString(msg) {
		t.Errorf("syslog message %q", msg)
	}
	if strings.Count(msg, "OPEN SESAME") != 1 {
		t.Errorf("syslog message %q", msg)
	}
}
