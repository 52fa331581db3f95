package main

import (
	"net/netip"
	"strings"
	"testing"
)

func TestARPLookup(t *testing.T) {
	const table = `IP address       HW type     Flags       HW address            Mask     Device
10.233.0.1       0x1         0x2         aa:bb:cc:dd:ee:01     *        fb1c
10.233.0.3       0x1         0x0         00:00:00:00:00:00     *        fb1c
10.233.1.1       0x1         0x2         aa:bb:cc:dd:ee:02     *        other
`
	mac, ok := arpLookup(strings.NewReader(table), netip.MustParseAddr("10.233.0.1"), "fb1c")
	if !ok || mac.String() != "aa:bb:cc:dd:ee:01" {
		t.Fatalf("got %v %v", mac, ok)
	}
	if _, ok := arpLookup(strings.NewReader(table), netip.MustParseAddr("10.233.0.3"), "fb1c"); ok {
		t.Error("incomplete entry used")
	}
	if _, ok := arpLookup(strings.NewReader(table), netip.MustParseAddr("10.233.1.1"), "fb1c"); ok {
		t.Error("entry of another device used")
	}
}

func TestPacketInodes(t *testing.T) {
	const text = `sk               RefCnt Type Proto  Iface R Rmem   User   Inode
ffff8881a2b3c000 3      3    0003   2     1 0      0      123456
ffff8881a2b3d000 3      2    0800   2     1 0      0      789
`
	got := packetInodes(strings.NewReader(text))
	if len(got) != 2 || !got[123456] || !got[789] {
		t.Fatalf("got %v", got)
	}
}
