package daemon

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// slowWriter is a terminal or pipe that takes its time: every write waits.
type slowWriter struct {
	delay time.Duration
	syncBuffer
}

func (w *slowWriter) Write(p []byte) (int, error) {
	time.Sleep(w.delay)
	return w.syncBuffer.Write(p)
}

// TestDebugTraceNeverSlowsPackets is the -D half of issue 12 item 7: with
// -D on a slow stdout, a flood of packets must not hold up the packet
// loop, so a knock behind the flood still opens at once; the trace lines
// that could not be written are counted. It used to write every trace line
// on the packet path (4000 × 2 ms here before the knock was seen).
func TestDebugTraceNeverSlowsPackets(t *testing.T) {
	out := &slowWriter{delay: 2 * time.Millisecond}
	r := startFileMode(t, "", Options{Stdout: out, Debug: true})

	// 4000 packets to a closed port, then a knock.
	now := time.Now()
	var flood strings.Builder
	for i := range 4000 {
		flood.WriteString(kernLine(now, fmt.Sprintf("198.51.100.%d", i%250+1), 20000+i, 1234))
	}
	r.append(flood.String())
	start := time.Now()
	r.knock("192.0.2.10")
	if line := r.command(4*time.Second, "a knock behind a flood with -D"); line != "open 192.0.2.10" {
		t.Fatalf("ran %q", line)
	}
	t.Logf("the knock opened %v after the flood was written", time.Since(start))
	r.cancel()
	if code := <-r.done; code != 0 {
		t.Fatalf("exit %d", code)
	}
	if s := out.String(); !strings.Contains(s, "packet trace lines dropped") {
		t.Errorf("no count of dropped trace lines in:\n%.2000s", s)
	}
}

// blockedWriter never returns: stdout of a paused pipe.
type blockedWriter struct{ c chan struct{} }

func (w blockedWriter) Write(p []byte) (int, error) { <-w.c; return len(p), nil }

// BenchmarkTracePacket is the per-packet cost of -D on the packet path
// when stdout does not move at all: a queue send or a counted drop, no
// allocation.
func BenchmarkTracePacket(b *testing.B) {
	w := blockedWriter{make(chan struct{})}
	tr := newTracer(NewLogger(LogOptions{Stdout: w, Debug: true}))
	defer func() { close(w.c); tr.close() }()
	pkt := doormanKnock(time.Unix(1_800_000_000, 0), 40000)
	b.ReportAllocs()
	for b.Loop() {
		tr.packet(&pkt)
	}
	if n := testing.AllocsPerRun(100, func() { tr.packet(&pkt) }); n != 0 {
		b.Errorf("%v allocations per traced packet", n)
	}
}
