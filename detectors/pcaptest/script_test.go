package pcaptest

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

// A source written with a port keeps it (a retransmitted SYN repeats its
// source port); without one each line gets 40000 plus its line number.
func TestParseScriptSourcePort(t *testing.T) {
	t0 := time.Unix(0, 0)
	frames, err := ParseScript(strings.NewReader(
		"0 10.0.0.2 10.0.0.1 7000/tcp\n1 10.0.0.2:50001 10.0.0.1 7000/tcp\n2 [fd00::2]:50002 fd00::1 7000/udp\n"), t0)
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.AddrPort{
		netip.MustParseAddrPort("10.0.0.2:40001"),
		netip.MustParseAddrPort("10.0.0.2:50001"),
		netip.MustParseAddrPort("[fd00::2]:50002"),
	}
	for i, f := range frames {
		if f.Src != want[i] {
			t.Errorf("line %d: source %v, want %v", i+1, f.Src, want[i])
		}
	}
	if _, err := ParseScript(strings.NewReader("0 10.0.0.2:x 10.0.0.1 7000/tcp\n"), t0); err == nil {
		t.Error("a bad source port is not an error")
	}
}
