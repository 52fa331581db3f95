package daemon

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/doorward/doorward/actions/command"
	"github.com/doorward/doorward/detectors"
	"github.com/doorward/doorward/detectors/decode"
	"github.com/doorward/doorward/detectors/pcaptest"
	"github.com/doorward/doorward/formats/fwknop"
)

// TestFwknopReplay runs an fwknop door over a capture through the whole
// daemon: an SPA packet for two ports runs the door's command cycle once
// (fwknopd's: the first port) and its close command after the timer, the
// same packet again is a replay, and a second stanza's packet opens
// iptables rules in FWKNOP_INPUT per port, closed at the end of the
// capture.
func TestFwknopReplay(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "knockd.conf")
	calls := filepath.Join(dir, "calls")
	text := fmt.Sprintf(`[cycle]
	Type = fwknop
	SOURCE = 10.0.0.0/24
	KEY = k1-secret
	HMAC_KEY = h1-secret
	CMD_CYCLE_OPEN = echo open $IP $PORT $PROTO $CLIENT_TIMEOUT >> %[1]s
	CMD_CYCLE_CLOSE = echo close $IP $PORT >> %[1]s
	CMD_CYCLE_TIMER = 5
[rules]
	Type = fwknop
	SOURCE = ANY
	KEY = k2-secret
	HMAC_KEY = h2-secret
	HMAC_DIGEST_TYPE = sha512
`, calls)
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	cli, srv := netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("10.0.0.1")
	seal := func(at time.Time, k fwknop.Keys, access string) []byte {
		m := fwknop.Message{User: "alice", Time: at.Unix(), Type: fwknop.MsgAccess, Access: access}
		pkt, err := fwknop.Seal(&m, &k, bytes.NewReader(bytes.Repeat([]byte{7}, 4096)))
		if err != nil {
			t.Fatal(err)
		}
		return pkt
	}
	one := seal(replayT0, fwknop.Keys{Key: []byte("k1-secret"), HMACKey: []byte("h1-secret")}, "0.0.0.0,tcp/22,tcp/443")
	two := seal(replayT0.Add(2*time.Second), fwknop.Keys{Key: []byte("k2-secret"), HMACKey: []byte("h2-secret"), HMAC: fwknop.DigestSHA512}, "192.0.2.7,tcp/22,udp/53")
	udp := func(at time.Duration, payload []byte) pcaptest.Frame {
		return pcaptest.Frame{Time: replayT0.Add(at), Src: netip.AddrPortFrom(cli, 40000), Dst: netip.AddrPortFrom(srv, 62201), Proto: detectors.UDP, Payload: payload}
	}
	var buf bytes.Buffer
	if err := pcaptest.WritePcap(&buf, decode.Ethernet, []pcaptest.Frame{udp(0, one), udp(time.Second, one), udp(2*time.Second, two)}); err != nil {
		t.Fatal(err)
	}
	pcap := filepath.Join(dir, "spa.pcap")
	if err := os.WriteFile(pcap, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	var now time.Time
	var out, errOut bytes.Buffer
	// Rules are logged, not run: the iptables lines go to a runner that
	// records them.
	var ran []string
	o := Options{Config: conf, Stdout: &out, Stderr: &errOut, Verbose: true,
		Runner: func(ctx context.Context, line string) (int, error) {
			if strings.HasPrefix(line, "echo ") {
				return command.Shell(ctx, line)
			}
			ran = append(ran, line)
			return 0, nil
		}}
	if code := replay(context.Background(), o, pcap, &now); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	got, _ := os.ReadFile(calls)
	if want := "open 10.0.0.2 22 6 5\nclose 10.0.0.2 22\n"; string(got) != want {
		t.Errorf("command cycle ran:\n%s\nwant:\n%s\nlog:\n%s", got, want, out.String())
	}
	exp := replayT0.Unix() + 2 + 30
	want := []string{
		fmt.Sprintf("iptables -w -t filter -N FWKNOP_INPUT 2>/dev/null; iptables -w -t filter -C INPUT -j FWKNOP_INPUT 2>/dev/null || iptables -w -t filter -I INPUT 1 -j FWKNOP_INPUT || exit 1; iptables -w -t filter -A FWKNOP_INPUT -p 6 -s 192.0.2.7 --dport 22 -m comment --comment _exp_%d -j ACCEPT", exp),
		fmt.Sprintf("iptables -w -t filter -N FWKNOP_INPUT 2>/dev/null; iptables -w -t filter -C INPUT -j FWKNOP_INPUT 2>/dev/null || iptables -w -t filter -I INPUT 1 -j FWKNOP_INPUT || exit 1; iptables -w -t filter -A FWKNOP_INPUT -p 17 -s 192.0.2.7 --dport 53 -m comment --comment _exp_%d -j ACCEPT", exp),
		fmt.Sprintf("iptables -w -t filter -D FWKNOP_INPUT -p 6 -s 192.0.2.7 --dport 22 -m comment --comment _exp_%d -j ACCEPT", exp),
		fmt.Sprintf("iptables -w -t filter -D FWKNOP_INPUT -p 17 -s 192.0.2.7 --dport 53 -m comment --comment _exp_%d -j ACCEPT", exp),
	}
	if strings.Join(ran, "\n") != strings.Join(want, "\n") {
		t.Errorf("iptables lines:\n%s\nwant:\n%s", strings.Join(ran, "\n"), strings.Join(want, "\n"))
	}
	log := out.String()
	for _, l := range []string{
		"cycle: [10.0.0.2] (stanza #1) SPA accepted: opening tcp/22,tcp/443 for 10.0.0.2 for 5s",
		"cycle: [10.0.0.2] (stanza #1) Replay detected from source IP: 10.0.0.2",
		"rules: [10.0.0.2] (stanza #2) SPA accepted: opening tcp/22,udp/53 for 192.0.2.7 for 30s",
	} {
		if !strings.Contains(log, l) {
			t.Errorf("log lacks %q:\n%s", l, log)
		}
	}
}

// TestFwknopCheck: knockd --check reports every bad key of an fwknop door
// with its line.
func TestFwknopCheck(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "knockd.conf")
	os.WriteFile(conf, []byte("[ssh]\n\tType = fwknop\n\tSOURCE = 10.0.0.300\n\tKEY = k\n\tOPEN_PORTS = tcp/99999\n"), 0o600)
	var out, errOut bytes.Buffer
	if code := Check(Options{Config: conf, Stdout: &out, Stderr: &errOut}); code != 1 {
		t.Fatalf("check: %d\n%s", code, out.String())
	}
	for _, want := range []string{`knockd.conf:3: SOURCE: "10.0.0.300" is not an address`, `knockd.conf:5: OPEN_PORTS: "tcp/99999" is not proto/port`} {
		if !strings.Contains(errOut.String(), want) {
			t.Errorf("errors lack %q:\n%s", want, errOut.String())
		}
	}
}
