//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package knockdaemon

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/doorward/doorward/client/sequence"
)

// TestLoopbackUDP sends a real knock to loopback and checks each hit
// arrives, in order, at the span port its bit says: a one-bit span of two
// UDP listeners, and the record FLAG0 = 0xa5 (10100101), unencrypted.
func TestLoopbackUDP(t *testing.T) {
	var ls [2]*net.UDPConn
	var ports [2]string
	for i := range ls {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Skipf("cannot listen on loopback: %v", err)
		}
		defer c.Close()
		ls[i], ports[i] = c, strconv.Itoa(c.LocalAddr().(*net.UDPAddr).Port)
	}
	conf := Conf{
		"remote": "127.0.0.1", "portspan": ports[0] + "," + ports[1], "knock": "FLAG0",
		"flag0": "165", "encrypt": "no", "udp": "yes", "delay": "1",
	}
	k, err := conf.Plan(netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.1"), time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	_, hitPorts, err := k.Encode(nil)
	if err != nil {
		t.Fatal(err)
	}
	wantBits := "10100101"
	if len(hitPorts) != len(wantBits) {
		t.Fatalf("%d hits, want 8", len(hitPorts))
	}
	n := 0
	kn := &sequence.Knocker{
		Delay: k.Delay,
		// After each hit: exactly the listener of its bit has one datagram.
		Sleep: func(context.Context, time.Duration) error {
			bit := int(wantBits[n] - '0')
			if got, err := readOne(ls[bit], 5*time.Second); err != nil || got != "\x00" {
				t.Errorf("hit %d: listener %d got %q, %v", n, bit, got, err)
			}
			if got, err := readOne(ls[1-bit], 20*time.Millisecond); !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Errorf("hit %d: listener %d also got %q, %v", n, 1-bit, got, err)
			}
			n++
			return nil
		},
	}
	var trace strings.Builder
	kn.Trace = &trace
	if err := kn.Knock(context.Background(), k.Hits(hitPorts)); err != nil {
		t.Fatal(err)
	}
	if n != 8 {
		t.Errorf("%d hits sent, want 8", n)
	}
	if !strings.HasPrefix(trace.String(), "hitting udp 127.0.0.1:"+ports[1]+"\n") {
		t.Errorf("trace %q", trace.String())
	}
}

// readOne waits up to d for a datagram on c.
func readOne(c *net.UDPConn, d time.Duration) (string, error) {
	buf := make([]byte, 16)
	c.SetReadDeadline(time.Now().Add(d))
	n, err := c.Read(buf)
	return string(buf[:n]), err
}
