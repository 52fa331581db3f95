// Package e2e runs Doorward's knockd and knock binaries against real
// firewalls (iptables, nftables) and real knock clients (Debian's knock,
// sendip, telnet, nc, our own knock), each test inside a fresh pair of
// network namespaces (see e2e/netns). Nothing outside those namespaces is
// touched. Without root or a tool a test skips; with CI=true it fails.
package e2e

import (
	"bufio"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	knockdconf "github.com/doorward/doorward/config/knockd"
	"github.com/doorward/doorward/e2e/netns"
)

// Binaries built once in TestMain.
var (
	knockdBin string
	knockBin  string
	repoRoot  string
)

// defaultParallel is how many namespace tests run at once when -parallel is
// not given. They mostly wait (for Cmd_Timeout, for nc's one-second probe),
// so more than GOMAXPROCS (2 on CI) keeps the suite short without loading
// the cores.
const defaultParallel = 6

func TestMain(m *testing.M) {
	flag.Parse()
	given := false
	flag.Visit(func(f *flag.Flag) { given = given || f.Name == "test.parallel" })
	if !given {
		flag.Set("test.parallel", strconv.Itoa(max(defaultParallel, runtime.GOMAXPROCS(0))))
	}
	os.Exit(run(m))
}

func run(m *testing.M) int {
	wd, err := os.Getwd()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	repoRoot = filepath.Dir(wd)
	dir, err := os.MkdirTemp("", "doorward-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if os.Geteuid() != 0 && os.Getenv("CI") != "true" {
		// Every test skips without root (netns.Require): do not build.
		return m.Run()
	}
	// -buildvcs=false: a checkout owned by another user than root makes git
	// refuse ("dubious ownership"), and the tests need no VCS stamp.
	build := exec.Command("go", "build", "-buildvcs=false", "-o", dir+"/", "./cmd/knockd", "./cmd/knock")
	build.Dir = repoRoot
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: building the binaries failed: %v\n%s", err, out)
		return 1
	}
	knockdBin, knockBin = filepath.Join(dir, "knockd"), filepath.Join(dir, "knock")
	if os.Geteuid() == 0 {
		netns.Sweep()
	}
	return m.Run()
}

// example is the path of a file in examples/.
func example(name string) string { return filepath.Join(repoRoot, "examples", name) }

// knockd is one running daemon and its captured output.
type knockd struct {
	t    *testing.T
	p    *netns.Pair
	cmd  *exec.Cmd
	path string // stdout+stderr
}

// startKnockd runs our knockd -v in the server namespace on the veth with
// conf, waits for its start-up line, and prints its output if t fails.
func startKnockd(t *testing.T, p *netns.Pair, conf string, extra ...string) *knockd {
	t.Helper()
	return startKnockdIn(t, p, nil, conf, extra...)
}

// startKnockdIn is startKnockd with knockd run by wrap (a command that
// execs its arguments, such as setpriv), so its pid is still knockd's.
func startKnockdIn(t *testing.T, p *netns.Pair, wrap []string, conf string, extra ...string) *knockd {
	t.Helper()
	path := filepath.Join(t.TempDir(), "knockd.out")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	k := &knockd{t: t, p: p, path: path}
	// Registered before Start: runs after the process is killed.
	t.Cleanup(func() {
		f.Close()
		if t.Failed() {
			t.Logf("knockd output (%s):\n%s", path, k.summary())
		}
	})
	// Each daemon has its own journal: never the host's /var/lib/doorward.
	args := append(append(slices.Clone(wrap), knockdBin, "-i", p.ServerIf, "-c", conf, "-v", "--state-dir", filepath.Join(t.TempDir(), "state")), extra...)
	k.cmd = p.Start(t, p.Server, f, args...)
	k.waitLog("starting up, listening on "+p.ServerIf, 10*time.Second)
	return k
}

// summary is the output for a failure report. Past a few thousand lines
// (a flood test) the per-packet lines are left out and counted instead.
func (k *knockd) summary() string {
	out := k.output()
	lines := strings.SplitAfter(out, "\n")
	if len(lines) <= 2000 {
		return out
	}
	var b strings.Builder
	elided := 0
	for _, l := range lines {
		if strings.Contains(l, ": Stage ") || strings.Contains(l, ": sequence timeout (stage ") || strings.Contains(l, "too many sources knocking") {
			elided++
			continue
		}
		b.WriteString(l)
	}
	fmt.Fprintf(&b, "[%d per-packet lines (Stage, sequence timeout, too many sources) left out]\n", elided)
	return b.String()
}

func (k *knockd) output() string {
	b, _ := os.ReadFile(k.path)
	return string(b)
}

// waitLog waits until the output contains want and fails the test if it
// does not within d, or if knockd exits first.
func (k *knockd) waitLog(want string, d time.Duration) {
	k.t.Helper()
	deadline := time.Now().Add(d)
	for !strings.Contains(k.output(), want) {
		if st, exited := k.p.Wait(k.cmd, 0); exited {
			k.t.Fatalf("knockd exited (%v) before logging %q", st, want)
		}
		if time.Now().After(deadline) {
			k.t.Fatalf("knockd did not log %q within %v", want, d)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// seen returns a channel that receives the time the output first contains
// want, polling in the background until t ends. A knock that takes seconds
// (telnet, nc) opens the door before the knock function returns.
func (k *knockd) seen(want string) <-chan time.Time {
	ch := make(chan time.Time, 1)
	stop := make(chan struct{})
	k.t.Cleanup(func() { close(stop) })
	go func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			if strings.Contains(k.output(), want) {
				ch <- time.Now()
				return
			}
			select {
			case <-tick.C:
			case <-stop:
				return
			}
		}
	}()
	return ch
}

// lines returns the output lines that contain sub.
func (k *knockd) lines(sub string) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(k.output()))
	for sc.Scan() {
		if strings.Contains(sc.Text(), sub) {
			out = append(out, sc.Text())
		}
	}
	return out
}

// service starts a TCP listener on port in the server namespace (nc -lk,
// one socket per family) and waits until it accepts from inside.
func service(t *testing.T, p *netns.Pair, port int) {
	t.Helper()
	ps := strconv.Itoa(port)
	p.Start(t, p.Server, nil, "nc", "-4", "-lk", ps)
	p.Start(t, p.Server, nil, "nc", "-6", "-lk", ps)
	for _, a := range []netip.Addr{p.ServerAddr, p.ServerAddr6} {
		deadline := time.Now().Add(5 * time.Second)
		for {
			// From the server itself: loopback traffic is always accepted.
			if _, err := p.Exec(t, p.Server, "nc", "-z", "-w1", a.String(), ps); err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("service on %s port %d did not come up", a, port)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// guard is how a test reads the firewall state a door controls.
type guard struct {
	flavour netns.Flavour
	conf    string // example config
}

var (
	iptablesGuard = guard{netns.IPTables, "knockd-iptables.conf"}
	nftablesGuard = guard{netns.NFTables, "knockd-nftables.conf"}
)

// setup creates the server side: firewall, service on 2222 and knockd.
// extra are more knockd flags.
func (g guard) setup(t *testing.T, p *netns.Pair, extra ...string) *knockd {
	t.Helper()
	switch g.flavour {
	case netns.IPTables:
		p.Firewall(t, netns.IPTables)
	case netns.NFTables:
		// The e2e table accepts 2222; the example's table guards it.
		p.Firewall(t, netns.NFTables, servicePort)
		ruleset, err := os.ReadFile(example("nftables-doorward.nft"))
		if err != nil {
			t.Fatal(err)
		}
		p.LoadNFT(t, string(ruleset))
	}
	service(t, p, servicePort)
	return startKnockd(t, p, example(g.conf), extra...)
}

// allowed lists the addresses the guard lets through to the service.
func (g guard) allowed(t *testing.T, p *netns.Pair, v6 bool) []string {
	t.Helper()
	if g.flavour == netns.IPTables {
		return p.IPTablesSources(t, v6, servicePort)
	}
	set := "knocked_v4"
	if v6 {
		set = "knocked_v6"
	}
	return p.NFTSetElements(t, "doorward", set)
}

// waitAllowed polls allowed until it equals want (sorted) or d passes.
func (g guard) waitAllowed(t *testing.T, p *netns.Pair, v6 bool, want []string, d time.Duration) {
	t.Helper()
	slices.Sort(want)
	deadline := time.Now().Add(d)
	for {
		got := g.allowed(t, p, v6)
		slices.Sort(got)
		if slices.Equal(got, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: allowed sources %q, want %q (waited %v)", g.flavour, got, want, d)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// servicePort is what the example configs guard.
const servicePort = 2222

// cmdTimeout is the longest Cmd_Timeout of an example config.
func cmdTimeout(t *testing.T, conf string) time.Duration {
	t.Helper()
	cfg, err := knockdconf.Load(example(conf))
	if err != nil {
		t.Fatal(err)
	}
	var d time.Duration
	for _, door := range cfg.Doors {
		d = max(d, door.CmdTimeout)
	}
	return d
}
