//go:build linux

package daemon

import (
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/doorward/doorward/actions"
	"github.com/doorward/doorward/detectors"
	"github.com/doorward/doorward/detectors/capture"
	"github.com/doorward/doorward/detectors/pcaptest"
)

// blockSize is the live ring's block size (capture's default).
const blockSize = 32 << 10

// floodBlockCount is how many blocks the benchmarks flood with: 16,320
// sources, as many as the eight 256 KiB blocks of the ring before issue 14
// held, so the per-source table is as large as it was.
const floodBlockCount = 64

// blockConf is the door the block tests and benchmarks knock on.
const blockConf = "[openSSH]\n\tsequence = 7000,8000,9000\n\tseq_timeout = 5\n\ttcpflags = syn\n\tcommand = true\n"

// floodBlocks lays a spoofed SYN flood on port out in n ring blocks of
// blockSize, as the kernel fills them under a flood: every block full,
// sources spread over all of IPv4 and none repeated across the blocks. It
// returns the blocks and the packets in each.
func floodBlocks(tb testing.TB, n int, dst netip.Addr, port uint16) ([][]byte, int) {
	tb.Helper()
	at := time.Unix(1700000000, 0)
	var blocks [][]byte
	per, next := 0, 0
	for range n {
		var pkts [][]byte
		for i := range blockSize / 64 { // more than fit: LayoutBlock stops when full
			f := pcaptest.Frame{Time: at, Src: netip.AddrPortFrom(pcaptest.Spoofed(next+i), 40000),
				Dst: netip.AddrPortFrom(dst, port), Proto: detectors.TCP, Flags: detectors.SYN}
			pkts = append(pkts, pcaptest.EncodeIP(f))
		}
		blk, laid := capture.LayoutBlock(blockSize, pkts, at)
		if per != 0 && laid != per {
			tb.Fatalf("blocks of %d and %d packets", per, laid)
		}
		blocks, per, next = append(blocks, blk), laid, next+laid
	}
	return blocks, per
}

// blockLive is a live daemon's packet side, as Live sets it up, on a
// source that reads blocks from memory (l.sources[0]): the plan with the
// config's detectors, which the caller runs as a reader does
// (benchConsume). Events go to route.
func blockLive(b testing.TB, conf string, blocks [][]byte, route func(string, actions.Event)) (*live, *plan) {
	b.Helper()
	path := filepath.Join(b.TempDir(), "knockd.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		b.Fatal(err)
	}
	o := Options{Config: path, Stdout: io.Discard, Stderr: io.Discard}
	o.defaults()
	cfg, ok := o.load()
	if !ok {
		b.Fatal("config does not load")
	}
	log := o.logger(cfg, nil)
	b.Cleanup(log.Close)
	env := &Env{Logf: log.Logf, StateDir: b.TempDir()}
	p, err := startPlan(cfg, env, route)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(p.close)
	l := newLive(o, log, env, route, new(cmdLimit))
	l.plan.Store(p)
	src, err := capture.OpenBlocks(blocks, p.rules([]netip.Addr{netip.MustParseAddr("192.0.2.1")}))
	if err != nil {
		b.Fatal(err)
	}
	l.sources = append(l.sources, &liveSource{iface: "blocks", src: src})
	b.Cleanup(func() { src.Close() })
	return l, p
}

// cpuTime is the process's CPU time so far, user and system: wall time
// per packet hides what the runtime spends on other threads (a hand-off
// between goroutines, when there was one), and CPU per packet is what the
// issue is about.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkLiveBlock runs whole TPACKET blocks of a max-rate spoofed SYN
// flood on a door's first port (every packet starts an attempt) through the
// live packet path: the reader's ring walk, decode, match and copy, the
// lock that makes it the detectors' owner, and dispatch to them. One op is
// one block of the live ring; ns/pkt is per packet, and cpu-ns/pkt is the
// process's CPU (all goroutines, the runtime's too) per packet; allocs/op,
// a whole block's, must stay 0.
func BenchmarkLiveBlock(b *testing.B) { benchLiveBlocks(b, floodBlockCount) }

// BenchmarkLiveBlockEvict is BenchmarkLiveBlock with the flood the
// benchmark script sends (issue 14): four tables' worth of sources (the
// sequence default of 65,536), none repeated before it has been evicted,
// so every packet misses the full table, evicts the oldest source and
// takes its place, as under a real flood, instead of finding its source
// again.
func BenchmarkLiveBlockEvict(b *testing.B) {
	benchLiveBlocks(b, 4*65536/(blockSize/128)+1)
}

func benchLiveBlocks(b *testing.B, n int) {
	blocks, per := floodBlocks(b, n, netip.MustParseAddr("192.0.2.1"), 7000)
	l, _ := blockLive(b, blockConf, blocks, func(string, actions.Event) {})
	bt := newBatch(batchSize, maxPayload)
	for range 2 * len(blocks) { // the detectors' table reaches its steady state
		l.benchConsume(bt, per)
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime(b)
	for range b.N {
		l.benchConsume(bt, per)
	}
	b.StopTimer()
	pkts := float64(b.N * per)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/pkts, "ns/pkt")
	b.ReportMetric(float64((cpuTime(b)-cpu0).Nanoseconds())/pkts, "cpu-ns/pkt")
	b.ReportMetric(float64(per), "pkts/op")
}
