package e2e

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/doorward/doorward/e2e/netns"
)

// nftSetup loads examples/nftables-sets.nft as the server's whole ruleset
// (default-deny input whose own chain accepts the sets' elements), starts
// the services and knockd with examples/knockd-nftset.conf unchanged but
// for cmd_timeout, and returns it with its config file.
func nftSetup(t *testing.T, p *netns.Pair, timeout int, ports ...int) (k *knockd, conf string) {
	t.Helper()
	ruleset, err := os.ReadFile(example("nftables-sets.nft"))
	if err != nil {
		t.Fatal(err)
	}
	p.LoadNFT(t, string(ruleset))
	for _, port := range ports {
		service(t, p, port)
	}
	conf = confFile(t, exampleText(t, "knockd-nftset.conf", timeout))
	return startKnockd(t, p, conf), conf
}

// waitElems waits until set of table inet filter holds exactly want.
func waitElems(t *testing.T, p *netns.Pair, set string, want []string, d time.Duration) time.Time {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		got := p.NFTSetElements(t, "filter", set)
		if slices.Equal(got, want) {
			return time.Now()
		}
		if time.Now().After(deadline) {
			t.Fatalf("set %s: elements %q, want %q (waited %v)", set, got, want, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestNftSet: with Nft_Set a knock adds the knocker to the set and the
// service becomes reachable through the admin's own chain; a second knock
// restarts the element's timeout; after knockd is SIGKILLed the kernel
// still removes the element on time and the service closes; a restart
// finds the door in its journal and forgets it without error although the
// element is gone. IPv4 and IPv6, each about 7 s.
func TestNftSet(t *testing.T) {
	const timeout = 3 * time.Second
	for _, v6 := range []bool{false, true} {
		name, set, flags := "ipv4", "doorward4", []string(nil)
		if v6 {
			name, set, flags = "ipv6", "doorward6", []string{"-6"}
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			netns.Require(t, "ip", "nc", "nft")
			p := netns.NewPair(t)
			dst, src := p.ServerAddr, p.ClientAddr
			if v6 {
				dst, src = p.ServerAddr6, p.ClientAddr6
			}
			k, conf := nftSetup(t, p, int(timeout/time.Second), servicePort)
			if p.Reachable(t, dst, servicePort) {
				t.Fatal("service reachable before the knock")
			}

			ourKnock(flags, "7000", "8000", "9000")(t, p, dst)
			added := waitElems(t, p, set, []string{src.String()}, 2*time.Second)
			if err := p.WaitTCP(t, dst, servicePort, true, time.Second); err != nil {
				t.Fatalf("after the knock: %v", err)
			}

			// The extension, half way through: the element's timeout
			// restarts from here.
			time.Sleep(time.Until(added.Add(timeout / 2)))
			ourKnock(flags, "7000", "8000", "9000")(t, p, dst)
			k.waitLog("door2222: refreshing "+src.String()+" in nftables set inet filter "+set, 2*time.Second)
			refreshed := time.Now()

			// Past the first timeout: only the refresh keeps it.
			time.Sleep(time.Until(added.Add(timeout + 300*time.Millisecond)))
			if got := p.NFTSetElements(t, "filter", set); !slices.Equal(got, []string{src.String()}) {
				t.Fatalf("%v after the first add and %v after the extension: elements %q, want the knocker still there", time.Since(added).Round(time.Millisecond), time.Since(refreshed).Round(time.Millisecond), got)
			}

			// SIGKILL: no stop, no delete from the daemon.
			if err := syscall.Kill(k.cmd.Process.Pid, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			if _, ok := p.Wait(k.cmd, 5*time.Second); !ok {
				t.Fatal("knockd still running 5 s after SIGKILL")
			}
			if got := p.NFTSetElements(t, "filter", set); !slices.Equal(got, []string{src.String()}) {
				t.Fatalf("right after the SIGKILL: elements %q, want the knocker's", got)
			}
			gone := waitElems(t, p, set, nil, timeout+time.Second)
			// The kernel's timeout ran from the refresh (give or take the
			// 20 ms poll and the log poll's 50 ms).
			if after := gone.Sub(refreshed); after < timeout-500*time.Millisecond || after > timeout+time.Second {
				t.Errorf("element gone %v after the refresh, want about %v", after.Round(time.Millisecond), timeout)
			}
			t.Logf("element expired %v after the refresh, with knockd killed", gone.Sub(refreshed).Round(time.Millisecond))
			if err := p.WaitTCP(t, dst, servicePort, false, time.Second); err != nil {
				t.Fatalf("after the element expired: %v", err)
			}

			// The restarted daemon closes the journaled door: the element
			// is gone already, which is no error.
			k2 := startKnockd(t, p, conf, "--state-dir", k.stateDir())
			if l := k2.lines(src.String() + ": door2222: closing door left open by a previous run"); len(l) != 1 {
				t.Errorf("restart: %d lines closing the door left open, want 1", len(l))
			}
			if l := k2.lines("nftables failed"); len(l) > 0 {
				t.Errorf("restart: %q", l)
			}
			k2.terminate()
			noPanic(t, k2)
		})
	}
}

// stateDir is the --state-dir knockd was started with (the last one given).
func (k *knockd) stateDir() string {
	dir := ""
	for i, a := range k.cmd.Args {
		if a == "--state-dir" && i+1 < len(k.cmd.Args) {
			dir = k.cmd.Args[i+1]
		}
	}
	return dir
}

// TestNftSetPorts: a set of address . port holds (knocker, door's port),
// which the admin's rule matches as "ip saddr . tcp dport"; knockd deletes
// it when Cmd_Timeout has passed.
func TestNftSetPorts(t *testing.T) {
	t.Parallel()
	netns.Require(t, "ip", "nc", "nft")
	p := netns.NewPair(t)
	k, _ := nftSetup(t, p, 3, 2223)
	dst, src := p.ServerAddr, p.ClientAddr
	ourKnock(nil, "7100", "8100", "9100")(t, p, dst)
	want := fmt.Sprintf(`{"concat": ["%s", 2223]}`, src) // as nft -j prints it
	waitElems(t, p, "doorward_ports4", []string{want}, time.Second)
	if err := p.WaitTCP(t, dst, 2223, true, time.Second); err != nil {
		t.Fatalf("after the knock: %v", err)
	}
	k.waitLog("door2223: deleting "+src.String()+" from nftables set inet filter doorward_ports4 2223", 4*time.Second)
	waitElems(t, p, "doorward_ports4", nil, time.Second)
	if err := p.WaitTCP(t, dst, 2223, false, time.Second); err != nil {
		t.Fatalf("after the door closed: %v", err)
	}
	k.terminate()
	noPanic(t, k)
}

// TestNftSetRefused: knockd refuses to start when a door's set cannot
// work, naming the door's line: its table is missing (the daemon creates
// no table: one of its own would hold no chain that references the set),
// or the admin's set has no "flags timeout". A missing set in an existing
// table is created, with its timeout flag, and nothing else is touched.
func TestNftSetRefused(t *testing.T) {
	t.Parallel()
	netns.Require(t, "ip", "nft")
	p := netns.NewPair(t)
	conf := confFile(t, exampleText(t, "knockd-nftset.conf", 3))
	start := func() string {
		out, err := p.Exec(t, p.Server, "timeout", "10", knockdBin, "-i", p.ServerIf, "-c", conf, "--state-dir", t.TempDir())
		if err == nil {
			t.Fatalf("knockd started (and ended) without error:\n%s", out)
		}
		return string(out)
	}
	if out := start(); !strings.Contains(out, conf+":13: [door2222]: nftables set inet filter doorward4: table inet filter does not exist") {
		t.Errorf("no table: output\n%s", out)
	}

	// The admin's table with one set, declared without a timeout flag.
	p.LoadNFT(t, "table inet filter {\n\tset doorward6 { type ipv6_addr; }\n\tchain input { type filter hook input priority filter; policy accept; }\n}\n")
	out := start()
	if !strings.Contains(out, conf+`:13: [door2222]: nftables set inet filter doorward6: has no "flags timeout"`) {
		t.Errorf("set without timeouts: output\n%s", out)
	}
	// The missing sets were created with timeouts; the admin's set and
	// chain are as they were.
	listing := p.MustExec(t, p.Server, "nft", "list", "table", "inet", "filter")
	for _, want := range []string{
		"set doorward4 {\n\t\ttype ipv4_addr\n\t\tflags timeout\n\t}",
		"set doorward_ports4 {\n\t\ttype ipv4_addr . inet_service\n\t\tflags timeout\n\t}",
		"set doorward6 {\n\t\ttype ipv6_addr\n\t}",
		"type filter hook input priority filter; policy accept;",
	} {
		if !strings.Contains(listing, want) {
			t.Errorf("table inet filter lacks %q:\n%s", want, listing)
		}
	}
}

// TestNftSetReload: a SIGHUP that brings the first Nft_Set doors opens the
// netlink socket then; one whose set cannot work (no such table) is
// refused with the door's line and the running config kept.
func TestNftSetReload(t *testing.T) {
	t.Parallel()
	netns.Require(t, "ip", "nc", "nft")
	p := netns.NewPair(t)
	ruleset, err := os.ReadFile(example("nftables-sets.nft"))
	if err != nil {
		t.Fatal(err)
	}
	p.LoadNFT(t, string(ruleset))
	service(t, p, servicePort)
	conf := confFile(t, "[other]\n\tsequence = 1234\n")
	k := startKnockd(t, p, conf)
	reload := func(text string, n int) {
		t.Helper()
		writeConf(t, conf, text)
		if err := k.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		k.waitCount("re-reading config file: "+conf, n, 2*time.Second)
	}
	good := exampleText(t, "knockd-nftset.conf", 3)
	reload(strings.Replace(good, "inet filter doorward4", "inet nosuch doorward4", 1), 1)
	k.waitLog("config reload failed, keeping the running config", 2*time.Second)
	if l := k.lines(conf + ":13: [door2222]: nftables set inet nosuch doorward4: table inet nosuch does not exist"); len(l) != 1 {
		t.Errorf("the refused reload did not name the door's line:\n%s", strings.Join(k.lines("config: "), "\n"))
	}
	reload(good, 2)
	time.Sleep(300 * time.Millisecond)
	if n := k.count("config reload failed"); n != 1 {
		t.Fatalf("the valid config was refused:\n%s", strings.Join(k.lines("config: "), "\n"))
	}
	ourKnock(nil, "7000", "8000", "9000")(t, p, p.ServerAddr)
	waitElems(t, p, "doorward4", []string{p.ClientAddr.String()}, 2*time.Second)
	if err := p.WaitTCP(t, p.ServerAddr, servicePort, true, time.Second); err != nil {
		t.Fatalf("after the knock: %v", err)
	}
	k.terminate()
	if got := p.NFTSetElements(t, "filter", "doorward4"); len(got) != 0 {
		t.Errorf("after SIGTERM: elements %q, want none (the door is closed at shutdown)", got)
	}
	noPanic(t, k)
}

// TestNftSetRecovery: after a SIGKILL with the element still in the set
// (Cmd_Timeout far beyond the test), the next start deletes it from its
// journal before it listens for knocks.
func TestNftSetRecovery(t *testing.T) {
	t.Parallel()
	netns.Require(t, "ip", "nc", "nft")
	p := netns.NewPair(t)
	k, conf := nftSetup(t, p, 60, servicePort)
	dst, src := p.ServerAddr6, p.ClientAddr6
	ourKnock([]string{"-6"}, "7000", "8000", "9000")(t, p, dst)
	waitElems(t, p, "doorward6", []string{src.String()}, 2*time.Second)
	if err := syscall.Kill(k.cmd.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if _, ok := p.Wait(k.cmd, 5*time.Second); !ok {
		t.Fatal("knockd still running 5 s after SIGKILL")
	}
	if err := p.WaitTCP(t, dst, servicePort, true, time.Second); err != nil {
		t.Fatalf("after the SIGKILL the door should still be open (nothing to recover otherwise): %v", err)
	}
	k2 := startKnockd(t, p, conf, "--state-dir", k.stateDir())
	// startKnockd returned at "starting up": recovery came before it.
	if got := p.NFTSetElements(t, "filter", "doorward6"); len(got) != 0 {
		t.Errorf("when the restarted knockd started up: elements %q, want none", got)
	}
	if l := k2.lines("door2222: deleting " + src.String() + " from nftables set inet filter doorward6"); len(l) != 1 {
		t.Errorf("restart: %d delete lines, want 1", len(l))
	}
	if err := p.WaitTCP(t, dst, servicePort, false, time.Second); err != nil {
		t.Fatalf("after recovery: %v", err)
	}
	k2.terminate()
	noPanic(t, k2)
}
