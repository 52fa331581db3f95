package doorman

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/doorward/doorward/client"
	"github.com/doorward/doorward/formats/doorman"
)

// knock runs knock doorman's command line (after "doorman") in-process.
func knock(args []string, stdout, stderr *bytes.Buffer) int {
	return runCLI(context.Background(), args, client.Env{
		Stdin: os.Stdin, Stdout: stdout, Stderr: stderr, Getenv: os.Getenv, Version: "test",
	})
}

// listenUDP is a loopback socket standing in for the server's knock port.
func listenUDP(t *testing.T) (net.PacketConn, string) {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Skip(err)
	}
	t.Cleanup(func() { pc.Close() })
	_, port, _ := net.SplitHostPort(pc.LocalAddr().String())
	return pc, port
}

func receive(t *testing.T, pc net.PacketConn) string {
	t.Helper()
	pc.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 512)
	n, _, err := pc.ReadFrom(buf)
	if err != nil {
		t.Fatalf("no knock received: %v", err)
	}
	return string(buf[:n])
}

func knockcf(t *testing.T, text string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "knockcf")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	os.Chmod(p, mode)
	return p
}

var payloadRE = regexp.MustCompile(`^(\d+) (\S+) (\d{10}) ([0-9a-f]{32})$`)

// TestDoormanKnock: one datagram, the original's format, verifying with
// the secret, with CLI values over the file's.
func TestDoormanKnock(t *testing.T) {
	pc, port := listenUDP(t)
	tests := []struct {
		name       string
		cf         string
		args       []string
		group      string
		secret     string
		service    string
		wantStderr string
	}{
		{"from the file", "group martink\nsecret hushhush\nport " + port + "\n", []string{"127.0.0.1", "22"}, "martink", "hushhush", "22", ""},
		{"CLI wins", "group other\nsecret other\nport 9\n", []string{"-g", "martink", "-s", "hushhush", "-p", port, "127.0.0.1", "ssh"}, "martink", "hushhush", "22", ""},
		{"options after the arguments", "", []string{"127.0.0.1", "1001", "-g", "grp187", "-s", "Big%sEcReT", "-p", port}, "grp187", "Big%sEcReT", "1001", ""},
		{"long group warns", "", []string{"-g", strings.Repeat("g", 20), "-s", "x", "-p", port, "127.0.0.1", "22"}, strings.Repeat("g", 20), "x", "22",
			"knock doorman: warning: the knock is 67 bytes; an original doormand ignores knocks over 63 bytes (use a shorter group name)\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"-f", knockcf(t, tc.cf, 0o600)}
			var stdout, stderr bytes.Buffer
			if code := knock(append(args, tc.args...), &stdout, &stderr); code != 0 {
				t.Fatalf("exit %d: %s", code, stderr.String())
			}
			if stderr.String() != tc.wantStderr {
				t.Errorf("stderr %q, want %q", stderr.String(), tc.wantStderr)
			}
			got := receive(t, pc)
			m := payloadRE.FindStringSubmatch(got)
			if m == nil || m[1] != tc.service || m[2] != tc.group {
				t.Fatalf("payload %q", got)
			}
			k, err := doorman.Parse([]byte(got))
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := k.Verify([]byte(tc.secret)); !ok {
				t.Errorf("payload %q does not verify with %q", got, tc.secret)
			}
		})
	}
}

// TestDoormanRun: -r runs the command with %H% and %P% as typed, after the
// knock; "x" turns the file's run off; a failing command exits 1.
func TestDoormanRun(t *testing.T) {
	pc, port := listenUDP(t)
	out := filepath.Join(t.TempDir(), "ran")
	cf := knockcf(t, "group g\nsecret s\nport "+port+"\nrun \"echo file %H% > "+out+"\"\n", 0o600)
	for _, tc := range []struct {
		name string
		args []string
		want string // content of out, "" = not run
		code int
	}{
		{"file's run", nil, "file 127.0.0.1\n", 0},
		{"-r wins", []string{"-r", "echo cli %H% %P% > " + out}, "cli 127.0.0.1 ssh\n", 0},
		{"-r x turns it off", []string{"-r", "x"}, "", 0},
		{"failing command", []string{"-r", "exit 3"}, "", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			os.Remove(out)
			var stdout, stderr bytes.Buffer
			args := append([]string{"-f", cf}, tc.args...)
			if code := knock(append(args, "127.0.0.1", "ssh"), &stdout, &stderr); code != tc.code {
				t.Fatalf("exit %d, want %d: %s", code, tc.code, stderr.String())
			}
			receive(t, pc)
			got, _ := os.ReadFile(out)
			if string(got) != tc.want {
				t.Errorf("command wrote %q, want %q", got, tc.want)
			}
		})
	}
}

// TestDoormanErrors: refusals before anything is sent.
func TestDoormanErrors(t *testing.T) {
	pc, port := listenUDP(t)
	for _, tc := range []struct {
		name   string
		cf     string
		mode   os.FileMode
		args   []string
		stderr string
	}{
		{"knockcf readable by group", "group g\nsecret s\n", 0o640, []string{"127.0.0.1", "22"}, "must not be readable or writeable by anyone but the owner"},
		{"no group", "secret s\n", 0o600, []string{"-p", port, "127.0.0.1", "22"}, "no group"},
		{"bad -p", "", 0o600, []string{"-p", "65535", "127.0.0.1", "22"}, "Invalid port number, '-p 65535'"},
		{"bad service", "group g\nsecret s\n", 0o600, []string{"127.0.0.1", "70000"}, "invalid port number, 70000"},
		{"IPv6 host", "group g\nsecret s\n", 0o600, []string{"::1", "22"}, "IPv4 only"},
		{"too few arguments", "", 0o600, []string{"127.0.0.1"}, "Usage :"},
		{"bad option", "", 0o600, []string{"-x", "127.0.0.1", "22"}, "invalid option -- 'x'"},
		{"-?", "", 0o600, []string{"-?"}, "Usage :"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			args := append([]string{"-f", knockcf(t, tc.cf, tc.mode)}, tc.args...)
			if code := knock(args, &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), tc.stderr) {
				t.Errorf("exit %d, stderr %q; want 1 and %q", code, stderr.String(), tc.stderr)
			}
		})
	}
	pc.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if n, _, err := pc.ReadFrom(make([]byte, 100)); err == nil {
		t.Errorf("a refused command line sent %d bytes", n)
	}
}

// TestDoormanMissingCF: knock warns and goes on without the file, and
// knocks port 1001 by default (knock 0.9 would knock port 0).
func TestDoormanMissingCF(t *testing.T) {
	var stdout, stderr bytes.Buffer
	missing := filepath.Join(t.TempDir(), "none")
	pc, err := net.ListenPacket("udp4", "127.0.0.1:"+strconv.Itoa(doorman.DefaultPort))
	if err != nil {
		t.Skipf("port %d busy: %v", doorman.DefaultPort, err)
	}
	defer pc.Close()
	if code := knock([]string{"-f", missing, "-g", "g", "-s", "s", "127.0.0.1", "22"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if want := "Warning: can't open configuration file '" + missing + "'\n"; stderr.String() != want {
		t.Errorf("stderr %q, want %q", stderr.String(), want)
	}
	receive(t, pc)
}
