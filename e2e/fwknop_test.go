package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/doorward/doorward/e2e/netns"
	"github.com/doorward/doorward/formats/fwknop"
)

const (
	fwKeyB64  = "ZG9vcndhcmQtdGVzdC1yaWpuZGFlbC1rZXktMzJieXQ="
	fwHMACB64 = "ZG9vcndhcmQtdGVzdC1obWFjLWtleS1mb3ItZ29sZGVuLXZlY3RvcnMtMDEyMzQ1Njc4OS1hYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5eg=="
)

// TestFwknopdAcceptsOurClient: packets from knock fwknop are accepted by
// the real fwknopd (Debian's fwknop-server) in the server namespace, which
// adds its FWKNOP_INPUT rules there for each requested port and records
// the packet in its replay cache under formats/fwknop's ReplayDigest; one
// made with another HMAC key it refuses, so the test can tell.
func TestFwknopdAcceptsOurClient(t *testing.T) {
	netns.Require(t, "fwknopd", "iptables")
	t.Parallel()
	tests := []struct {
		name, hmac, access string
		port               int
		want               []string // FWKNOP_INPUT rule fragments; none: refused
		clientHMAC         string   // the client's HMAC key, if not the stanza's
	}{
		{name: "sha256", hmac: "sha256", access: "tcp/22", port: 62201, want: []string{"-p tcp -m tcp --dport 22"}},
		{name: "sha512-two-ports", hmac: "sha512", access: "tcp/22,udp/53", port: 62345,
			want: []string{"-p tcp -m tcp --dport 22", "-p udp -m udp --dport 53"}},
		{name: "wrong-hmac-key", hmac: "sha256", access: "tcp/22", port: 62201, clientHMAC: "b3RoZXIga2V5"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := netns.NewPair(t)
			dir := t.TempDir()
			conf := filepath.Join(dir, "fwknopd.conf")
			access := filepath.Join(dir, "access.conf")
			writeConf(t, conf, fmt.Sprintf(`PCAP_INTF %s;
PCAP_FILTER udp port %d;
ENABLE_PCAP_PROMISC N;
FWKNOP_RUN_DIR %s;
ENABLE_DIGEST_PERSISTENCE Y;
`, p.ServerIf, tt.port, dir))
			writeConf(t, access, fmt.Sprintf(`SOURCE ANY
KEY_BASE64 %s
HMAC_KEY_BASE64 %s
HMAC_DIGEST_TYPE %s
FW_ACCESS_TIMEOUT 30
`, fwKeyB64, fwHMACB64, tt.hmac))
			for _, f := range []string{conf, access} {
				os.Chmod(f, 0o600) // else fwknopd warns about them
			}
			logPath := filepath.Join(dir, "fwknopd.log")
			log, err := os.Create(logPath)
			if err != nil {
				t.Fatal(err)
			}
			defer log.Close()
			digests := filepath.Join(dir, "digest.cache")
			p.Start(t, p.Server, log, "fwknopd", "-f", "-v", "-c", conf, "-a", access,
				"-d", digests, "-p", filepath.Join(dir, "fwknopd.pid"), "-r", dir)
			defer func() {
				if t.Failed() {
					out, _ := os.ReadFile(logPath)
					t.Logf("fwknopd output:\n%s", out)
				}
			}()
			waitFile(t, logPath, "Starting fwknopd main event loop", 10*time.Second)

			hmacKey := fwHMACB64
			if tt.clientHMAC != "" {
				hmacKey = tt.clientHMAC
			}
			saved := filepath.Join(dir, "packet")
			p.MustExec(t, p.Client, knockBin, "fwknop", "--no-rc-file", "-A", tt.access, "-a", p.ClientAddr.String(),
				"-D", p.ServerAddr.String(), "-p", fmt.Sprint(tt.port), "-U", "alice", "-B", saved,
				"--key-base64-rijndael", fwKeyB64, "--key-base64-hmac", hmacKey, "--hmac-digest-type", tt.hmac)
			if tt.want == nil {
				waitFile(t, logPath, "HMAC_COMPAREFAIL", 10*time.Second)
				if rules := p.MustExec(t, p.Server, "iptables", "-S", "FWKNOP_INPUT"); strings.Contains(rules, p.ClientAddr.String()) {
					t.Fatalf("fwknopd opened for a packet with the wrong HMAC key:\n%s", rules)
				}
				return
			}
			waitFile(t, logPath, "Added access rule to FWKNOP_INPUT", 10*time.Second)

			// fwknopd logs the access once and adds the rules one port at a time.
			var rules, missing string
			if !waitUntil(5*time.Second, nil, func() bool {
				rules, missing = p.MustExec(t, p.Server, "iptables", "-S", "FWKNOP_INPUT"), ""
				for _, w := range tt.want {
					if !strings.Contains(rules, "-A FWKNOP_INPUT -s "+p.ClientAddr.String()+"/32 "+w) {
						missing = w
					}
				}
				return missing == ""
			}) {
				t.Fatalf("FWKNOP_INPUT has no rule %q for %s:\n%s", missing, p.ClientAddr, rules)
			}
			pkt, err := os.ReadFile(saved)
			if err != nil {
				t.Fatal(err)
			}
			want := fwknop.ReplayDigest([]byte(strings.TrimSpace(string(pkt))))
			waitFile(t, digests, want, 5*time.Second)
		})
	}
}

// waitFile waits until the file at path contains want.
func waitFile(t *testing.T, path, want string, d time.Duration) {
	t.Helper()
	if !waitUntil(d, nil, func() bool {
		b, _ := os.ReadFile(path)
		return strings.Contains(string(b), want)
	}) {
		t.Fatalf("%s: no %q after %v", filepath.Base(path), want, d)
	}
}
