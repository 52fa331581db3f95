//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package sequence

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

// These tests send real packets, to loopback addresses only.

func listenUDP(t *testing.T, network, addr string) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP(network, &net.UDPAddr{IP: net.ParseIP(addr)})
	if err != nil {
		t.Skipf("cannot listen on %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func udpPort(c *net.UDPConn) int { return c.LocalAddr().(*net.UDPAddr).Port }

// readOne waits up to d for one datagram on c.
func readOne(c *net.UDPConn, d time.Duration) ([]byte, error) {
	buf := make([]byte, 64)
	c.SetReadDeadline(time.Now().Add(d))
	n, err := c.Read(buf)
	return buf[:n], err
}

// assertEmpty checks that nothing (more) is queued on c.
func assertEmpty(t *testing.T, c *net.UDPConn, what string) {
	t.Helper()
	if b, err := readOne(c, 20*time.Millisecond); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("%s: got %x, %v; want nothing", what, b, err)
	}
}

func testLoopback(t *testing.T, ip string) {
	udpNet, tcpNet := "udp4", "tcp4"
	if strings.Contains(ip, ":") {
		udpNet, tcpNet = "udp6", "tcp6"
	}
	u := listenUDP(t, udpNet, ip)
	l, err := net.Listen(tcpNet, net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Skipf("cannot listen on %s: %v", ip, err)
	}
	defer l.Close()
	tcpPort := l.Addr().(*net.TCPAddr).Port

	var trace strings.Builder
	k := &Knocker{Trace: &trace}
	hits := []Hit{{ip, fmt.Sprint(tcpPort), false}, {ip, fmt.Sprint(udpPort(u)), true}}
	if err := k.Knock(context.Background(), hits); err != nil {
		t.Fatal(err)
	}
	wantTrace := fmt.Sprintf("hitting tcp %s:%d\nhitting udp %s:%d\n", ip, tcpPort, ip, udpPort(u))
	if trace.String() != wantTrace {
		t.Errorf("trace = %q, want %q", trace.String(), wantTrace)
	}

	b, err := readOne(u, 5*time.Second)
	if err != nil || string(b) != "\x00" {
		t.Errorf("UDP listener got %x, %v; want one 0x00 byte", b, err)
	}
	assertEmpty(t, u, "UDP listener")

	// On loopback the kernel completes the handshake before the client's
	// close, so the attempt shows up as an accepted connection, which the
	// client then closes.
	l.(*net.TCPListener).SetDeadline(time.Now().Add(5 * time.Second))
	c, err := l.Accept()
	if err != nil {
		t.Fatalf("TCP listener saw no connection attempt: %v", err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := c.Read(make([]byte, 1)); n != 0 || err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("TCP read = %d, %v; want the client's close (EOF or reset)", n, err)
	}
}

func TestLoopbackIPv4(t *testing.T) { testLoopback(t, "127.0.0.1") }
func TestLoopbackIPv6(t *testing.T) { testLoopback(t, "::1") }

// Hits arrive in sequence order: the Sleep hook runs after each hit, while
// the knocker waits, and checks that exactly that hit's listener, and none
// of the later ones, has received its byte.
func TestLoopbackOrder(t *testing.T) {
	const n = 5
	var ls []*net.UDPConn
	var hits []Hit
	for i := 0; i < n; i++ {
		c := listenUDP(t, "udp4", "127.0.0.1")
		ls = append(ls, c)
		hits = append(hits, Hit{"127.0.0.1", fmt.Sprint(udpPort(c)), true})
	}
	next := 0
	k := &Knocker{
		Delay: time.Millisecond,
		Sleep: func(_ context.Context, d time.Duration) error {
			if next >= n {
				t.Fatalf("sleep called %d times for %d hits", next+1, n)
			}
			if b, err := readOne(ls[next], 5*time.Second); err != nil || string(b) != "\x00" {
				t.Errorf("after hit %d: listener %d got %x, %v; want 0x00", next, next, b, err)
			}
			for j := next + 1; j < n; j++ {
				assertEmpty(t, ls[j], fmt.Sprintf("after hit %d, listener %d", next, j))
			}
			next++
			return nil
		},
	}
	if err := k.Knock(context.Background(), hits); err != nil {
		t.Fatal(err)
	}
	if next != n {
		t.Fatalf("sleep called %d times, want %d", next, n)
	}
	for i, c := range ls {
		assertEmpty(t, c, fmt.Sprintf("listener %d at the end", i))
	}
}

// A refused TCP knock is not an error (the RST comes after close).
func TestLoopbackClosedPorts(t *testing.T) {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close() // now (almost certainly) closed
	u := listenUDP(t, "udp4", "127.0.0.1")
	uport := udpPort(u)
	u.Close()
	var warn strings.Builder
	k := &Knocker{Warn: &warn}
	hits := []Hit{{"127.0.0.1", fmt.Sprint(port), false}, {"127.0.0.1", fmt.Sprint(uport), true}}
	if err := k.Knock(context.Background(), hits); err != nil {
		t.Fatalf("err = %v, want nil (send errors are ignored)", err)
	}
	t.Logf("warnings: %q", warn.String())
}
