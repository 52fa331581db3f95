package sequence

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/doorward/doorward/client"
)

func secretFile(t *testing.T, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "ssh.secret")
	if err := os.WriteFile(p, []byte("gezd gnbv gy3t qojq gezd gnbv gy3t qojq\n"), mode); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestRotatingShow: knock rotating --show prints a spec vector
// (docs/rotating.md, the second row).
func TestRotatingShow(t *testing.T) {
	f := secretFile(t, 0o600)
	for _, c := range []struct {
		name     string
		args     []string
		code     int
		out, err string
	}{
		{"vector", []string{"--show", "--secret", f, "--ports", "20000-40000", "--time", "1111111111", "ssh"}, 0,
			"36154:tcp 20770:tcp 21674:tcp 24669:tcp\n", "door ssh, window 37037037, 29s left\n"},
		{"both", []string{"--show", "--secret", f, "--ports=1024-2047", "--length=8", "--protocol=both", "--time=1111111111", "ssh"}, 0,
			"1884:tcp 1315:tcp 1284:udp 1740:tcp 1663:udp 1966:tcp 1445:udp 1977:tcp\n", "door ssh, window 37037037, 29s left\n"},
		{"no ports", []string{"--show", "--secret", f, "ssh"}, 1, "", "knock rotating: --ports is required: the door's Rotating_Ports\n"},
		{"bad time", []string{"--show", "--secret", f, "--ports=1-9", "--time=x", "ssh"}, 1, "", "knock rotating: --time: \"x\" is not a number of seconds since 1970\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := runRotating(context.Background(), c.args, client.Env{Stdout: &out, Stderr: &errb})
			if code != c.code || out.String() != c.out || errb.String() != c.err {
				t.Errorf("got %d %q %q, want %d %q %q", code, out.String(), errb.String(), c.code, c.out, c.err)
			}
		})
	}
}

func TestRotatingShowRefusesReadableSecret(t *testing.T) {
	f := secretFile(t, 0o644)
	var out, errb bytes.Buffer
	if code := runRotating(context.Background(), []string{"--show", "--secret", f, "--ports=20000-40000", "ssh"}, client.Env{Stdout: &out, Stderr: &errb}); code != 1 || out.Len() != 0 {
		t.Errorf("exit %d, stdout %q, stderr %q", code, out.String(), errb.String())
	}
}

// TestParseKnockdRotating: the default mode derives the hits of the door
// named after the host; its other options still apply.
func TestParseKnockdRotating(t *testing.T) {
	f := secretFile(t, 0o600)
	p, err := parseKnockd([]string{"-d", "100", "--rotating-secret", f, "--rotating-ports=20000-40000", "--rotating-length", "6", "example.org", "ssh"})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.hits) != 6 || p.delay == 0 || p.hits[0].Host != "example.org" {
		t.Fatalf("plan %+v", p)
	}
	ports := map[string]bool{}
	for _, h := range p.hits {
		ports[h.Port] = true
	}
	if len(ports) != 6 {
		t.Errorf("ports repeat: %+v", p.hits)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--rotating-secret", f, "--rotating-ports=1-99999", "h", "ssh"}, `--rotating-ports: port "99999" is invalid (must be 1-65535)`},
		{[]string{"--rotating-secret", f, "--rotating-ports=1-9", "h", "ssh", "x"}, "with --rotating-secret, give the host and the door's name"},
		{[]string{"--rotating-ports=1-9", "h", "1"}, "--rotating-* options need --rotating-secret"},
		{[]string{"-u", "--rotating-secret", f, "--rotating-ports=1-9", "h", "ssh"}, errRotatingUDP.Error()},
	} {
		if _, err := parseKnockd(c.args); err == nil || err.Error() != c.want {
			t.Errorf("parseKnockd(%q): %v, want %s", c.args, err, c.want)
		}
	}
}
