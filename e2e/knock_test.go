package e2e

import (
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	knockdconf "github.com/doorward/doorward/config/knockd"
	"github.com/doorward/doorward/e2e/netns"
)

// knocker sends a knock from the client namespace to dst.
type knocker func(t *testing.T, p *netns.Pair, dst netip.Addr)

// knockWith runs a knockd-style client: prog [flags] dst ports...
func knockWith(prog string, flags []string, ports ...string) knocker {
	return func(t *testing.T, p *netns.Pair, dst netip.Addr) {
		t.Helper()
		args := append(append([]string{prog}, flags...), dst.String())
		p.MustExec(t, p.Client, append(args, ports...)...)
	}
}

// debianKnock is Debian's /usr/bin/knock (knockd 0.8's client).
func debianKnock(flags []string, ports ...string) knocker {
	return knockWith("/usr/bin/knock", flags, ports...)
}

// ourKnock is cmd/knock, built in TestMain.
func ourKnock(flags []string, ports ...string) knocker {
	return func(t *testing.T, p *netns.Pair, dst netip.Addr) {
		t.Helper()
		knockWith(knockBin, flags, ports...)(t, p, dst)
	}
}

// sendipKnock crafts one SYN per port with sendip (raw socket).
func sendipKnock(ports ...int) knocker {
	return func(t *testing.T, p *netns.Pair, dst netip.Addr) {
		t.Helper()
		for i, port := range ports {
			p.MustExec(t, p.Client, "sendip", "-p", "ipv4", "-is", p.ClientAddr.String(), "-id", dst.String(),
				"-p", "tcp", "-ts", strconv.Itoa(40000+i), "-td", strconv.Itoa(port), "-tfs", "1", "-tfa", "0",
				dst.String())
		}
	}
}

// connectKnock knocks by trying to connect with a real client that waits
// for an answer the DROP policy never sends. If it waits longer than the
// initial RTO (1 s) the kernel retransmits the SYN: the daemon must take the
// exact duplicate.
func connectKnock(argv func(dst netip.Addr, port int) []string, ports ...int) knocker {
	return func(t *testing.T, p *netns.Pair, dst netip.Addr) {
		t.Helper()
		for i, port := range ports {
			if i == len(ports)-1 {
				// The door opens on the first SYN of the last port: do
				// not eat into Cmd_Timeout waiting for the client to
				// give up.
				p.Start(t, p.Client, nil, argv(dst, port)...)
				return
			}
			// Fails by design (timeout, no connection).
			p.Exec(t, p.Client, argv(dst, port)...)
		}
	}
}

var (
	telnetKnock = connectKnock(func(dst netip.Addr, port int) []string {
		// 1.5 s: the first SYN and one retransmission.
		return []string{"timeout", "1.5", "telnet", dst.String(), strconv.Itoa(port)}
	}, 7000, 8000, 9000)
	ncKnock = connectKnock(func(dst netip.Addr, port int) []string {
		return []string{"nc", "-z", "-w1", dst.String(), strconv.Itoa(port)}
	}, 7000, 8000, 9000)
)

// TestKnock opens the example door with each client and firewall: closed
// before, opened for the knocker's address only, closed again by the stop
// command after Cmd_Timeout.
func TestKnock(t *testing.T) {
	v4, v6 := false, true
	tcp := []string{"7000", "8000", "9000"}
	tests := []struct {
		name  string
		guard guard
		v6    bool
		door  string
		tools []string
		knock knocker
		dupes bool // the client retransmits: run knockd -D and check it saw the duplicates
	}{
		{"iptables/debian-knock", iptablesGuard, v4, "door2222", []string{"knock"}, debianKnock(nil, tcp...), false},
		{"iptables/debian-knock-udp", iptablesGuard, v4, "door2222-udp", []string{"knock"}, debianKnock(nil, "7000:udp", "8000", "9000:udp"), false},
		{"iptables/doorward-knock", iptablesGuard, v4, "door2222", nil, ourKnock(nil, tcp...), false},
		{"iptables/sendip", iptablesGuard, v4, "door2222", []string{"sendip"}, sendipKnock(7000, 8000, 9000), false},
		{"iptables/telnet", iptablesGuard, v4, "door2222", []string{"telnet", "timeout"}, telnetKnock, true},
		{"iptables/nc", iptablesGuard, v4, "door2222", nil, ncKnock, false},
		{"iptables/debian-knock-ipv6", iptablesGuard, v6, "door2222", []string{"knock"}, debianKnock([]string{"-6"}, tcp...), false},
		{"nftables/doorward-knock", nftablesGuard, v4, "door2222", nil, ourKnock(nil, tcp...), false},
		{"nftables/debian-knock", nftablesGuard, v4, "door2222", []string{"knock"}, debianKnock(nil, tcp...), false},
		{"nftables/doorward-knock-ipv6", nftablesGuard, v6, "door2222", nil, ourKnock([]string{"-6"}, tcp...), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			netns.Require(t, append([]string{"ip", "nc"}, tc.tools...)...)
			p := netns.NewPair(t)
			var extra []string
			if tc.dupes {
				extra = []string{"-D"}
			}
			k := tc.guard.setup(t, p, extra...)
			dst, src := p.ServerAddr, p.ClientAddr
			if tc.v6 {
				dst, src = p.ServerAddr6, p.ClientAddr6
			}
			wait := cmdTimeout(t, tc.guard.conf)
			start, stop := commands(t, tc.guard.conf, tc.door, src)

			if p.Reachable(t, dst, servicePort) {
				t.Fatalf("service %s reachable from the client before the knock", dst)
			}
			tc.guard.waitAllowed(t, p, tc.v6, nil, 0)

			sesame := src.String() + ": " + tc.door + ": OPEN SESAME"
			openedCh := k.seen(sesame)
			tc.knock(t, p, dst)
			k.waitLog(sesame, 5*time.Second)
			opened := <-openedCh
			k.waitLog(tc.door+": running command: "+start, 2*time.Second)
			tc.guard.waitAllowed(t, p, tc.v6, []string{src.String()}, 2*time.Second)
			if err := p.WaitTCP(t, dst, servicePort, true, 2*time.Second); err != nil {
				t.Fatalf("after the knock: %v", err)
			}

			tc.guard.waitAllowed(t, p, tc.v6, nil, wait+3*time.Second)
			if early := time.Since(opened); early < wait-500*time.Millisecond {
				t.Errorf("door closed %v after OPEN SESAME, want Cmd_Timeout %v", early.Round(time.Millisecond), wait)
			}
			k.waitLog(src.String()+": "+tc.door+": command timeout", time.Second)
			k.waitLog(tc.door+": running command: "+stop, time.Second)
			if err := p.WaitTCP(t, dst, servicePort, false, 2*time.Second); err != nil {
				t.Fatalf("after the stop command: %v", err)
			}
			checkCommandsOK(t, k)
			if n := len(k.lines("OPEN SESAME")); n != 1 {
				t.Errorf("%d OPEN SESAME lines, want 1", n)
			}
			if tc.dupes {
				checkDuplicates(t, k, src, dst)
			}
		})
	}
}

// commands renders a door's start and stop commands for src, as knockd
// logs them.
func commands(t *testing.T, conf, door string, src netip.Addr) (start, stop string) {
	t.Helper()
	cfg, err := knockdconf.Load(example(conf))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range cfg.Doors {
		if d.Name == door {
			v6 := src.Is6()
			return strings.ReplaceAll(d.Start(v6), "%IP%", src.String()),
				strings.ReplaceAll(d.Stop(v6), "%IP%", src.String())
		}
	}
	t.Fatalf("%s has no door %q", conf, door)
	return "", ""
}

// checkCommandsOK fails t if knockd reported a failing command.
func checkCommandsOK(t *testing.T, k *knockd) {
	t.Helper()
	for _, bad := range []string{"non-zero status", "command failed"} {
		if l := k.lines(bad); len(l) > 0 {
			t.Errorf("knockd reported failing commands:\n%s", strings.Join(l, "\n"))
		}
	}
}

// TestWrongOrder knocks the right ports in the wrong order: nothing opens.
// A correct knock afterwards opens the door, which proves the daemon saw
// the wrong one (and that it did not leave a stale attempt behind).
func TestWrongOrder(t *testing.T) {
	t.Parallel()
	netns.Require(t, "ip", "nc", "iptables")
	p := netns.NewPair(t)
	k := iptablesGuard.setup(t, p)
	dst, src := p.ServerAddr, p.ClientAddr.String()

	ourKnock(nil, "7000", "9000", "8000")(t, p, dst)
	k.waitLog(src+": door2222: Stage 1", 5*time.Second)
	time.Sleep(500 * time.Millisecond) // let 9000 and 8000 arrive
	if l := k.lines("OPEN SESAME"); len(l) > 0 {
		t.Fatalf("7000,9000,8000 opened a door: %q", l)
	}
	iptablesGuard.waitAllowed(t, p, false, nil, 0)
	if p.Reachable(t, dst, servicePort) {
		t.Fatal("service reachable after a wrong knock")
	}
	if l := k.lines("running command"); len(l) > 0 {
		t.Fatalf("a wrong knock ran commands: %q", l)
	}

	ourKnock(nil, "7000", "8000", "9000")(t, p, dst)
	k.waitLog(src+": door2222: OPEN SESAME", 5*time.Second)
	iptablesGuard.waitAllowed(t, p, false, []string{src}, 2*time.Second)
	if n := len(k.lines("OPEN SESAME")); n != 1 {
		t.Errorf("%d OPEN SESAME lines, want 1", n)
	}
}

// checkDuplicates fails t unless knockd -D logged some knock port twice
// from src, i.e. the retransmission the test meant to send reached it.
func checkDuplicates(t *testing.T, k *knockd, src, dst netip.Addr) {
	t.Helper()
	re := regexp.MustCompile(`tcp: ` + regexp.QuoteMeta(src.String()) + `:\d+ -> ` + regexp.QuoteMeta(dst.String()) + `:(\d+) `)
	count := map[string]int{}
	for _, l := range k.lines(" -> ") {
		if m := re.FindStringSubmatch(l); m != nil {
			count[m[1]]++
		}
	}
	for _, n := range count {
		if n > 1 {
			return
		}
	}
	t.Errorf("no retransmitted SYN seen (packets per port %v): the duplicate case was not exercised", count)
}
