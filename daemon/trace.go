package daemon

import (
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/doorward/doorward/detectors"
)

// traceQueue bounds the -D packet lines waiting to be written. A slow
// terminal or a paused pipe fills it; then lines are dropped and counted,
// and the packet loop goes on at full speed.
const traceQueue = 1024

// trace is one -D packet line's fields, copied by value: the packet loop
// neither formats nor writes it, and allocates nothing for it.
type trace struct {
	time     time.Time
	proto    detectors.Proto
	src, dst netip.AddrPort
	length   int
}

func traceOf(p *detectors.Packet) trace {
	return trace{time: p.Time, proto: p.Proto, src: netip.AddrPortFrom(p.Src, p.SrcPort), dst: netip.AddrPortFrom(p.Dst, p.DstPort), length: p.Length}
}

// write prints knockd's -D packet line (with the month right: knockd's is
// off by one).
func (t trace) write(log *Logger) {
	log.Debugf("%s: %s: %s -> %s %d bytes", t.time.Local().Format("2006-01-02 15:04:05"), t.proto, t.src, t.dst, t.length)
}

// tracer writes live mode's -D packet lines from its own goroutine, so
// stdout's speed never slows the packet path (under a flood with -D, knocks
// still open). Lines that find the queue full are dropped; the count is
// written before the next line that gets through, and at close.
type tracer struct {
	log     *Logger
	q       chan trace
	dropped atomic.Uint64
	stop    atomic.Bool // shutting down: count what is left, write none
	done    chan struct{}
}

func newTracer(log *Logger) *tracer {
	t := &tracer{log: log, q: make(chan trace, traceQueue), done: make(chan struct{})}
	go t.run()
	return t
}

// packet queues p's line; it never blocks.
func (t *tracer) packet(p *detectors.Packet) {
	select {
	case t.q <- traceOf(p):
	default:
		t.dropped.Add(1)
	}
}

func (t *tracer) run() {
	defer close(t.done)
	for tr := range t.q {
		if t.stop.Load() {
			t.dropped.Add(1)
			continue
		}
		t.reportDrops()
		tr.write(t.log)
	}
	t.reportDrops()
}

func (t *tracer) reportDrops() {
	if n := t.dropped.Swap(0); n > 0 {
		t.log.Debugf("-D: %d packet trace lines dropped (output too slow)", n)
	}
}

// close stops the writer, counting the lines still queued as dropped, so a
// slow stdout cannot delay shutdown. Call it after the packet loop stopped.
func (t *tracer) close() {
	t.stop.Store(true)
	close(t.q)
	<-t.done
}
