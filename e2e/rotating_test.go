package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/doorward/doorward/e2e/netns"
)

// rotatingSecret is the test door's secret (RFC 6238's test secret).
const rotatingSecret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"

// TestRotating runs examples/knockd-rotating.conf with a secret of its
// own and opens its door with clients that know nothing of rotating
// doors, fed the current ports: Debian's knock given the output of knock
// rotating --show, and the shell reference client (which sends with
// knock). Each has its own daemon and state, as a window's sequence opens
// a door once.
func TestRotating(t *testing.T) {
	const door = "door2222"
	for _, tc := range []struct {
		name  string
		tools []string
		knock func(t *testing.T, p *netns.Pair, secret string) []string // the ports it sent
	}{
		{"debian-knock-show", []string{"knock"}, func(t *testing.T, p *netns.Pair, secret string) []string {
			out, err := exec.Command(knockBin, "rotating", "--show", "--secret", secret, "--ports", "20000-32000", door).Output()
			if err != nil {
				t.Fatalf("knock rotating --show: %v", err)
			}
			ports := strings.Fields(string(out))
			p.MustExec(t, p.Client, append([]string{"/usr/bin/knock", p.ServerAddr.String()}, ports...)...)
			return ports
		}},
		{"shell-client", []string{"knock", "dash", "openssl"}, func(t *testing.T, p *netns.Pair, secret string) []string {
			p.MustExec(t, p.Client, "env", "HOST="+p.ServerAddr.String(), "dash", example("knock-rotating.sh"), secret, door, "20000-32000")
			return nil
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			netns.Require(t, append([]string{"ip", "nc", "iptables"}, tc.tools...)...)
			dir := t.TempDir()
			secret := filepath.Join(dir, "ssh.secret")
			if err := os.WriteFile(secret, []byte(rotatingSecret+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			conf, err := os.ReadFile(example("knockd-rotating.conf"))
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, "knockd.conf")
			if err := os.WriteFile(path, []byte(strings.ReplaceAll(string(conf), "/etc/doorward/ssh.secret", secret)), 0o600); err != nil {
				t.Fatal(err)
			}
			p := netns.NewPair(t)
			p.Firewall(t, netns.IPTables)
			service(t, p, servicePort)
			k := startKnockd(t, p, path)
			src, dst := p.ClientAddr, p.ServerAddr
			if p.Reachable(t, dst, servicePort) {
				t.Fatal("service reachable before the knock")
			}
			sesame := src.String() + ": " + door + ": OPEN SESAME"
			ports := tc.knock(t, p, secret)
			k.waitLog(sesame, 5*time.Second)
			iptablesGuard.waitAllowed(t, p, false, []string{src.String()}, 2*time.Second)
			if err := p.WaitTCP(t, dst, servicePort, true, 2*time.Second); err != nil {
				t.Fatalf("after the knock: %v", err)
			}
			if ports == nil {
				return
			}
			// The same ports again, within the window (or the next one,
			// within the skew): spent.
			p.MustExec(t, p.Client, append([]string{"/usr/bin/knock", dst.String()}, ports...)...)
			k.waitLog(src.String()+": "+door+": the rotating sequence of window", 5*time.Second)
			if n := len(k.lines("OPEN SESAME")); n != 1 {
				t.Errorf("%d OPEN SESAME lines, want 1", n)
			}
		})
	}
}
