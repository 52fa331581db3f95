package e2e

import (
	"crypto/hmac"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/doorward/doorward/e2e/netns"
)

// The doorman tests run doorman doors against real iptables and nftables:
// the firewall scripts of examples/doorman, knocks from our client and
// from sendip (with a payload the test computes itself), a real TCP
// connection (nc) for the broad-to-narrow step, and doormand's refusals.

const (
	dmKnockPort = 1001
	dmWaitfor   = 3 // seconds: short, so the timeout test is short
	dmSecret    = "hushhush"
)

// dmServer is one doorman setup in a fresh namespace pair.
type dmServer struct {
	p       *netns.Pair
	k       *knockd
	flavour netns.Flavour
	dir     string
	conf    string
	state   string // --state-dir, kept across restarts
}

// dmSetup builds the server side: the firewall (default deny for TCP
// 2222), the service on 2222, the example scripts installed root-owned
// and 0700, a guest list, and knockd with either an unchanged-format
// doormand.cf (iptables) or the example knockd.conf door (nftables).
func dmSetup(t *testing.T, flavour netns.Flavour) *dmServer {
	t.Helper()
	tools := []string{"ip", "nc", "sendip"}
	netns.Require(t, tools...)
	p := netns.NewPair(t)
	s := &dmServer{p: p, flavour: flavour, dir: t.TempDir()}
	s.state = filepath.Join(s.dir, "state")
	prefix := "iptables"
	switch flavour {
	case netns.IPTables:
		p.Firewall(t, netns.IPTables)
	case netns.NFTables:
		prefix = "nft"
		p.Firewall(t, netns.NFTables, servicePort)
		ruleset, err := os.ReadFile(example("doorman/doorman.nft"))
		if err != nil {
			t.Fatal(err)
		}
		p.LoadNFT(t, string(ruleset))
	}
	service(t, p, servicePort)
	// The scripts as an admin installs them: root's, no access for
	// others (knockd checks, as doormand does).
	for _, op := range []string{"add", "delete"} {
		src, err := os.ReadFile(example("doorman/" + prefix + "_" + op))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(s.dir, op), src, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	guests := fmt.Sprintf("martink %s %d\n\t%s\nother secret2 %d 192.0.2.1\n", dmSecret, servicePort, p.ClientAddr, servicePort)
	if err := os.WriteFile(filepath.Join(s.dir, "guestlist"), []byte(guests), 0o600); err != nil {
		t.Fatal(err)
	}
	s.conf = s.writeConf(t)
	s.start(t)
	return s
}

func (s *dmServer) writeConf(t *testing.T) string {
	t.Helper()
	var path, text string
	if s.flavour == netns.IPTables {
		// doormand.cf, as doormand reads it; knockd -i overrides its
		// interface.
		path = filepath.Join(s.dir, "doormand.cf")
		text = fmt.Sprintf(`# doormand.cf
interface eth9
port %d
guestlist %[2]s/guestlist
firewall-add %[2]s/add
firewall-del %[2]s/delete
hash-archive %[2]s/hash
hash-archive-size 1000
waitfor %d
connection_delay_1 500000
connection_delay_2 1
logfile %[2]s/doorman.log
loglevel debug
`, dmKnockPort, s.dir, dmWaitfor)
	} else {
		// The example door, with this test's paths and shorter delays.
		b, err := os.ReadFile(example("doorman/knockd-doorman.conf"))
		if err != nil {
			t.Fatal(err)
		}
		text = string(b)
		for old, new := range map[string]string{
			"/etc/doorward/guestlist":        s.dir + "/guestlist",
			"/etc/doorward/iptables_add":     s.dir + "/add",
			"/etc/doorward/iptables_delete":  s.dir + "/delete",
			"/var/lib/doorward/doorman.hash": s.dir + "/hash",
		} {
			if !strings.Contains(text, old) {
				t.Fatalf("example lacks %s", old)
			}
			text = strings.ReplaceAll(text, old, new)
		}
		for key, val := range map[string]string{"Waitfor": strconv.Itoa(dmWaitfor), "Connection_Delay_2": "1", "LogLevel": "debug"} {
			re := regexp.MustCompile(`(?m)^(\s*` + key + `\s*=\s*)\S+`)
			if !re.MatchString(text) {
				t.Fatalf("example lacks %s", key)
			}
			text = re.ReplaceAllString(text, "${1}"+val)
		}
		path = filepath.Join(s.dir, "knockd.conf")
	}
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func (s *dmServer) start(t *testing.T) { s.k = startKnockd(t, s.p, s.conf, "--state-dir", s.state) }

// stop sends SIGTERM and waits for knockd to exit 0.
func (s *dmServer) stop(t *testing.T) {
	t.Helper()
	if err := s.k.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	st, ok := s.p.Wait(s.k.cmd, 10*time.Second)
	if !ok || st.ExitCode() != 0 {
		t.Fatalf("knockd after SIGTERM: %v (exited %v)", st, ok)
	}
}

var (
	iptRuleRE = regexp.MustCompile(`^-A INPUT -s (\S+)/32 -d \S+ -i \S+ -p tcp -m tcp (?:--sport (\d+) )?--dport 2222 -j ACCEPT$`)
	nftElemRE = regexp.MustCompile(`elements = \{ ([^}]*) \}`)
)

// rules lists the doorman rules for port 2222 in place: "broad ADDR" and
// "narrow ADDR:SPORT", sorted.
func (s *dmServer) rules(t *testing.T) []string {
	t.Helper()
	var out []string
	switch s.flavour {
	case netns.IPTables:
		for _, l := range strings.Split(s.p.MustExec(t, s.p.Server, "iptables", "-w", "-S", "INPUT"), "\n") {
			if m := iptRuleRE.FindStringSubmatch(l); m != nil {
				if m[2] == "" {
					out = append(out, "broad "+m[1])
				} else {
					out = append(out, "narrow "+m[1]+":"+m[2])
				}
			}
		}
	case netns.NFTables:
		for _, set := range []string{"broad", "narrow"} {
			m := nftElemRE.FindStringSubmatch(s.p.MustExec(t, s.p.Server, "nft", "list", "set", "inet", "doorman", set))
			if m == nil {
				continue
			}
			// "src . dst . dport" or "src . sport . dst . dport", comma
			// separated, possibly over several lines.
			for _, e := range strings.Split(m[1], ",") {
				f := strings.Split(strings.Join(strings.Fields(e), " "), " . ")
				switch {
				case set == "broad" && len(f) == 3 && f[2] == strconv.Itoa(servicePort):
					out = append(out, "broad "+f[0])
				case set == "narrow" && len(f) == 4 && f[3] == strconv.Itoa(servicePort):
					out = append(out, "narrow "+f[0]+":"+f[1])
				}
			}
		}
	}
	slices.Sort(out)
	return out
}

// waitRules polls rules until they equal want or d passes.
func (s *dmServer) waitRules(t *testing.T, want []string, d time.Duration) {
	t.Helper()
	slices.Sort(want)
	deadline := time.Now().Add(d)
	for {
		got := s.rules(t)
		if slices.Equal(got, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s rules %q, want %q (waited %v)", s.flavour, got, want, d)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// dmPayload computes a knock independently of formats/doorman: HMAC-MD5
// with key "port group tag" and the secret as the message (spec §1.2).
func dmPayload(port int, group, tag, secret string) string {
	key := fmt.Sprintf("%d %s %s", port, group, tag)
	m := hmac.New(md5.New, []byte(key))
	m.Write([]byte(secret))
	return key + " " + hex.EncodeToString(m.Sum(nil))
}

// sendip sends payload as one UDP datagram from the client's address
// (or src) to the knock port.
func (s *dmServer) sendip(t *testing.T, src, payload string) {
	t.Helper()
	dst := s.p.ServerAddr.String()
	s.p.MustExec(t, s.p.Client, "sendip", "-p", "ipv4", "-is", src, "-id", dst,
		"-p", "udp", "-us", "40000", "-ud", strconv.Itoa(dmKnockPort), "-d", payload, dst)
}

// TestDoormanConnect: a knock (our client with iptables and a doormand.cf,
// sendip with nftables and the example door) opens port 2222 for the
// knocker's address alone; its connection's SYN swaps the broad rule for
// the narrow one; the rule goes when the connection closes.
func TestDoormanConnect(t *testing.T) {
	for _, tc := range []struct {
		flavour netns.Flavour
		knock   func(t *testing.T, s *dmServer)
	}{
		{netns.IPTables, func(t *testing.T, s *dmServer) {
			// Our client, doorman's command line.
			s.p.MustExec(t, s.p.Client, knockBin, "doorman", "-f", filepath.Join(s.dir, "no-knockcf"), "-g", "martink",
				"-s", dmSecret, "-p", strconv.Itoa(dmKnockPort), s.p.ServerAddr.String(), strconv.Itoa(servicePort))
		}},
		{netns.NFTables, func(t *testing.T, s *dmServer) {
			s.sendip(t, s.p.ClientAddr.String(), dmPayload(servicePort, "martink", "0123456789", dmSecret))
		}},
	} {
		t.Run(string(tc.flavour), func(t *testing.T) {
			t.Parallel()
			s := dmSetup(t, tc.flavour)
			cli := s.p.ClientAddr.String()
			if s.p.Reachable(t, s.p.ServerAddr, servicePort) {
				t.Fatal("service reachable before the knock")
			}
			s.waitRules(t, nil, 0)

			tc.knock(t, s)
			s.k.waitLog(": debug: knock from "+cli+" was valid.", 5*time.Second)
			s.waitRules(t, []string{"broad " + cli}, 3*time.Second)

			// A connection that stays up 4 s (nc exits on the timeout).
			s.p.Start(t, s.p.Client, nil, "timeout", "4", "nc", s.p.ServerAddr.String(), strconv.Itoa(servicePort))
			s.k.waitLog("connection established,  martink@"+cli+":", 3*time.Second)
			l := s.k.lines("Initial SYN packet detected, martink@" + cli + ":")
			if len(l) != 1 {
				t.Fatalf("SYN lines: %q", l)
			}
			sport := regexp.MustCompile(`:(\d+) -> 2222$`).FindStringSubmatch(l[0])
			if sport == nil {
				t.Fatalf("no source port in %q", l[0])
			}
			s.waitRules(t, []string{"narrow " + cli + ":" + sport[1]}, time.Second)

			s.k.waitLog("(martink@"+cli+":"+sport[1]+") has stopped running.", 8*time.Second)
			s.waitRules(t, nil, 2*time.Second)
			for _, bad := range []string{"returned", "could not", "error:", "emerg:"} {
				if l := s.k.lines(bad); len(l) > 0 {
					t.Errorf("knockd reported %q:\n%s", bad, strings.Join(l, "\n"))
				}
			}
		})
	}
}

// TestDoormanWaitfor: without a SYN, the broad rule goes after Waitfor.
func TestDoormanWaitfor(t *testing.T) {
	t.Parallel()
	s := dmSetup(t, netns.IPTables)
	cli := s.p.ClientAddr.String()
	s.sendip(t, cli, dmPayload(servicePort, "martink", "1111111111", dmSecret))
	s.waitRules(t, []string{"broad " + cli}, 3*time.Second)
	opened := time.Now()
	s.k.waitLog("doorman: warn: Timed out waiting for SYN packet. Exiting.", (dmWaitfor+3)*time.Second)
	s.waitRules(t, nil, 2*time.Second)
	if d := time.Since(opened); d < (dmWaitfor-1)*time.Second {
		t.Errorf("broad rule gone after %v, want about %ds", d, dmWaitfor)
	}
}

// TestDoormanRefused: doormand's refusals, with its log lines, and no rule
// for any of them; a replay is refused, also after a restart.
func TestDoormanRefused(t *testing.T) {
	t.Parallel()
	s := dmSetup(t, netns.IPTables)
	cli := s.p.ClientAddr.String()
	valid := dmPayload(servicePort, "martink", "4242424242", dmSecret)
	for _, tc := range []struct {
		name, payload, log string
	}{
		{"wrong secret", dmPayload(servicePort, "martink", "1", "wrong"), "warn: Guest martink at " + cli + " used incorrect secret."},
		{"port not in the guest list", dmPayload(22, "martink", "2", dmSecret), "warn: Guest martink at " + cli + " not registered for port 22."},
		{"wrong source address", dmPayload(servicePort, "other", "3", "secret2"), "warn: Guest other is not registered for address " + cli + "."},
		{"unknown guest", dmPayload(servicePort, "nobody", "4", "x"), "warn: Unknown guest 'nobody'"},
		{"bad packet", "2222 martink 5 0123", "warn: Bad packet from " + cli + " \"32 32 32 32 20 6d 61 72 74 69 6e 6b 20 35 20 30 ..\""},
	} {
		s.sendip(t, cli, tc.payload)
		s.k.waitLog("doorman: "+tc.log, 3*time.Second)
	}
	if got := s.rules(t); len(got) != 0 {
		t.Fatalf("rules after refused knocks: %q", got)
	}
	if n := len(s.k.lines("was valid")); n != 0 {
		t.Fatalf("%d knocks accepted", n)
	}

	s.sendip(t, cli, valid)
	s.k.waitLog("doorman: debug: knock from "+cli+" was valid.", 3*time.Second)
	s.sendip(t, cli, valid)
	replay := "doorman: warn: PROBABLE REPLAY ATTEMPT from " + cli + ": port=2222 guest=martink tag=4242424242 hash=" + valid[len(valid)-32:] + "; original timestamp="
	s.k.waitLog(replay, 3*time.Second)
	s.waitRules(t, []string{"broad " + cli}, time.Second)

	// Restart: SIGTERM deletes the broad rule; the archive file keeps the
	// knock, so the new daemon refuses it too.
	s.stop(t)
	s.waitRules(t, nil, 0)
	s.start(t)
	s.sendip(t, cli, valid)
	s.k.waitLog(replay, 3*time.Second)
	if got := s.rules(t); len(got) != 0 {
		t.Fatalf("rules after the replay: %q", got)
	}
}

// TestDoormanCrash: a daemon killed with SIGKILL leaves its broad rule;
// the next start deletes it from the journal before listening.
func TestDoormanCrash(t *testing.T) {
	t.Parallel()
	s := dmSetup(t, netns.IPTables)
	cli := s.p.ClientAddr.String()
	s.sendip(t, cli, dmPayload(servicePort, "martink", "7777777777", dmSecret))
	s.waitRules(t, []string{"broad " + cli}, 3*time.Second)
	s.k.cmd.Process.Signal(syscall.SIGKILL)
	if _, ok := s.p.Wait(s.k.cmd, 5*time.Second); !ok {
		t.Fatal("knockd survived SIGKILL")
	}
	if got := s.rules(t); len(got) != 1 {
		t.Fatalf("after SIGKILL: rules %q, want the broad rule left behind", got)
	}
	s.start(t) // returns once it listens: the leftover rule is gone by then
	if got := s.rules(t); len(got) != 0 {
		t.Fatalf("after the restart: rules %q", got)
	}
	s.k.waitLog(cli+": doorman: closing door left open by a previous run", time.Second)
}
