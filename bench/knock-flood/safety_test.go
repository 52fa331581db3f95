package main

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestCheckTarget(t *testing.T) {
	const initNS, otherNS = "net:[4026531840]", "net:[4026532999]"
	local := []netip.Prefix{netip.MustParsePrefix("10.233.0.2/24"), netip.MustParsePrefix("127.0.0.1/8")}
	inNS := netEnv{selfNS: otherNS, initNS: initNS, local: local}
	onHost := netEnv{selfNS: initNS, initNS: initNS, local: local}
	unknown := netEnv{selfNS: otherNS, initNS: "", local: local}
	// PID 1 unreadable, but the namespace is one of `ip netns add`.
	named := netEnv{selfNS: otherNS, initNS: "", named: []string{"net:[1]", otherNS}, local: local}
	// PID 1 readable: being named does not make the initial namespace safe.
	namedInit := netEnv{selfNS: initNS, initNS: initNS, named: []string{initNS}, local: local}
	for _, tc := range []struct {
		dst  string
		env  netEnv
		ok   bool
		want string // part of the error
	}{
		{"127.0.0.1", onHost, true, ""},
		{"127.1.2.3", unknown, true, ""},
		{"10.233.0.1", inNS, true, ""},
		{"10.233.0.2", inNS, true, ""}, // its own address
		{"10.233.0.1", onHost, false, "initial network namespace"},
		{"10.233.0.1", unknown, false, "cannot tell"},
		{"10.233.0.1", named, true, ""},
		{"10.233.0.1", namedInit, false, "initial network namespace"},
		{"10.233.1.1", inNS, false, "not on a subnet"},
		{"8.8.8.8", inNS, false, "not on a subnet"},
		{"192.168.1.1", onHost, false, "initial network namespace"},
		{"10.233.0.255", inNS, false, "broadcast"},
		{"255.255.255.255", inNS, false, "unicast"},
		{"224.0.0.1", inNS, false, "unicast"},
		{"0.0.0.0", inNS, false, "unicast"},
		{"::1", inNS, false, "IPv4"},
	} {
		err := checkTarget(netip.MustParseAddr(tc.dst), tc.env)
		if tc.ok != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("checkTarget(%s, self=%q init=%q) = %v, want ok=%v (%q)", tc.dst, tc.env.selfNS, tc.env.initNS, err, tc.ok, tc.want)
		}
	}
	if err := checkTarget(netip.Addr{}, inNS); err == nil {
		t.Error("zero address accepted")
	}
	// A /31 or /32 has no broadcast address.
	p2p := netEnv{selfNS: otherNS, initNS: initNS, local: []netip.Prefix{netip.MustParsePrefix("10.9.9.0/31")}}
	if err := checkTarget(netip.MustParseAddr("10.9.9.1"), p2p); err != nil {
		t.Errorf("/31 peer refused: %v", err)
	}
}

// The process running this test: from the host it must refuse anything but
// loopback; inside a namespace (ip netns exec) it may accept more.
func TestCurrentNetEnvRefusesOffHost(t *testing.T) {
	e := currentNetEnv()
	if e.selfNS != "" && e.selfNS == e.initNS {
		if err := checkTarget(netip.MustParseAddr("192.0.2.1"), e); err == nil {
			t.Fatal("a non-loopback target was accepted in the initial network namespace")
		}
	}
	if err := checkTarget(netip.MustParseAddr("127.0.0.1"), e); err != nil {
		t.Fatalf("loopback refused: %v", err)
	}
}

func TestBoundsAndFlags(t *testing.T) {
	for _, tc := range []struct {
		count uint64
		d     time.Duration
		ok    bool
	}{
		{1, time.Second, true},
		{maxCount, maxDuration, true},
		{0, time.Second, false},
		{maxCount + 1, time.Second, false},
		{10, 0, false},
		{10, -time.Second, false},
		{10, maxDuration + 1, false},
	} {
		if err := checkBounds(tc.count, tc.d); (err == nil) != tc.ok {
			t.Errorf("checkBounds(%d, %v) = %v, want ok=%v", tc.count, tc.d, err, tc.ok)
		}
	}
	var sink strings.Builder
	c, err := parseFloodFlags([]string{"-dst", "127.0.0.1"}, &sink)
	if err != nil {
		t.Fatal(err)
	}
	if c.count != defaultCount || c.duration != defaultDuration || c.rate != 0 || c.prefix.String() != "198.18.0.0/15" || len(c.ports) != 1 || c.ports[0] != 7000 {
		t.Errorf("defaults: %+v", c)
	}
	for _, args := range [][]string{
		{},
		{"-dst", "127.0.0.1", "-count", "0"},
		{"-dst", "127.0.0.1", "-duration", "0s"},
		{"-dst", "127.0.0.1", "-duration", "1h"},
		{"-dst", "127.0.0.1", "-rate", "-1"},
		{"-dst", "127.0.0.1", "-ports", "0"},
		{"-dst", "127.0.0.1", "-ports", "70000"},
		{"-dst", "127.0.0.1", "-src-prefix", "2001:db8::/32"},
		{"-dst", "127.0.0.1", "-mode", "xdp"},
		{"-dst", "127.0.0.1", "-proto", "icmp"},
		{"-dst", "127.0.0.1", "extra"},
		{"-dst", "127.0.0.1", "-payload-base64", "200"}, // a TCP SYN carries none
		{"-dst", "127.0.0.1", "-proto", "udp", "-payload-base64", "1401"},
	} {
		if _, err := parseFloodFlags(args, &sink); err == nil {
			t.Errorf("parseFloodFlags(%q) accepted", args)
		}
	}
}
