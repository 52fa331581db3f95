package e2e

import (
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/doorward/doorward/e2e/netns"
)

// The fwknop tests send packets made by the real fwknop client (Debian's
// fwknop-client) to our knockd's Type = fwknop doors: an nftables set per
// port for one stanza (HMAC SHA-256), a CMD_CYCLE for another (SHA-512),
// and every refusal the issue lists, each with its reason in the log.

const fwknopRuleset = `flush ruleset
table inet filter {
	set fwknop4 { type ipv4_addr . inet_service; flags timeout; }
	set fwknop6 { type ipv6_addr . inet_service; flags timeout; }
	chain input {
		type filter hook input priority filter; policy drop;
		iif "lo" accept
		ct state established,related accept
		meta l4proto { icmp, ipv6-icmp } accept
		ip saddr . tcp dport @fwknop4 accept
		ip6 saddr . tcp dport @fwknop6 accept
	}
}
`

// fwKeys is one stanza's keys, as fwknop --key-gen prints them.
type fwKeys struct{ key, hmac string }

var (
	fwSSH   = fwKeys{b64("ssh-rijndael-key-0123456789abcde"), b64("ssh-hmac-key-0123456789abcdefghijklmnop")}
	fwCycle = fwKeys{b64("cycle-rijndael-key-0123456789abc"), b64("cycle-hmac-key-0123456789abcdefghijklmn")}
)

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// fwServer is knockd with fwknop doors in a fresh namespace pair.
type fwServer struct {
	p      *netns.Pair
	k      *knockd
	dir    string
	conf   string
	state  string
	marker string // CMD_CYCLE's files go here
}

func fwSetup(t *testing.T) *fwServer {
	t.Helper()
	netns.Require(t, "ip", "nc", "nft", "fwknop")
	p := netns.NewPair(t)
	s := &fwServer{p: p, dir: t.TempDir()}
	s.state = filepath.Join(s.dir, "state")
	s.marker = filepath.Join(s.dir, "cycle")
	if err := os.Mkdir(s.marker, 0o700); err != nil {
		t.Fatal(err)
	}
	p.LoadNFT(t, fwknopRuleset)
	service(t, p, 2222)
	s.conf = confFile(t, fmt.Sprintf(`[ssh]
	Type = fwknop
	SOURCE = %[1]s/24, fd00:231::/64
	KEY_BASE64 = %[2]s
	HMAC_KEY_BASE64 = %[3]s
	OPEN_PORTS = tcp/22, tcp/2222
	FW_ACCESS_TIMEOUT = 3
	MAX_FW_TIMEOUT = 5
	Nft_Set = inet filter fwknop4
	Nft_Set_6 = inet filter fwknop6

[cycle]
	Type = fwknop
	SOURCE = ANY
	KEY_BASE64 = %[4]s
	HMAC_KEY_BASE64 = %[5]s
	HMAC_DIGEST_TYPE = SHA512
	CMD_CYCLE_OPEN = touch %[6]s/open-$IP-$PORT-$PROTO
	CMD_CYCLE_CLOSE = rm %[6]s/open-$IP-$PORT-$PROTO
	CMD_CYCLE_TIMER = 2
`, p.ClientAddr.Prev(), fwSSH.key, fwSSH.hmac, fwCycle.key, fwCycle.hmac, s.marker))
	s.start(t)
	return s
}

func (s *fwServer) start(t *testing.T) {
	s.k = startKnockd(t, s.p, s.conf, "--state-dir", s.state)
}

// fwknop runs the real client in the client namespace with its own rc
// file, so it reads and writes nothing of the host's.
func (s *fwServer) fwknop(t *testing.T, k fwKeys, args ...string) {
	t.Helper()
	rc := filepath.Join(t.TempDir(), "fwknoprc")
	if err := os.WriteFile(rc, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	argv := append([]string{"fwknop", "--rc-file", rc, "--no-save-args", "--use-hmac",
		"--key-base64-rijndael", k.key, "--key-base64-hmac", k.hmac}, args...)
	if out, err := s.p.Exec(t, s.p.Client, argv...); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(argv, " "), err, out)
	}
}

// packet has the real client build a packet without sending it (-T -B)
// and returns it.
func (s *fwServer) packet(t *testing.T, k fwKeys, args ...string) []byte {
	t.Helper()
	path := filepath.Join(t.TempDir(), "spa")
	s.fwknop(t, k, append(args, "-T", "-B", path)...)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return []byte(strings.TrimSpace(string(b)))
}

// send sends payload in one UDP datagram from the client namespace.
func (s *fwServer) send(t *testing.T, payload []byte, v6 bool) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "payload")
	if err := os.WriteFile(path, payload, 0o600); err != nil {
		t.Fatal(err)
	}
	dst, fam := s.p.ServerAddr.String(), "-4"
	if v6 {
		dst, fam = s.p.ServerAddr6.String(), "-6"
	}
	if out, err := s.p.Exec(t, s.p.Client, "sh", "-c", fmt.Sprintf("nc %s -u -w1 %s 62201 < %s", fam, dst, path)); err != nil {
		t.Fatalf("nc: %v\n%s", err, out)
	}
}

func (s *fwServer) elems(t *testing.T, set string) string {
	return strings.Join(s.p.NFTSetElements(t, "filter", set), " ")
}

func (s *fwServer) waitElems(t *testing.T, set, want string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for s.elems(t, set) != want {
		if time.Now().After(deadline) {
			t.Fatalf("set %s: %q, want %q", set, s.elems(t, set), want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func waitMarker(t *testing.T, path string, exists bool, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		_, err := os.Stat(path)
		if (err == nil) == exists {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: exists %v, want %v", path, err == nil, exists)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestFwknop: the real client opens our doors (two ports with a
// client-requested timeout through an nftables set, HMAC SHA-256; a
// command cycle with HMAC SHA-512; SPA over IPv6) and every refusal is
// logged with its reason, a replay also after a restart.
func TestFwknop(t *testing.T) {
	t.Parallel()
	s := fwSetup(t)
	p, k := s.p, s.k
	cli, srv := p.ClientAddr.String(), p.ServerAddr.String()

	// Two ports, -s, --fw-timeout 4 (under MAX_FW_TIMEOUT), SHA-256.
	spa := s.packet(t, fwSSH, "-A", "tcp/22,tcp/2222", "-s", "--fw-timeout", "4", "-D", srv)
	s.send(t, spa, false)
	k.waitLog("ssh: ["+cli+"] (stanza #1) SPA accepted: opening tcp/22,tcp/2222 for "+cli+" for 4s", 5*time.Second)
	s.waitElems(t, "fwknop4", fmt.Sprintf(`{"concat": ["%s", 22]} {"concat": ["%s", 2222]}`, cli, cli), 2*time.Second)
	if err := p.WaitTCP(t, p.ServerAddr, 2222, true, time.Second); err != nil {
		t.Fatalf("after the SPA packet: %v", err)
	}

	// The cycle stanza, sent by the client itself, SHA-512, -a.
	s.fwknop(t, fwCycle, "-A", "tcp/22", "-a", cli, "--hmac-digest-type", "sha512", "-D", srv)
	marker := filepath.Join(s.marker, "open-"+cli+"-22-6")
	waitMarker(t, marker, true, 5*time.Second)

	// Refusals, each with its reason.
	s.send(t, spa, false)
	k.waitLog("(stanza #1) Replay detected from source IP: "+cli, 5*time.Second)
	s.send(t, append([]byte("U2FsdGVkX1"), spa...), false)
	k.waitLog("not an SPA packet", 5*time.Second)
	k.waitLog("packet carries the stripped prefix", time.Second)

	bad := fwKeys{fwSSH.key, b64("not-the-hmac-key-0123456789abcdefghijkl")}
	s.fwknop(t, bad, "-A", "tcp/22", "-s", "-D", srv)
	k.waitLog("ssh: ["+cli+"] (stanza #1) Non-corresponding HMAC for this stanza", 5*time.Second)
	bad = fwKeys{b64("not-the-rijndael-key-0123456789a"), fwSSH.hmac}
	s.fwknop(t, bad, "-A", "tcp/22", "-s", "-D", srv)
	k.waitLog("ssh: ["+cli+"] (stanza #1) Error creating fko context: fwknop: decryption failed", 5*time.Second)
	s.fwknop(t, fwSSH, "-A", "tcp/22", "-s", "--time-offset-minus", "5m", "-D", srv)
	k.waitLog("ssh: ["+cli+"] (stanza #1) SPA data time difference is too great", 5*time.Second)
	s.fwknop(t, fwSSH, "-A", "tcp/80", "-s", "-D", srv)
	k.waitLog("ssh: ["+cli+"] (stanza #1) One or more requested protocol/ports was denied per access.conf: tcp/80", 5*time.Second)

	// IPv6: a packet the real client made, sent over IPv6 (-s: the door
	// opens for the IPv6 source).
	cli6 := p.ClientAddr6.String()
	s.send(t, s.packet(t, fwSSH, "-A", "tcp/2222", "-s", "-D", srv), true)
	k.waitLog("ssh: ["+cli6+"] (stanza #1) SPA accepted: opening tcp/2222 for "+cli6, 5*time.Second)
	s.waitElems(t, "fwknop6", fmt.Sprintf(`{"concat": ["%s", 2222]}`, cli6), 2*time.Second)

	// The doors close on time: the command cycle's after its timer, the
	// set elements after the timeouts.
	waitMarker(t, marker, false, 4*time.Second)
	s.waitElems(t, "fwknop4", "", 5*time.Second)
	s.waitElems(t, "fwknop6", "", 5*time.Second)

	// The doors above opened through fwknop's own engine; the daemon's
	// knock-to-command latency counts them (three SPA packets opened
	// something: the two set ports, the command cycle, the IPv6 port).
	k.terminate()
	noPanic(t, k)
	if l := k.lines("knock-to-command latency: "); len(l) == 0 {
		t.Error("no knock-to-command latency line at shutdown")
	} else {
		var n int
		_, err := fmt.Sscanf(l[len(l)-1][strings.Index(l[len(l)-1], "knock-to-command latency: "):], "knock-to-command latency: %d start commands", &n)
		if err != nil || n < 3 {
			t.Errorf("latency line %q: %d start commands measured (%v), want at least 3", l[len(l)-1], n, err)
		}
	}

	// A replay after a restart is still a replay.
	s.start(t)
	s.send(t, spa, false)
	s.k.waitLog("(stanza #1) Replay detected from source IP: "+cli, 5*time.Second)
	s.k.terminate()
	noPanic(t, s.k)
}

// TestFwknopSource: a packet from an address no stanza's SOURCE holds is
// refused before any key is tried.
func TestFwknopSource(t *testing.T) {
	t.Parallel()
	netns.Require(t, "ip", "fwknop")
	p := netns.NewPair(t)
	conf := confFile(t, fmt.Sprintf(`[office]
	Type = fwknop
	SOURCE = 192.0.2.0/24
	KEY_BASE64 = %s
	HMAC_KEY_BASE64 = %s
`, fwSSH.key, fwSSH.hmac))
	s := &fwServer{p: p}
	k := startKnockd(t, p, conf)
	s.fwknop(t, fwSSH, "-A", "tcp/22", "-s", "-D", p.ServerAddr.String())
	k.waitLog("fwknop: No access data found for source IP: "+p.ClientAddr.String(), 5*time.Second)
	k.terminate()
	noPanic(t, k)
}

// TestFwknopdConf: `knockd -c fwknopd.conf` runs Debian's fwknopd.conf
// unchanged and its access.conf with the keys filled in, as an admin
// does; without CMD_CYCLE or a set the door is a rule in fwknopd's
// FWKNOP_INPUT chain, as fwknopd's own, removed after the client's
// --fw-timeout.
func TestFwknopdConf(t *testing.T) {
	t.Parallel()
	netns.Require(t, "ip", "nc", "iptables", "fwknop")
	p := netns.NewPair(t)
	p.Firewall(t, netns.IPTables)
	service(t, p, 2222)
	dir := t.TempDir()
	for _, name := range []string{"fwknopd.conf", "access.conf"} {
		b, err := os.ReadFile("/etc/fwknop/" + name)
		if err != nil {
			t.Fatalf("%v (Debian's fwknop-server)", err)
		}
		text := string(b)
		if name == "access.conf" {
			text = strings.Replace(text, "KEY_BASE64          __CHANGEME__", "KEY_BASE64          "+fwSSH.key, 1)
			text = strings.Replace(text, "HMAC_KEY_BASE64     __CHANGEME__", "HMAC_KEY_BASE64     "+fwSSH.hmac, 1)
		}
		writeConf(t, filepath.Join(dir, name), text)
	}
	k := startKnockd(t, p, filepath.Join(dir, "fwknopd.conf"))
	s := &fwServer{p: p}
	s.fwknop(t, fwSSH, "-A", "tcp/2222", "-s", "--fw-timeout", "2", "-D", p.ServerAddr.String())
	cli := p.ClientAddr.String()
	k.waitLog("SOURCE ANY: ["+cli+"] (stanza #1) SPA accepted: opening tcp/2222 for "+cli+" for 2s", 5*time.Second)
	if err := p.WaitTCP(t, p.ServerAddr, 2222, true, 2*time.Second); err != nil {
		t.Fatalf("after the SPA packet: %v", err)
	}
	rules := p.MustExec(t, p.Server, "iptables", "-w", "-S", "FWKNOP_INPUT")
	if !strings.Contains(rules, "-A FWKNOP_INPUT -s "+cli+"/32 -p tcp -m tcp --dport 2222 -m comment --comment _exp_") {
		t.Errorf("FWKNOP_INPUT:\n%s", rules)
	}
	if err := p.WaitTCP(t, p.ServerAddr, 2222, false, 4*time.Second); err != nil {
		t.Fatalf("after the timeout: %v", err)
	}
	if rules := p.MustExec(t, p.Server, "iptables", "-w", "-S", "FWKNOP_INPUT"); strings.Contains(rules, cli) {
		t.Errorf("FWKNOP_INPUT after the timeout:\n%s", rules)
	}
	k.terminate()
	noPanic(t, k)
}

// TestFwknopShutdownAndCrash: a door open at SIGTERM is closed then; one
// open when knockd is killed is closed by the next start, before any
// packet is looked at (the journal holds its close command). The nftables
// door's element is also deleted at SIGTERM.
func TestFwknopShutdownAndCrash(t *testing.T) {
	t.Parallel()
	s := fwSetup(t)
	p, srv, cli := s.p, s.p.ServerAddr.String(), s.p.ClientAddr.String()
	marker := filepath.Join(s.marker, "open-"+cli+"-22-6")
	cycle := func() {
		s.fwknop(t, fwCycle, "-A", "tcp/22", "-s", "--hmac-digest-type", "sha512", "--fw-timeout", "60", "-D", srv)
		waitMarker(t, marker, true, 5*time.Second)
	}
	cycle()
	s.fwknop(t, fwSSH, "-A", "tcp/2222", "-s", "--fw-timeout", "5", "-D", srv)
	s.waitElems(t, "fwknop4", fmt.Sprintf(`{"concat": ["%s", 2222]}`, cli), 5*time.Second)
	s.k.terminate()
	noPanic(t, s.k)
	waitMarker(t, marker, false, 0)
	if got := s.elems(t, "fwknop4"); got != "" {
		t.Errorf("after SIGTERM the set holds %q", got)
	}

	s.start(t)
	cycle()
	if err := syscall.Kill(s.k.cmd.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if _, ok := p.Wait(s.k.cmd, 5*time.Second); !ok {
		t.Fatal("knockd still running 5 s after SIGKILL")
	}
	waitMarker(t, marker, true, 0)
	s.start(t) // returns at "starting up": recovery came before it
	waitMarker(t, marker, false, 0)
	s.k.waitLog(cli+": cycle: closing door left open by a previous run", time.Second)
	s.k.terminate()
	noPanic(t, s.k)
}

// TestFwknopDigestImport: the real fwknopd accepts a packet and writes it
// to its digest.cache; our knockd, started on that setup (DIGEST_FILE),
// imports the cache and refuses the same packet as a replay.
func TestFwknopDigestImport(t *testing.T) {
	t.Parallel()
	netns.Require(t, "ip", "nc", "iptables", "fwknop", "fwknopd")
	p := netns.NewPair(t)
	dir := t.TempDir()
	access := filepath.Join(dir, "access.conf")
	writeConf(t, access, fmt.Sprintf("SOURCE ANY\nKEY_BASE64 %s\nHMAC_KEY_BASE64 %s\n", fwSSH.key, fwSSH.hmac))
	if err := os.Chmod(access, 0o600); err != nil {
		t.Fatal(err)
	}
	serverConf := filepath.Join(dir, "fwknopd.conf")
	writeConf(t, serverConf, "# no settings: fwknopd's defaults\n")
	digests := filepath.Join(dir, "digest.cache")
	s := &fwServer{p: p}
	cli := p.ClientAddr.String()
	spa := s.packet(t, fwSSH, "-A", "tcp/22", "-a", cli, "-D", p.ServerAddr.String())

	logPath := filepath.Join(dir, "fwknopd.out")
	out, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	fwd := p.Start(t, p.Server, out, "fwknopd", "-f", "-v", "-i", p.ServerIf, "-c", serverConf, "-a", access,
		"-d", digests, "-p", filepath.Join(dir, "fwknopd.pid"), "-r", dir)
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile(digests)
		if strings.Contains(string(b), " 17 "+cli+" ") {
			break
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(logPath)
			t.Fatalf("fwknopd wrote no digest:\n%s\nits output:\n%s", b, log)
		}
		// fwknopd takes a moment to open its capture: send until it counts.
		s.send(t, spa, false)
		time.Sleep(200 * time.Millisecond)
	}
	if err := syscall.Kill(fwd.Process.Pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	p.Wait(fwd, 5*time.Second)

	conf := confFile(t, fmt.Sprintf("[ssh]\n\tType = fwknop\n\tSOURCE = ANY\n\tKEY_BASE64 = %s\n\tHMAC_KEY_BASE64 = %s\n\tDIGEST_FILE = %s\n", fwSSH.key, fwSSH.hmac, digests))
	k := startKnockd(t, p, conf)
	k.waitLog("fwknop: imported 1 digests from fwknopd's "+digests, time.Second)
	s.send(t, spa, false)
	k.waitLog("ssh: ["+cli+"] (stanza #1) Replay detected from source IP: "+cli, 5*time.Second)
	k.terminate()
	noPanic(t, k)
}
