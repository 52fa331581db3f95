//go:build linux

package capture

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/doorward/doorward/detectors"
)

func TestOpenErrors(t *testing.T) {
	_, err := Open("doorward-nope0", []detectors.Rule{{Proto: detectors.TCP, Ports: []uint16{1}}}, Options{})
	if err == nil || !strings.HasPrefix(err.Error(), "capture doorward-nope0: ") {
		t.Errorf("Open on a missing interface: %v", err)
	}
	_, err = Open("lo", []detectors.Rule{{Proto: detectors.ProtoNone, Ports: []uint16{1}}}, Options{})
	if err == nil || !strings.Contains(err.Error(), "neither tcp nor udp") {
		t.Errorf("Open with a bad rule: %v", err)
	}
}

func TestLocalAddrsLoopback(t *testing.T) {
	addrs, err := LocalAddrs("lo")
	if err != nil {
		t.Skipf("no lo: %v", err)
	}
	if !slices.Contains(addrs, netip.MustParseAddr("127.0.0.1")) {
		t.Errorf("LocalAddrs(lo) = %v, want 127.0.0.1 among them (as IPv4, not v4-in-v6)", addrs)
	}
	all, err := LocalAddrs("any")
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if !slices.Contains(all, a) {
			t.Errorf("LocalAddrs(any) = %v lacks %v", all, a)
		}
	}
}

// needRoot skips without root, except in CI where a skipped root test would
// hide that the capture path is untested.
func needRoot(t testing.TB) {
	t.Helper()
	why := ""
	if os.Geteuid() != 0 {
		why = "needs root to create network namespaces and packet sockets"
	} else if _, err := exec.LookPath("ip"); err != nil {
		why = "needs the ip command (iproute2)"
	}
	if why == "" {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal(why)
	}
	t.Skip(why)
}

func ip(t testing.TB, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// inNetns runs f on a thread that has entered the named namespace. The
// thread is never unlocked, so Go discards it instead of reusing it.
// Sockets created in f stay in that namespace whichever thread uses them.
func inNetns(name string, f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		fd, err := unix.Open("/var/run/netns/"+name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- err
			return
		}
		err = unix.Setns(fd, unix.CLONE_NEWNET)
		unix.Close(fd)
		if err != nil {
			errc <- fmt.Errorf("setns %s: %w", name, err)
			return
		}
		errc <- f()
	}()
	return <-errc
}

var nsCount atomic.Int32

// netnsPair builds client ⇄ server namespaces joined by a veth pair and
// returns their names. Cleanup deletes them, which deletes the veth too.
func netnsPair(t testing.TB) (srv, cli string) {
	needRoot(t)
	n := nsCount.Add(1)
	srv = fmt.Sprintf("dwcap%d-%ds", os.Getpid(), n)
	cli = fmt.Sprintf("dwcap%d-%dc", os.Getpid(), n)
	for _, ns := range []string{srv, cli} {
		ip(t, "netns", "add", ns)
		t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	}
	ip(t, "link", "add", "veth-s", "netns", srv, "type", "veth", "peer", "name", "veth-c", "netns", cli)
	for _, c := range []struct{ ns, dev, v4, v6 string }{
		{srv, "veth-s", "10.231.0.1/24", "fd00:231::1/64"},
		{cli, "veth-c", "10.231.0.2/24", "fd00:231::2/64"},
	} {
		ip(t, "-n", c.ns, "addr", "add", c.v4, "dev", c.dev)
		ip(t, "-n", c.ns, "addr", "add", c.v6, "dev", c.dev, "nodad")
		ip(t, "-n", c.ns, "link", "set", c.dev, "up")
		ip(t, "-n", c.ns, "link", "set", "lo", "up")
	}
	return srv, cli
}

// seen is what the test checks of a captured packet; the client's source
// port is chosen by its kernel and not compared.
type seen struct {
	Src     netip.Addr
	Dst     netip.AddrPort
	Proto   detectors.Proto
	Flags   detectors.TCPFlags
	Payload string
}

type result struct {
	seen seen
	time time.Time
	err  error
}

// collect reads s until it fails, sending every packet to the channel.
func collect(s *Source) <-chan result {
	ch := make(chan result, 100)
	go func() {
		var p detectors.Packet
		for {
			if err := s.ReadPacket(&p); err != nil {
				ch <- result{err: err}
				return
			}
			ch <- result{seen: seen{p.Src, netip.AddrPortFrom(p.Dst, p.DstPort), p.Proto, p.Flags, string(p.Payload)}, time: p.Time}
		}
	}()
	return ch
}

// until gathers packets up to and including one equal to last.
func until(t *testing.T, ch <-chan result, last seen) []seen {
	t.Helper()
	var got []seen
	timeout := time.After(3 * time.Second)
	for {
		select {
		case r := <-ch:
			if r.err != nil {
				t.Fatalf("ReadPacket after %v: %v", got, r.err)
			}
			got = append(got, r.seen)
			if r.seen == last {
				return got
			}
		case <-timeout:
			t.Fatalf("timed out; got %v, waiting for %v", got, last)
		}
	}
}

type send struct {
	proto   detectors.Proto
	to      string
	payload string
}

// sendAll sends from inside ns: a TCP connect to a closed port puts one SYN
// on the wire and is refused at once; a UDP datagram is one packet.
func sendAll(t *testing.T, ns string, sends ...send) {
	t.Helper()
	err := inNetns(ns, func() error {
		for _, s := range sends {
			if s.proto == detectors.TCP {
				c, err := (&net.Dialer{Timeout: time.Second}).Dial("tcp", s.to)
				if err == nil {
					c.Close()
					return fmt.Errorf("connected to %s; the test needs a closed port", s.to)
				}
				if !errors.Is(err, unix.ECONNREFUSED) {
					return err
				}
				continue
			}
			c, err := net.Dial("udp", s.to)
			if err != nil {
				return err
			}
			_, err = c.Write([]byte(s.payload))
			c.Close()
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func openIn(t testing.TB, ns, iface string, rules []detectors.Rule) *Source {
	t.Helper()
	var s *Source
	err := inNetns(ns, func() error {
		var err error
		s, err = Open(iface, rules, Options{PollTimeout: 50 * time.Millisecond})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestCaptureNetns(t *testing.T) {
	srv, cli := netnsPair(t)
	var local []netip.Addr
	if err := inNetns(srv, func() (err error) { local, err = LocalAddrs("veth-s"); return err }); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"10.231.0.1", "fd00:231::1"} {
		if !slices.Contains(local, netip.MustParseAddr(want)) {
			t.Fatalf("LocalAddrs(veth-s) = %v, lacks %s", local, want)
		}
	}
	rules := []detectors.Rule{
		{Dst: local, Proto: detectors.TCP, Ports: []uint16{7000, 7001}, FlagMask: detectors.SYN | detectors.ACK, FlagWant: detectors.SYN},
		{Dst: local, Proto: detectors.UDP, Ports: []uint16{9000}},
	}
	s := openIn(t, srv, "veth-s", rules)
	if got := s.String(); got != "capture:veth-s" {
		t.Errorf("String() = %q", got)
	}
	ch := collect(s)

	c4, c6 := netip.MustParseAddr("10.231.0.2"), netip.MustParseAddr("fd00:231::2")
	ap := netip.MustParseAddrPort
	sendAll(t, cli,
		send{detectors.TCP, "10.231.0.1:6000", ""},
		send{detectors.UDP, "10.231.0.1:9001", "no"},
		send{detectors.TCP, "10.231.0.1:7000", ""},
		send{detectors.UDP, "10.231.0.1:9000", "knock4"},
		send{detectors.TCP, "[fd00:231::1]:6000", ""},
		send{detectors.TCP, "[fd00:231::1]:7001", ""},
		send{detectors.UDP, "[fd00:231::1]:9001", "no"},
		send{detectors.UDP, "[fd00:231::1]:9000", "knock6"},
		send{detectors.UDP, "10.231.0.1:9000", "end"},
	)
	want := []seen{
		{c4, ap("10.231.0.1:7000"), detectors.TCP, detectors.SYN, ""},
		{c4, ap("10.231.0.1:9000"), detectors.UDP, 0, "knock4"},
		{c6, ap("[fd00:231::1]:7001"), detectors.TCP, detectors.SYN, ""},
		{c6, ap("[fd00:231::1]:9000"), detectors.UDP, 0, "knock6"},
		{c4, ap("10.231.0.1:9000"), detectors.UDP, 0, "end"},
	}
	got := until(t, ch, want[len(want)-1])
	if !slices.Equal(got, want) {
		t.Errorf("captured\n%v\nwant\n%v", got, want)
	}
	if recv, drop, err := s.Stats(); err != nil || recv < uint64(len(want)) || drop != 0 {
		t.Errorf("Stats() = %d received, %d dropped, %v; want ≥ %d, 0", recv, drop, err, len(want))
	}

	t.Run("SetFilter", func(t *testing.T) {
		err := s.SetFilter([]detectors.Rule{{Proto: detectors.UDP, Ports: []uint16{9100}}})
		if err != nil {
			t.Fatal(err)
		}
		sendAll(t, cli,
			send{detectors.UDP, "10.231.0.1:9000", "old"},
			send{detectors.TCP, "10.231.0.1:7000", ""},
			send{detectors.UDP, "[fd00:231::1]:9100", "new"},
		)
		last := seen{c6, ap("[fd00:231::1]:9100"), detectors.UDP, 0, "new"}
		if got := until(t, ch, last); !slices.Equal(got, []seen{last}) {
			t.Errorf("after SetFilter captured %v", got)
		}
	})

	t.Run("link down and up", func(t *testing.T) {
		ip(t, "-n", srv, "link", "set", "veth-s", "down")
		time.Sleep(150 * time.Millisecond) // let ReadPacket meet the error
		ip(t, "-n", srv, "link", "set", "veth-s", "up")
		// veth carrier comes back asynchronously; retry until through.
		last := seen{c4, ap("10.231.0.1:9100"), detectors.UDP, 0, "again"}
		deadline := time.Now().Add(2 * time.Second)
		for {
			sendAll(t, cli, send{detectors.UDP, "10.231.0.1:9100", "again"})
			select {
			case r := <-ch:
				if r.err != nil {
					t.Fatalf("ReadPacket after link flap: %v", r.err)
				}
				if r.seen != last {
					t.Fatalf("captured %v, want %v", r.seen, last)
				}
				return
			case <-time.After(100 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				t.Fatal("nothing captured after the link came back")
			}
		}
	})

	t.Run("interface deleted", func(t *testing.T) {
		ip(t, "-n", srv, "link", "del", "veth-s")
		select {
		case r := <-ch:
			for r.err == nil { // packets still queued from the retries above
				r = <-ch
			}
			if !errors.Is(r.err, ErrInterfaceGone) || !strings.HasPrefix(r.err.Error(), "capture veth-s: ") {
				t.Errorf("ReadPacket after deletion: %v; want capture veth-s: ... ErrInterfaceGone", r.err)
			}
		case <-time.After(2 * time.Second):
			t.Fatal("ReadPacket did not notice the deleted interface")
		}
	})
}

// TestCaptureAnyLoopback captures on "any" inside a namespace and talks to
// itself over lo, where every packet passes the tap twice (out and in): each
// must be reported once.
func TestCaptureAnyLoopback(t *testing.T) {
	srv, _ := netnsPair(t)
	rules := []detectors.Rule{
		{Proto: detectors.TCP, Ports: []uint16{7000}, FlagMask: detectors.SYN, FlagWant: detectors.SYN},
		{Proto: detectors.UDP, Ports: []uint16{9000}},
	}
	s := openIn(t, srv, "", rules)
	if got := s.String(); got != "capture:any" {
		t.Errorf("String() = %q", got)
	}
	ch := collect(s)
	before := time.Now()
	sendAll(t, srv,
		send{detectors.TCP, "127.0.0.1:7000", ""},
		send{detectors.TCP, "[::1]:7000", ""},
		send{detectors.TCP, "10.231.0.1:7000", ""}, // local address of veth-s, routed over lo
		send{detectors.UDP, "127.0.0.1:9000", "end"},
	)
	after := time.Now()
	ap := netip.MustParseAddrPort
	lo4, lo6 := netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("::1")
	want := []seen{
		{lo4, ap("127.0.0.1:7000"), detectors.TCP, detectors.SYN, ""},
		{lo6, ap("[::1]:7000"), detectors.TCP, detectors.SYN, ""},
		{netip.MustParseAddr("10.231.0.1"), ap("10.231.0.1:7000"), detectors.TCP, detectors.SYN, ""},
		{lo4, ap("127.0.0.1:9000"), detectors.UDP, 0, "end"},
	}
	var got []seen
	var times []time.Time
	timeout := time.After(3 * time.Second)
	for len(got) < len(want) {
		select {
		case r := <-ch:
			if r.err != nil {
				t.Fatal(r.err)
			}
			got = append(got, r.seen)
			times = append(times, r.time)
		case <-timeout:
			t.Fatalf("timed out with %v", got)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("captured\n%v\nwant\n%v", got, want)
	}
	for i, tm := range times {
		if tm.Before(before.Add(-time.Second)) || tm.After(after.Add(time.Second)) {
			t.Errorf("packet %d time %v, sent between %v and %v", i, tm, before, after)
		}
	}
	select { // a duplicate would arrive right behind
	case r := <-ch:
		t.Errorf("extra packet %v %v", r.seen, r.err)
	case <-time.After(100 * time.Millisecond):
	}

	t.Run("Close", func(t *testing.T) {
		start := time.Now()
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		select {
		case r := <-ch:
			if !errors.Is(r.err, detectors.ErrClosed) {
				t.Errorf("blocked ReadPacket returned %v %v, want ErrClosed", r.seen, r.err)
			}
		case <-time.After(time.Second):
			t.Fatal("Close did not unblock ReadPacket")
		}
		if d := time.Since(start); d > 500*time.Millisecond {
			t.Errorf("Close took %v", d)
		}
		if err := s.Close(); err != nil {
			t.Errorf("second Close: %v", err)
		}
		var p detectors.Packet
		if err := s.ReadPacket(&p); !errors.Is(err, detectors.ErrClosed) {
			t.Errorf("ReadPacket after Close = %v", err)
		}
		if _, _, err := s.Stats(); !errors.Is(err, detectors.ErrClosed) {
			t.Errorf("Stats after Close = %v", err)
		}
		if err := s.SetFilter(nil); !errors.Is(err, detectors.ErrClosed) {
			t.Errorf("SetFilter after Close = %v", err)
		}
	})
}
