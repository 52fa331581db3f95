package e2e

import (
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/doorward/doorward/e2e/netns"
)

// spanReplayConf: a 256-port span, so the test spells wire bytes itself
// (port = 20000 + byte), with an action that only logs.
const spanReplayConf = `[span]
	Type     = knockdaemon
	Portspan = 20000-20255
	Knock    = IP,PORT,FLAG0,CHECKSUM
	Key      = e2e secret phrase
%s
[open]
	Type      = action
	Condition = PORT == 2222
	System    = true IP PORT
`

var wireRE = regexp.MustCompile(`(?m)^wire ([0-9a-f]+)$`)

// TestSpanReplay captures a knock our client makes for another address
// (-client 10.9.9.9, -test -v: printed, not sent) and sends it, and
// forgeries made of it, with Debian's knock(1) from the client namespace:
// the knock opens once; sent again it is refused; the IV-flip variants
// that rewrite the record's IP to the client's own address (all 256
// checksum masks) open nothing; and after a restart on the same state
// directory the replay is still refused. With Mac_Key the same holds and
// the IV flips fail the tag.
func TestSpanReplay(t *testing.T) {
	for _, tc := range []struct {
		name, extra string
		clientArgs  []string
	}{
		{"legacy", "", nil},
		{"mac", "\tMac_Key = e2e mac key\n", []string{"-mac-key-file", "MACKEY"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			netns.Require(t, "ip", "/usr/bin/knock")
			p := netns.NewPair(t)
			p.Firewall(t, netns.IPTables)
			conf := confFile(t, fmt.Sprintf(spanReplayConf, tc.extra))
			state := filepath.Join(t.TempDir(), "state")
			k := startKnockd(t, p, conf, "--state-dir", state)
			dst, src := p.ServerAddr, p.ClientAddr

			args := []string{knockBin, "span", "-remote", dst.String(), "-port", "2222", "-client", "10.9.9.9",
				"-flag0", "1", "-knock", "IP,PORT,FLAG0,CHECKSUM", "-portspan", "20000-20255",
				"-key", "e2e secret phrase", "-test", "-v"}
			for _, a := range tc.clientArgs {
				if a == "MACKEY" {
					a = filepath.Join(t.TempDir(), "mac.key")
					if err := os.WriteFile(a, []byte("e2e mac key\n"), 0o600); err != nil {
						t.Fatal(err)
					}
				}
				args = append(args, a)
			}
			m := wireRE.FindStringSubmatch(p.MustExec(t, p.Client, args...))
			if m == nil {
				t.Fatal("no wire line from knock span -v")
			}
			captured, _ := hex.DecodeString(m[1])
			send := func(b []byte) {
				ports := []string{"-d", "2", dst.String()}
				for _, c := range b {
					ports = append(ports, strconv.Itoa(20000+int(c)))
				}
				p.MustExec(t, p.Client, append([]string{"/usr/bin/knock"}, ports...)...)
			}
			opened := func() int { return len(k.lines("port-span knock: IP=")) }
			refused := func() int { return len(k.lines("refused: reuses the ciphertext")) }

			send(captured)
			k.waitLog(src.String()+": span: port-span knock: IP=10.9.9.9 PORT=2222 FLAG0=1", 5*time.Second)
			send(captured)
			k.waitLog("port-span knock for 10.9.9.9 refused: reuses the ciphertext", 5*time.Second)

			// IV flips: IP 10.9.9.9 -> the client's address, every mask of
			// the checksum byte (IV bytes 8..15 are IP, PORT, FLAG0, CHECKSUM).
			old, nw := [4]byte{10, 9, 9, 9}, src.As4()
			for mask := range 256 {
				f := append([]byte(nil), captured...)
				for i := range 4 {
					f[8+i] ^= old[i] ^ nw[i]
				}
				f[15] ^= byte(mask)
				send(f)
			}
			// The last flip has had time to arrive once a marker knock is seen.
			send(captured)
			deadline := time.Now().Add(5 * time.Second)
			for refused() < 2 && time.Now().Before(deadline) {
				time.Sleep(50 * time.Millisecond)
			}
			if n := opened(); n != 1 {
				t.Fatalf("%d knocks opened, want 1:\n%s", n, strings.Join(k.lines("port-span knock"), "\n"))
			}
			if n := len(k.lines("port-span knock for " + src.String())); tc.extra == "" && n != 1 {
				t.Errorf("%d IV flips decoded (and were refused), want exactly 1", n)
			} else if tc.extra != "" && n != 0 {
				t.Errorf("%d IV flips decoded with Mac_Key, want 0", n)
			}

			// Restart on the same state directory: still refused.
			if err := k.cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			if st, ok := p.Wait(k.cmd, 10*time.Second); !ok || st.ExitCode() != 0 {
				t.Fatalf("knockd after SIGTERM: %v", st)
			}
			k = startKnockd(t, p, conf, "--state-dir", state)
			send(captured)
			k.waitLog("port-span knock for 10.9.9.9 refused: reuses the ciphertext", 5*time.Second)
			if n := opened(); n != 0 {
				t.Errorf("after the restart the replay opened (%d)", n)
			}
		})
	}
}
