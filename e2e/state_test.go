package e2e

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/doorward/doorward/e2e/netns"
)

// The tests in this file check the live daemon's state handling: the
// journal of open doors across a crash, SIGHUP reloads under a packet
// flood, and a capture interface that disappears or changes address.

// exampleText returns examples/name with every cmd_timeout set to secs.
func exampleText(t *testing.T, name string, secs int) string {
	t.Helper()
	b, err := os.ReadFile(example(name))
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`(?m)^(\s*cmd_timeout\s*=\s*)\d+[ \t]*$`)
	if !re.Match(b) {
		t.Fatalf("%s has no cmd_timeout line", name)
	}
	return re.ReplaceAllString(string(b), "${1}"+strconv.Itoa(secs))
}

// writeConf replaces the file at path with text atomically (temp file and
// rename), so a reload never reads a half-written config.
func writeConf(t *testing.T, path, text string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// confFile writes text to a new config file in t's temp dir.
func confFile(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "knockd.conf")
	writeConf(t, path, text)
	return path
}

// count is how many output lines contain sub.
func (k *knockd) count(sub string) int { return len(k.lines(sub)) }

// waitCount waits until at least n output lines contain sub.
func (k *knockd) waitCount(sub string, n int, d time.Duration) {
	k.t.Helper()
	deadline := time.Now().Add(d)
	for k.count(sub) < n {
		if st, exited := k.p.Wait(k.cmd, 0); exited {
			k.t.Fatalf("knockd exited (%v) before logging %q %d times", st, sub, n)
		}
		if time.Now().After(deadline) {
			k.t.Fatalf("knockd logged %q %d times within %v, want %d", sub, k.count(sub), d, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// running fails t if knockd has exited.
func (k *knockd) running() {
	k.t.Helper()
	if st, exited := k.p.Wait(k.cmd, 0); exited {
		k.t.Fatalf("knockd exited: %v", st)
	}
}

// terminate sends SIGTERM and fails t unless knockd exits 0 within 10 s.
func (k *knockd) terminate() {
	k.t.Helper()
	if err := k.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		k.t.Fatal(err)
	}
	st, ok := k.p.Wait(k.cmd, 10*time.Second)
	if !ok {
		k.t.Fatal("knockd still running 10 s after SIGTERM")
	}
	if st.ExitCode() != 0 {
		k.t.Errorf("knockd exit status %v after SIGTERM, want 0", st)
	}
}

// noPanic fails t if knockd's output shows a crash or a fatal error.
func noPanic(t *testing.T, k *knockd) {
	t.Helper()
	out := strings.ToLower(k.output())
	for _, bad := range []string{"panic", "fatal", "goroutine ", "sigsegv"} {
		if i := strings.Index(out, bad); i >= 0 {
			line := out[strings.LastIndexByte(out[:i], '\n')+1:]
			line, _, _ = strings.Cut(line, "\n")
			t.Errorf("knockd output has %q: %s", bad, line)
		}
	}
}

// nsProcs lists the pids in namespace ns whose command name is comm.
func nsProcs(t *testing.T, ns, comm string) []int {
	t.Helper()
	out, err := exec.Command("ip", "netns", "pids", ns).CombinedOutput()
	if err != nil {
		t.Fatalf("ip netns pids %s: %v\n%s", ns, err, out)
	}
	var pids []int
	for _, f := range strings.Fields(string(out)) {
		pid, err := strconv.Atoi(f)
		if err != nil {
			continue
		}
		if c, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); err == nil && strings.TrimSpace(string(c)) == comm {
			pids = append(pids, pid)
		}
	}
	return pids
}

// lineIndex is the index of the first output line containing sub, or -1.
func lineIndex(out []string, sub string) int {
	return slices.IndexFunc(out, func(l string) bool { return strings.Contains(l, sub) })
}

// TestCrashRecovery kills knockd with SIGKILL while a door is open: the
// firewall rule is stranded (no stop command can run). A knockd started
// again on the same --state-dir must run the stranded door's stop command
// from its journal before it starts listening, and then work as usual.
func TestCrashRecovery(t *testing.T) {
	t.Parallel()
	netns.Require(t, "ip", "nc", "iptables")
	p := netns.NewPair(t)
	p.Firewall(t, netns.IPTables)
	service(t, p, servicePort)
	// Cmd_Timeout far beyond the test: only recovery can close the door.
	conf := confFile(t, exampleText(t, "knockd-iptables.conf", 60))
	state := filepath.Join(t.TempDir(), "state")
	dst, src := p.ServerAddr, p.ClientAddr
	_, stop := commands(t, "knockd-iptables.conf", "door2222", src)
	sesame := src.String() + ": door2222: OPEN SESAME"

	k := startKnockd(t, p, conf, "--state-dir", state)
	ourKnock(nil, "7000", "8000", "9000")(t, p, dst)
	k.waitLog(sesame, 5*time.Second)
	iptablesGuard.waitAllowed(t, p, false, []string{src.String()}, 2*time.Second)
	if err := p.WaitTCP(t, dst, servicePort, true, 2*time.Second); err != nil {
		t.Fatalf("after the knock: %v", err)
	}

	// p.Start runs `ip netns exec NS knockd …`, which execs knockd: the
	// pid is knockd's own. Check rather than assume, so the SIGKILL cannot
	// hit only a wrapper and leave knockd to close the door cleanly.
	pid := k.cmd.Process.Pid
	if c, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); err != nil || strings.TrimSpace(string(c)) != "knockd" {
		t.Fatalf("pid %d is %q (%v), not knockd", pid, c, err)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	st, ok := p.Wait(k.cmd, 5*time.Second)
	if !ok {
		t.Fatal("knockd still running 5 s after SIGKILL")
	}
	if ws, _ := st.Sys().(syscall.WaitStatus); !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("knockd ended with %v, want killed by SIGKILL", st)
	}
	if left := nsProcs(t, p.Server, "knockd"); len(left) > 0 {
		t.Fatalf("knockd processes still in the server namespace: %v", left)
	}
	if l := k.lines("running command: " + stop); len(l) > 0 {
		t.Fatalf("the killed knockd ran the stop command: %q", l)
	}
	// The crash stranded the door.
	iptablesGuard.waitAllowed(t, p, false, []string{src.String()}, 0)
	if !p.Reachable(t, dst, servicePort) {
		t.Fatal("service unreachable right after the SIGKILL: the door was not stranded, nothing to recover")
	}

	// startKnockd returns as soon as "starting up" is logged.
	k2 := startKnockd(t, p, conf, "--state-dir", state)
	if got := iptablesGuard.allowed(t, p, false); len(got) != 0 {
		t.Errorf("when the restarted knockd logged \"starting up\", allowed sources %q, want none", got)
	}
	out := strings.Split(k2.output(), "\n")
	closing := lineIndex(out, src.String()+": door2222: closing door left open by a previous run")
	ran := lineIndex(out, "door2222: running command: "+stop)
	up := lineIndex(out, "starting up, listening on "+p.ServerIf)
	switch {
	case closing < 0:
		t.Errorf("restarted knockd did not log closing the door left open")
	case ran < 0:
		t.Errorf("restarted knockd did not run the stop command %q", stop)
	case !(closing < ran && ran < up):
		t.Errorf("lines out of order: closing at %d, stop command at %d, starting up at %d (want closing < stop < starting up)", closing, ran, up)
	}
	if err := p.WaitTCP(t, dst, servicePort, false, 2*time.Second); err != nil {
		t.Fatalf("after recovery: %v", err)
	}
	checkCommandsOK(t, k2)

	// The recovered daemon opens doors as usual.
	ourKnock(nil, "7000", "8000", "9000")(t, p, dst)
	k2.waitLog(sesame, 5*time.Second)
	iptablesGuard.waitAllowed(t, p, false, []string{src.String()}, 2*time.Second)
	if err := p.WaitTCP(t, dst, servicePort, true, 2*time.Second); err != nil {
		t.Fatalf("after the knock following recovery: %v", err)
	}
	k2.terminate()
	if got := iptablesGuard.allowed(t, p, false); len(got) != 0 {
		t.Errorf("after SIGTERM, allowed sources %q, want none", got)
	}

	// A clean shutdown leaves nothing in the journal to recover.
	k3 := startKnockd(t, p, conf, "--state-dir", state)
	if l := k3.lines("left open by a previous run"); len(l) > 0 {
		t.Errorf("after a clean shutdown, the next start recovered doors again: %q", l)
	}
	k3.terminate()
	noPanic(t, k2)
}

// door2223 guards a second service port, knocked with a UDP-TCP-UDP
// sequence.
const door2223 = `
[door2223]
	sequence      = 7100:udp,8100,9100:udp
	seq_timeout   = 10
	tcpflags      = syn
	start_command = iptables -I INPUT -s %IP% -p tcp --dport 2223 -j ACCEPT
	cmd_timeout   = 60
	stop_command  = iptables -D INPUT -s %IP% -p tcp --dport 2223 -j ACCEPT
`

// door2224 guards a third port. The reload tests add it with a SIGHUP, so a
// knock on it shows that the reload took effect.
const door2224 = `
[door2224]
	sequence      = 7200,8200,9200
	seq_timeout   = 10
	tcpflags      = syn
	start_command = iptables -I INPUT -s %IP% -p tcp --dport 2224 -j ACCEPT
	cmd_timeout   = 60
	stop_command  = iptables -D INPUT -s %IP% -p tcp --dport 2224 -j ACCEPT
`

// toggleDoor is harmless: its command does nothing.
const toggleDoor = `
[toggle]
	sequence      = 6001,6002,6003
	start_command = true
`

// flood runs hping3 in the client namespace for secs seconds (SIGINT, so it
// prints its statistics) and returns the packets it says it sent.
func flood(t *testing.T, p *netns.Pair, secs int, args ...string) (sent int, out string) {
	t.Helper()
	argv := append([]string{"timeout", "-s", "INT", "-k", "2", strconv.Itoa(secs), "hping3", "--flood", "-q"}, args...)
	b, _ := p.Exec(t, p.Client, argv...) // exits non-zero when timeout stops it
	out = string(b)
	if m := regexp.MustCompile(`(\d+) packets transmitted`).FindStringSubmatch(out); m != nil {
		sent, _ = strconv.Atoi(m[1])
	}
	return sent, out
}

// TestReloadUnderTraffic floods the knock ports (spoofed sources, TCP and
// UDP) while SIGHUP reloads alternate between valid and invalid configs.
// knockd must survive, keep the running config on a bad file, keep the
// door it opened before, open another door for a fresh knock, adopt a
// valid config afterwards, and close everything on SIGTERM.
//
// Not parallel: the flood takes both cores for its few seconds, which
// would make the timing of other tests meaningless; sequential tests run
// before the parallel ones start.
func TestReloadUnderTraffic(t *testing.T) {
	netns.Require(t, "ip", "nc", "iptables", "hping3", "timeout")
	p := netns.NewPair(t)
	p.Firewall(t, netns.IPTables)
	service(t, p, servicePort)
	service(t, p, 2223)
	service(t, p, 2224)
	dst, src := p.ServerAddr, p.ClientAddr

	// door2222 (TCP) and door2222-udp (UDP), both starting on port 7000,
	// and door2223.
	base := exampleText(t, "knockd-iptables.conf", 60) + door2223
	valid := base + toggleDoor
	invalidLine := strings.Count(base, "\n") + 2
	invalid := base + "\n" + "this line is not valid\n"
	final := base + door2224
	conf := confFile(t, base)
	k := startKnockd(t, p, conf)

	ourKnock(nil, "7000", "8000", "9000")(t, p, dst)
	k.waitLog(src.String()+": door2222: OPEN SESAME", 5*time.Second)
	iptablesGuard.waitAllowed(t, p, false, []string{src.String()}, 2*time.Second)

	const floodSecs = 5
	rx0 := p.RxPackets(t, p.Server, p.ServerIf)
	start := time.Now()
	var wg sync.WaitGroup
	var tcpSent, udpSent int
	var tcpOut, udpOut string
	wg.Go(func() {
		tcpSent, tcpOut = flood(t, p, floodSecs, "-S", "-p", "7000", "--rand-source", "-I", p.ClientIf, dst.String())
	})
	wg.Go(func() {
		udpSent, udpOut = flood(t, p, floodSecs, "--udp", "-p", "7000", "--rand-source", "-I", p.ClientIf, dst.String())
	})
	hups := 0
	for i := 0; time.Since(start) < floodSecs*time.Second; i++ {
		if i%2 == 0 {
			writeConf(t, conf, []string{valid, base}[(i/2)%2])
		} else {
			writeConf(t, conf, invalid)
		}
		if err := k.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatalf("SIGHUP: %v", err)
		}
		hups++
		time.Sleep(100 * time.Millisecond)
	}
	wg.Wait()
	elapsed := time.Since(start)
	rx := p.RxPackets(t, p.Server, p.ServerIf) - rx0
	rate := float64(rx) / elapsed.Seconds()
	t.Logf("flood: server veth received %d packets in %v (%.0f packets/s); hping3 sent tcp=%d udp=%d",
		rx, elapsed.Round(time.Millisecond), rate, tcpSent, udpSent)
	if !strings.Contains(tcpOut, "flood mode") || !strings.Contains(udpOut, "flood mode") {
		t.Fatalf("hping3 did not flood:\n%s\n%s", tcpOut, udpOut)
	}
	if rate < 1000 {
		t.Errorf("flood reached only %.0f packets/s: the test did not load knockd", rate)
	}
	k.running()

	// Every reload that started and failed says why, with file:line, and
	// the only failures are the invalid file's.
	k.waitCount("config reload failed, keeping the running config", 1, 2*time.Second)
	started := k.count("re-reading config file: " + conf)
	failed := k.count("config reload failed, keeping the running config")
	want := fmt.Sprintf("config: %s:%d: syntax error", conf, invalidLine)
	located := k.count(want)
	t.Logf("SIGHUPs sent %d, reloads started %d, failed %d; knockd logged %d lines (%d KiB), %d \"Stage 1\", %d \"too many sources\"",
		hups, started, failed, len(k.lines("")), len(k.output())>>10, k.count(": Stage 1"), k.count("too many sources"))
	if located != failed {
		t.Errorf("%d failed reloads but %d %q lines", failed, located, want)
	}
	for _, l := range k.lines("config: ") {
		if !strings.Contains(l, want) && !strings.HasPrefix(l, "config: warning: ") {
			t.Errorf("unexpected config error (a valid file rejected?): %s", l)
		}
	}
	if started-failed < 1 {
		t.Errorf("no valid reload ran (started %d, failed %d)", started, failed)
	}
	if l := k.lines("event queue full"); len(l) > 0 {
		t.Errorf("the flood completed no sequence, yet events were dropped: %q", l)
	}

	// The door opened before the flood is still open.
	iptablesGuard.waitAllowed(t, p, false, []string{src.String()}, 0)
	if err := p.WaitTCP(t, dst, servicePort, true, 2*time.Second); err != nil {
		t.Fatalf("door opened before the flood: %v", err)
	}

	// A fresh knock opens another door.
	ourKnock(nil, "7100:udp", "8100", "9100:udp")(t, p, dst)
	k.waitLog(src.String()+": door2223: OPEN SESAME", 5*time.Second)
	if err := p.WaitTCP(t, dst, 2223, true, 2*time.Second); err != nil {
		t.Fatalf("door2223 after the flood: %v", err)
	}
	iptablesGuard.waitAllowed(t, p, false, []string{src.String()}, 0) // 2222 unchanged

	// A valid config after the storm is adopted: door2224 is new in it.
	// The failed reload above has finished; let its result reach the loop
	// so this SIGHUP is not ignored as part of a reload still running.
	time.Sleep(200 * time.Millisecond)
	writeConf(t, conf, final)
	if err := k.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	k.waitCount("re-reading config file: "+conf, started+1, 5*time.Second)
	time.Sleep(500 * time.Millisecond)
	if n := k.count("config reload failed"); n != failed {
		t.Fatalf("the final, valid config was rejected:\n%s", strings.Join(k.lines("config: "), "\n"))
	}
	checkNewDoor(t, p, k)

	k.terminate()
	for _, port := range []int{servicePort, 2223, 2224} {
		if got := p.IPTablesSources(t, false, port); len(got) != 0 {
			t.Errorf("after SIGTERM, port %d allowed for %q, want none", port, got)
		}
	}
	checkCommandsOK(t, k)
	noPanic(t, k)
}

// checkNewDoor knocks door2224, which a reload added, and expects it to
// open. It reports an error, not a fatal one, so the caller goes on.
func checkNewDoor(t *testing.T, p *netns.Pair, k *knockd) {
	t.Helper()
	dst, src := p.ServerAddr, p.ClientAddr
	ourKnock(nil, "7200", "8200", "9200")(t, p, dst)
	deadline := time.Now().Add(3 * time.Second)
	for k.count(src.String()+": door2224: OPEN SESAME") == 0 {
		if time.Now().After(deadline) {
			seen := k.count(src.String() + ": door2224: Stage")
			t.Errorf("door2224, added by a SIGHUP reload, did not open on a correct knock (%d \"door2224: Stage\" lines): "+
				"knockd took the new config but its capture filter still selects only the ports of the old one", seen)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := p.WaitTCP(t, dst, 2224, true, 2*time.Second); err != nil {
		t.Errorf("door2224: %v", err)
	}
}

// TestReloadNewDoor adds a door with a SIGHUP: a knock on it must open it.
func TestReloadNewDoor(t *testing.T) {
	t.Parallel()
	netns.Require(t, "ip", "nc", "iptables")
	p := netns.NewPair(t)
	p.Firewall(t, netns.IPTables)
	service(t, p, 2224)
	base := exampleText(t, "knockd-iptables.conf", 60)
	conf := confFile(t, base)
	k := startKnockd(t, p, conf)
	writeConf(t, conf, base+door2224)
	if err := k.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	k.waitLog("re-reading config file: "+conf, 2*time.Second)
	time.Sleep(500 * time.Millisecond)
	if l := k.lines("config reload failed"); len(l) > 0 {
		t.Fatalf("valid config rejected:\n%s", strings.Join(k.lines("config: "), "\n"))
	}
	checkNewDoor(t, p, k)
	// The doors of the start-up config still open.
	ourKnock(nil, "7000", "8000", "9000")(t, p, p.ServerAddr)
	k.waitLog(p.ClientAddr.String()+": door2222: OPEN SESAME", 5*time.Second)
	k.terminate()
	checkCommandsOK(t, k)
}

// TestInterfaceLoss deletes the capture interface under knockd and brings
// it back, then moves the server's address: knockd must keep running,
// reopen the capture and refilter for the new address, and doors must open
// and close as before.
func TestInterfaceLoss(t *testing.T) {
	t.Parallel()
	netns.Require(t, "ip", "nc", "iptables")
	p := netns.NewPair(t)
	p.Firewall(t, netns.IPTables)
	service(t, p, servicePort)
	const secs = 2
	conf := confFile(t, exampleText(t, "knockd-iptables.conf", secs))
	k := startKnockd(t, p, conf)
	src := p.ClientAddr
	sesame := src.String() + ": door2222: OPEN SESAME"

	// cycle knocks at dst and sees the door open and close by itself.
	opened := 0
	cycle := func(dst netip.Addr, when string) {
		t.Helper()
		opened++
		ourKnock(nil, "7000", "8000", "9000")(t, p, dst)
		k.waitCount(sesame, opened, 5*time.Second)
		iptablesGuard.waitAllowed(t, p, false, []string{src.String()}, 2*time.Second)
		if err := p.WaitTCP(t, dst, servicePort, true, 2*time.Second); err != nil {
			t.Fatalf("%s, after the knock: %v", when, err)
		}
		iptablesGuard.waitAllowed(t, p, false, nil, secs*time.Second+3*time.Second)
		if err := p.WaitTCP(t, dst, servicePort, false, 2*time.Second); err != nil {
			t.Fatalf("%s, after Cmd_Timeout: %v", when, err)
		}
	}
	cycle(p.ServerAddr, "before the interface was deleted")

	// Deleting the server end deletes the pair.
	p.MustExec(t, p.Server, "ip", "link", "del", p.ServerIf)
	k.waitLog("capture "+p.ServerIf+": ", 5*time.Second)
	k.waitLog("will reopen", 5*time.Second)
	time.Sleep(1500 * time.Millisecond) // a few failed reopen attempts
	k.running()

	p.Relink(t)
	k.waitLog("capture "+p.ServerIf+": listening again", 10*time.Second)
	cycle(p.ServerAddr, "after the interface came back")

	// A new address on the same interface: the periodic refresh (5 s)
	// must put it in the filter.
	changed := "capture " + p.ServerIf + ": addresses changed, filter updated"
	before := k.count(changed)
	b := p.ServerAddr.As4()
	b[3] = 11
	moved := netip.AddrFrom4(b)
	// One `ip -batch`, so a refresh can hardly fall between the two steps.
	// (Not add-then-delete: deleting the primary address of the /24 takes
	// its secondaries with it.)
	batch := filepath.Join(t.TempDir(), "move.ip")
	cmds := fmt.Sprintf("addr del %s/24 dev %s\naddr add %s/24 dev %s\n", p.ServerAddr, p.ServerIf, moved, p.ServerIf)
	if err := os.WriteFile(batch, []byte(cmds), 0o644); err != nil {
		t.Fatal(err)
	}
	p.MustExec(t, p.Server, "ip", "-batch", batch)
	k.waitCount(changed, before+1, 10*time.Second)
	cycle(moved, "after the address changed to "+moved.String())

	k.running()
	t.Logf("knockd's capture lines:\n%s", strings.Join(k.lines("capture "), "\n"))
	checkCommandsOK(t, k)
	noPanic(t, k)
}
