// Package netns builds throwaway network-namespace pairs for end-to-end
// tests: a server and a client namespace joined by a veth pair, with IPv4
// and IPv6 addresses, loopback up, and cleanup registered on the test.
//
// Everything runs through `ip netns exec`, so a test never touches the
// host's own interfaces, firewall or sysctls, and packets only ever go to
// addresses inside the namespaces it created. Cleanup kills every process
// still inside the namespaces, then deletes them; it runs when the test
// passes, fails or panics.
package netns

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// Prefix starts the name of every namespace this package creates. The
// creating process's pid follows it, so Sweep can tell a leftover of a
// crashed test binary from a live one.
const Prefix = "dwe2e-"

// execTimeout bounds every command run with Exec: a hung tool must fail the
// test, not the suite's deadline (which skips cleanup).
const execTimeout = 20 * time.Second

var counter atomic.Uint32

// Pair is a server and a client namespace joined by one veth pair.
type Pair struct {
	Server, Client           string // namespace names
	ServerIf, ClientIf       string // veth ends, one in each namespace
	ServerAddr, ClientAddr   netip.Addr
	ServerAddr6, ClientAddr6 netip.Addr

	mu    sync.Mutex
	procs []*proc
}

type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
}

// Require skips t unless it runs as root and every tool is on PATH. When
// the environment variable CI is "true" a missing prerequisite fails the
// test instead: CI must never pass by skipping.
func Require(t testing.TB, tools ...string) {
	t.Helper()
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root (network namespaces)")
	}
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if len(missing) == 0 {
		return
	}
	msg := "missing prerequisites: " + strings.Join(missing, ", ")
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + " (CI=true: not skipping)")
	}
	t.Skip(msg)
}

// NewPair creates the two namespaces. IPv4 10.231.N.1/24 (server) and .2
// (client) and IPv6 fd00:231::1/64 and ::2 (nodad, usable at once) are on
// the veth ends; the addresses are private to the pair, so every pair uses
// the same IPv6 ones.
func NewPair(t testing.TB) *Pair {
	t.Helper()
	Require(t, "ip")
	n := counter.Add(1)
	base := fmt.Sprintf("%s%d-%d", Prefix, os.Getpid(), n)
	x := byte(n % 250)
	p := &Pair{
		Server:      base + "-srv",
		Client:      base + "-cli",
		ServerIf:    fmt.Sprintf("dws%d", n),
		ClientIf:    fmt.Sprintf("dwc%d", n),
		ServerAddr:  netip.AddrFrom4([4]byte{10, 231, x, 1}),
		ClientAddr:  netip.AddrFrom4([4]byte{10, 231, x, 2}),
		ServerAddr6: netip.MustParseAddr("fd00:231::1"),
		ClientAddr6: netip.MustParseAddr("fd00:231::2"),
	}
	t.Cleanup(func() { p.destroy(t) })

	ipSteps(t, [][]string{
		{"netns", "add", p.Server},
		{"netns", "add", p.Client},
		{"-n", p.Server, "link", "set", "lo", "up"},
		{"-n", p.Client, "link", "set", "lo", "up"},
	})
	p.Relink(t)
	return p
}

// Relink creates the veth pair with its names and addresses, as NewPair
// does. After a test deleted the pair (`ip link del` on either end deletes
// both), it brings the same link back; the new ends have new indexes and
// MAC addresses.
func (p *Pair) Relink(t testing.TB) {
	t.Helper()
	ipSteps(t, [][]string{
		// Both ends are created directly inside their namespaces: the host
		// never sees them.
		{"link", "add", p.ServerIf, "netns", p.Server, "type", "veth", "peer", "name", p.ClientIf, "netns", p.Client},
		{"-n", p.Server, "addr", "add", p.ServerAddr.String() + "/24", "dev", p.ServerIf},
		{"-n", p.Client, "addr", "add", p.ClientAddr.String() + "/24", "dev", p.ClientIf},
		{"-n", p.Server, "addr", "add", p.ServerAddr6.String() + "/64", "dev", p.ServerIf, "nodad"},
		{"-n", p.Client, "addr", "add", p.ClientAddr6.String() + "/64", "dev", p.ClientIf, "nodad"},
		{"-n", p.Server, "link", "set", p.ServerIf, "up"},
		{"-n", p.Client, "link", "set", p.ClientIf, "up"},
	})
}

// ipSteps runs `ip` once per step and fails t at the first error.
func ipSteps(t testing.TB, steps [][]string) {
	t.Helper()
	for _, s := range steps {
		if out, err := run("ip", s...); err != nil {
			t.Fatalf("ip %s: %v\n%s", strings.Join(s, " "), err, out)
		}
	}
}

// RxPackets is the count of packets interface ifname in namespace ns has
// received (`ip -s link`).
func (p *Pair) RxPackets(t testing.TB, ns, ifname string) uint64 {
	t.Helper()
	out, err := run("ip", "-n", ns, "-j", "-s", "link", "show", "dev", ifname)
	if err != nil {
		t.Fatalf("ip -n %s -s link show %s: %v\n%s", ns, ifname, err, out)
	}
	var links []struct {
		Stats64 struct {
			RX struct {
				Packets uint64 `json:"packets"`
			} `json:"rx"`
		} `json:"stats64"`
	}
	if err := json.Unmarshal(out, &links); err != nil || len(links) != 1 {
		t.Fatalf("ip -j -s link show %s: %v\n%s", ifname, err, out)
	}
	return links[0].Stats64.RX.Packets
}

// destroy kills what runs in the namespaces (helper-started processes
// first, then anything else still inside, such as a command a daemon
// spawned) and deletes them.
func (p *Pair) destroy(t testing.TB) {
	p.mu.Lock()
	procs := p.procs
	p.procs = nil
	p.mu.Unlock()
	for _, pr := range procs {
		pr.kill()
	}
	for _, ns := range []string{p.Server, p.Client} {
		if err := Delete(ns); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	}
}

// Delete kills every process inside namespace ns and deletes it. A missing
// namespace is not an error.
func Delete(ns string) error {
	if _, err := os.Stat(filepath.Join("/run/netns", ns)); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	for range 3 {
		out, _ := run("ip", "netns", "pids", ns)
		pids := strings.Fields(string(out))
		if len(pids) == 0 {
			break
		}
		for _, s := range pids {
			if pid, err := strconv.Atoi(s); err == nil && pid > 1 && pid != os.Getpid() {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	if out, err := run("ip", "netns", "del", ns); err != nil {
		return fmt.Errorf("ip netns del %s: %v: %s", ns, err, out)
	}
	return nil
}

// Sweep deletes namespaces left by test binaries that died without running
// their cleanup (a `go test -timeout` panic, SIGKILL): those named with
// Prefix and the pid of a process that no longer exists.
func Sweep() {
	entries, _ := os.ReadDir("/run/netns")
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), Prefix)
		if !ok {
			continue
		}
		pidStr, _, _ := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidStr)
		if err != nil || pid == os.Getpid() {
			continue
		}
		if err := syscall.Kill(pid, 0); err == nil || errors.Is(err, syscall.EPERM) {
			continue // its owner still runs and will clean up
		}
		Delete(e.Name())
	}
}

// Exec runs args inside namespace ns and returns the combined output.
func (p *Pair) Exec(t testing.TB, ns string, args ...string) ([]byte, error) {
	t.Helper()
	return run("ip", append([]string{"netns", "exec", ns}, args...)...)
}

// MustExec is Exec that fails the test on error.
func (p *Pair) MustExec(t testing.TB, ns string, args ...string) string {
	t.Helper()
	out, err := p.Exec(t, ns, args...)
	if err != nil {
		t.Fatalf("%s: %s: %v\n%s", ns, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// Start runs args in the background inside ns, stdout and stderr to out
// (nil: discarded). The process is in its own process group; cleanup kills
// the group. Use Wait, not cmd.Wait, to wait for it.
func (p *Pair) Start(t testing.TB, ns string, out *os.File, args ...string) *exec.Cmd {
	t.Helper()
	// `ip netns exec` execs args[0] after switching namespace, so the pid
	// is the program's own and signals reach it directly.
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...)
	if out != nil {
		cmd.Stdout, cmd.Stderr = out, out
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("%s: start %s: %v", ns, strings.Join(args, " "), err)
	}
	pr := &proc{cmd: cmd, done: make(chan struct{})}
	go func() { cmd.Wait(); close(pr.done) }()
	p.mu.Lock()
	p.procs = append(p.procs, pr)
	p.mu.Unlock()
	t.Cleanup(pr.kill)
	return cmd
}

func (pr *proc) kill() {
	select {
	case <-pr.done:
		return
	default:
	}
	syscall.Kill(-pr.cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-pr.done:
	case <-time.After(5 * time.Second):
	}
}

// Wait waits up to d for cmd, started by Start, to exit and returns its
// state. ok is false on timeout; d <= 0 only checks.
func (p *Pair) Wait(cmd *exec.Cmd, d time.Duration) (state *os.ProcessState, ok bool) {
	p.mu.Lock()
	i := slices.IndexFunc(p.procs, func(pr *proc) bool { return pr.cmd == cmd })
	var pr *proc
	if i >= 0 {
		pr = p.procs[i]
	}
	p.mu.Unlock()
	if pr == nil {
		return nil, false
	}
	if d <= 0 {
		select {
		case <-pr.done:
			return cmd.ProcessState, true
		default:
			return nil, false
		}
	}
	select {
	case <-pr.done:
		return cmd.ProcessState, true
	case <-time.After(d):
		return nil, false
	}
}

// Reachable reports whether a TCP connection from the client namespace to
// addr:port succeeds within one second (`nc -z -w1`).
func (p *Pair) Reachable(t testing.TB, addr netip.Addr, port int) bool {
	t.Helper()
	_, err := p.Exec(t, p.Client, "nc", "-z", "-w1", addr.String(), strconv.Itoa(port))
	return err == nil
}

// WaitTCP probes addr:port from the client namespace until its
// reachability is want, for at most d (at least one probe). It returns an
// error describing the last state on timeout.
func (p *Pair) WaitTCP(t testing.TB, addr netip.Addr, port int, want bool, d time.Duration) error {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		if p.Reachable(t, addr, port) == want {
			return nil
		}
		if time.Now().After(deadline) {
			state := map[bool]string{true: "reachable", false: "unreachable"}
			return fmt.Errorf("%s from %s: still %s after %v", netip.AddrPortFrom(addr, uint16(port)), p.Client, state[!want], d)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Flavour is a firewall implementation.
type Flavour string

const (
	IPTables Flavour = "iptables" // iptables and ip6tables as installed (nft backend on Debian)
	NFTables Flavour = "nftables" // table inet doorward_e2e
)

// E2ETable is the nftables table the NFTables firewall lives in.
const E2ETable = "doorward_e2e"

// Firewall gives the server namespace a default-deny INPUT policy for IPv4
// and IPv6. It always accepts loopback, ESTABLISHED/RELATED and ICMPv6 (IPv6
// neighbour discovery), and TCP to the ports in open.
//
// With NFTables, a knock can only open a port that some table accepts: a
// drop in any base chain is final, so another table's accept cannot undo
// this table's policy. Tests of nftables doors therefore pass the guarded
// port in open and load a guard table (examples/nftables-doorward.nft) that
// drops it for everyone not knocked.
func (p *Pair) Firewall(t testing.TB, f Flavour, open ...int) {
	t.Helper()
	switch f {
	case IPTables:
		Require(t, "iptables", "ip6tables")
		for _, ipt := range []string{"iptables", "ip6tables"} {
			rules := [][]string{
				{"-A", "INPUT", "-i", "lo", "-j", "ACCEPT"},
				{"-A", "INPUT", "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT"},
			}
			if ipt == "ip6tables" {
				rules = append(rules, []string{"-A", "INPUT", "-p", "ipv6-icmp", "-j", "ACCEPT"})
			}
			for _, port := range open {
				rules = append(rules, []string{"-A", "INPUT", "-p", "tcp", "--dport", strconv.Itoa(port), "-j", "ACCEPT"})
			}
			rules = append(rules, []string{"-P", "INPUT", "DROP"})
			for _, r := range rules {
				p.MustExec(t, p.Server, append([]string{ipt, "-w"}, r...)...)
			}
		}
	case NFTables:
		Require(t, "nft")
		var b strings.Builder
		fmt.Fprintf(&b, "table inet %s {\n\tchain input {\n", E2ETable)
		b.WriteString("\t\ttype filter hook input priority filter; policy drop;\n")
		b.WriteString("\t\tiif lo accept\n\t\tct state established,related accept\n")
		b.WriteString("\t\tmeta l4proto ipv6-icmp accept\n")
		for _, port := range open {
			fmt.Fprintf(&b, "\t\ttcp dport %d accept\n", port)
		}
		b.WriteString("\t}\n}\n")
		p.LoadNFT(t, b.String())
	default:
		t.Fatalf("unknown firewall flavour %q", f)
	}
}

// LoadNFT loads an nftables ruleset (nft -f syntax) into the server
// namespace.
func (p *Pair) LoadNFT(t testing.TB, ruleset string) {
	t.Helper()
	f, err := os.CreateTemp("", "doorward-e2e-*.nft")
	if err != nil {
		t.Fatal(err)
	}
	defer os.Remove(f.Name())
	if _, err := f.WriteString(ruleset); err != nil {
		t.Fatal(err)
	}
	f.Close()
	p.MustExec(t, p.Server, "nft", "-f", f.Name())
}

// IPTablesSources lists the source addresses of the ACCEPT rules for TCP
// port in the server's INPUT chain (iptables, or ip6tables when v6), one
// entry per rule, without the prefix length.
func (p *Pair) IPTablesSources(t testing.TB, v6 bool, port int) []string {
	t.Helper()
	ipt := "iptables"
	if v6 {
		ipt = "ip6tables"
	}
	out := p.MustExec(t, p.Server, ipt, "-w", "-S", "INPUT")
	var srcs []string
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || f[0] != "-A" || !slices.Contains(f, "--dport") {
			continue
		}
		if i := slices.Index(f, "--dport"); i+1 >= len(f) || f[i+1] != strconv.Itoa(port) {
			continue
		}
		src := "(any)"
		if i := slices.Index(f, "-s"); i >= 0 && i+1 < len(f) {
			src, _, _ = strings.Cut(f[i+1], "/")
		}
		srcs = append(srcs, src)
	}
	return srcs
}

// NFTSetElements lists the elements of set in table inet table of the
// server namespace.
func (p *Pair) NFTSetElements(t testing.TB, table, set string) []string {
	t.Helper()
	out := p.MustExec(t, p.Server, "nft", "-j", "list", "set", "inet", table, set)
	var doc struct {
		Nftables []map[string]json.RawMessage `json:"nftables"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("nft -j list set %s: %v\n%s", set, err, out)
	}
	var elems []string
	for _, obj := range doc.Nftables {
		raw, ok := obj["set"]
		if !ok {
			continue
		}
		var s struct {
			Elem []json.RawMessage `json:"elem"`
		}
		if err := json.Unmarshal(raw, &s); err != nil {
			t.Fatalf("nft set %s: %v", set, err)
		}
		for _, e := range s.Elem {
			elems = append(elems, elemString(e))
		}
	}
	return elems
}

// elemString renders a set element: a plain string, or {"elem": {"val": …}}
// when it carries a timeout or other attributes.
func elemString(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var o struct {
		Elem struct {
			Val json.RawMessage `json:"val"`
		} `json:"elem"`
	}
	if json.Unmarshal(raw, &o) == nil && o.Elem.Val != nil {
		return elemString(o.Elem.Val)
	}
	return string(raw)
}

func run(name string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), execTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("%w (timed out after %v)", err, execTimeout)
	}
	return out.Bytes(), err
}
