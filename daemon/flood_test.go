package daemon

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/doorward/doorward/detectors"
	"github.com/doorward/doorward/detectors/pcaptest"
)

// TestCompletingFloodLogLines: 10,000 spoofed sources each complete the
// sequence of an IPv4 door within 10 s. Every line they cause (Stage,
// OPEN SESAME, running command, command timeout, the door bound) goes
// through a limiter: a few thousand lines at most, not the ~40,000 of
// cd76284, and the lines left out are counted.
func TestCompletingFloodLogLines(t *testing.T) {
	const n = 10000
	dir := t.TempDir()
	dst := netip.MustParseAddrPort("10.0.0.1:0")
	var frames []pcaptest.Frame
	for i := range n {
		src := netip.AddrPortFrom(netip.AddrFrom4([4]byte{172, 16, byte(i >> 8), byte(i)}), 40000)
		at := replayT0.Add(time.Duration(i) * time.Millisecond)
		for j, port := range []uint16{7000, 8000, 9000} {
			frames = append(frames, pcaptest.Frame{Time: at.Add(time.Duration(j) * 100 * time.Microsecond), Src: src,
				Dst: netip.AddrPortFrom(dst.Addr(), port), Proto: detectors.TCP, Flags: detectors.SYN})
		}
	}
	pcap := writePcap(t, filepath.Join(dir, "flood.pcap"), frames)
	conf := filepath.Join(dir, "knockd.conf")
	if err := os.WriteFile(conf, []byte(`[openSSH]
	sequence      = 7000,8000,9000
	seq_timeout   = 5
	tcpflags      = syn
	start_command = open %IP%
	cmd_timeout   = 10
	stop_command  = close %IP%
`), 0o644); err != nil {
		t.Fatal(err)
	}
	starts := 0
	var now time.Time
	var out, errOut bytes.Buffer
	o := Options{Config: conf, LogFile: filepath.Join(dir, "knockd.log"), Stdout: &out, Stderr: &errOut, Verbose: true,
		Runner: func(ctx context.Context, line string) (int, error) {
			if strings.HasPrefix(line, "open") {
				starts++
			}
			return 0, nil
		}}
	if code := replay(context.Background(), o, pcap, &now); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if starts < 1000 {
		t.Fatalf("only %d doors opened: the flood did not complete", starts)
	}
	counted := 0
	for _, l := range lines {
		var k int
		if i := strings.Index(l, "] "); i >= 0 {
			l = l[i+2:]
		}
		if _, err := fmt.Sscanf(l, "%d", &k); err == nil && strings.Contains(l, "suppressed") {
			counted += k
		}
	}
	t.Logf("%d doors opened, %d log lines, %d counted as suppressed", starts, len(lines), counted)
	if len(lines) > 4000 {
		t.Errorf("%d log lines for %d completing sources; want at most 4000. First lines:\n%s", len(lines), n, strings.Join(lines[:20], "\n"))
	}
	if counted < 30000 {
		t.Errorf("%d lines counted as suppressed; want the rest of ~40,000", counted)
	}
}
