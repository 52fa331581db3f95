package daemon

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
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
	dir := t.TempDir()
	logPath := filepath.Join(dir, "firewall.log")
	if err := os.WriteFile(logPath, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "knockd.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(fileModeConf, logPath, filepath.Join(dir, "state"))), 0o644); err != nil {
		t.Fatal(err)
	}
	ran := make(chan string, 10)
	out := &slowWriter{delay: 2 * time.Millisecond}
	var errOut syncBuffer
	o := Options{Config: conf, Stdout: out, Stderr: &errOut, Debug: true,
		Runner: func(ctx context.Context, line string) (int, error) { ran <- line; return 0, nil }}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan int, 1)
	go func() { done <- Live(ctx, o, nil) }()
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(out.String(), "starting up"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no start-up line: %s", errOut.String())
		}
	}
	time.Sleep(300 * time.Millisecond) // tail reaches the end of the file

	now := time.Now()
	var flood strings.Builder
	for i := range 4000 {
		flood.WriteString(kernLine(now, fmt.Sprintf("198.51.100.%d", i%250+1), 20000+i, 1234))
	}
	for i, port := range []int{7000, 8000, 9000} {
		flood.WriteString(kernLine(now, "192.0.2.10", 40000+i, port))
	}
	f, err := os.OpenFile(logPath, os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(flood.String())
	f.Close()
	start := time.Now()
	select {
	case line := <-ran:
		t.Logf("the knock opened %v after the flood was written", time.Since(start))
		if line != "open 192.0.2.10" {
			t.Fatalf("ran %q", line)
		}
	case <-time.After(4 * time.Second):
		t.Fatal("the knock behind the flood did not open within 4s with -D")
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
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
