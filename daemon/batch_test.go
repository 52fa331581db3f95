//go:build linux

package daemon

import (
	"context"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/doorward/doorward/actions"
	"github.com/doorward/doorward/detectors"
	"github.com/doorward/doorward/detectors/capture"
	"github.com/doorward/doorward/detectors/pcaptest"
)

// TestBatchesOpenAcrossBoundaries: a knock whose packets land in different
// batches, in the middle of a spoofed flood on the same port, opens the
// door once: batches keep the packets' order and lose none, and every
// packet of the block is dispatched exactly once.
func TestBatchesOpenAcrossBoundaries(t *testing.T) {
	at := time.Unix(1700000000, 0)
	dst := netip.MustParseAddr("192.0.2.1")
	knocker := netip.MustParseAddr("198.51.100.7")
	const total = 3*batchSize + 17
	knocks := map[int]uint16{batchSize - 1: 7000, batchSize: 8000, total - 1: 9000}
	var pkts [][]byte
	for i := range total {
		f := pcaptest.Frame{Time: at, Src: netip.AddrPortFrom(pcaptest.Spoofed(i), 40000),
			Dst: netip.AddrPortFrom(dst, 7000), Proto: detectors.TCP, Flags: detectors.SYN}
		if port, ok := knocks[i]; ok {
			f.Src, f.Dst = netip.AddrPortFrom(knocker, 40000), netip.AddrPortFrom(dst, port)
		}
		pkts = append(pkts, pcaptest.EncodeIP(f))
	}
	// A block larger than the live ring's, so one holds several batches.
	blk, n := capture.LayoutBlock(8*blockSize, pkts, at)
	if n != total {
		t.Fatalf("laid out %d of %d", n, total)
	}
	var opened []netip.Addr
	l, _ := blockLive(t, blockConf, [][]byte{blk}, func(_ string, ev actions.Event) { opened = append(opened, ev.Addr) })
	b := newBatch(batchSize, maxPayload)
	var sizes []int
	for got := 0; got < total; {
		if _, err := l.pump(context.Background(), l.sources[0].src, b); err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, b.n)
		got += b.n
	}
	if want := []int{batchSize, batchSize, batchSize, 17}; !slices.Equal(sizes, want) {
		t.Errorf("batches of %v packets, want %v", sizes, want)
	}
	if len(opened) != 1 || opened[0] != knocker {
		t.Errorf("opened for %v, want %v once", opened, knocker)
	}
}
