//go:build linux

package capture

import (
	"encoding/binary"
	"fmt"
	"time"

	"golang.org/x/sys/unix"

	"github.com/doorward/doorward/detectors"
)

// LayoutBlock lays packets (each from its IP header on, as the SOCK_DGRAM
// ring holds them) out in a TPACKET_V3 block of size bytes exactly as the
// kernel does, received at at, and marks the block handed to userspace. It
// lays out as many as fit and returns the block and how many that is.
//
// With OpenBlocks it lets a benchmark or a test drive the whole read path
// above the kernel (block walk, decode, match, payload copy) and what the
// caller does with the packets, without a socket or a sender whose timing
// would blur the numbers.
func LayoutBlock(size int, pkts [][]byte, at time.Time) ([]byte, int) {
	b := make([]byte, size)
	ne := binary.NativeEndian
	ne.PutUint32(b[blkStatus:], unix.TP_STATUS_USER)
	ne.PutUint32(b[blkFirstPkt:], blkHeaderSize)
	off, n, prev := blkHeaderSize, 0, -1
	for _, data := range pkts {
		if off+frameNet+len(data) > size {
			break
		}
		if prev >= 0 {
			ne.PutUint32(b[prev+tpNextOffset:], uint32(off-prev))
		}
		layFrame(b[off:], data, uint32(at.Unix()), uint32(at.Nanosecond()), 1, unix.PACKET_HOST)
		prev, off, n = off, off+frameStep(len(data)), n+1
	}
	ne.PutUint32(b[blkNumPkts:], uint32(n))
	return b, n
}

// frameNet is where a frame's data starts, as the kernel places it for a
// SOCK_DGRAM socket: after the tpacket3_hdr and the sockaddr_ll, with room
// left for a link header.
const frameNet = tpMinFrame + 16

// frameStep is the distance from one frame to the next: the data, then
// TPACKET_ALIGN.
func frameStep(n int) int {
	return (frameNet + n + unix.TPACKET_ALIGNMENT - 1) &^ (unix.TPACKET_ALIGNMENT - 1)
}

// layFrame writes one frame's header and data at h; its tp_next_offset is
// left 0 (the last frame), for the caller to set once another follows.
func layFrame(h, data []byte, sec, nsec uint32, ifindex int32, pktType uint8) {
	ne := binary.NativeEndian
	ne.PutUint32(h[tpNextOffset:], 0)
	ne.PutUint32(h[tpSec:], sec)
	ne.PutUint32(h[tpNsec:], nsec)
	ne.PutUint32(h[tpSnaplen:], uint32(len(data)))
	ne.PutUint16(h[tpNet:], frameNet)
	ne.PutUint32(h[sllIfindex:], uint32(ifindex))
	h[sllPkttype] = pktType
	copy(h[frameNet:], data)
}

// OpenBlocks is a Source over blocks made by LayoutBlock instead of a
// socket: they are read in turn, round and round, each handed back filled
// the moment it is released (so a reader never waits), through the same
// walk, decode and match as a live capture. All blocks must have the same
// size. Stats reports zeros; SetFilter changes only the matcher.
func OpenBlocks(blocks [][]byte, rules []detectors.Rule) (*Source, error) {
	if len(blocks) == 0 {
		return nil, fmt.Errorf("capture blocks: no block")
	}
	m, err := newMatcher(rules)
	if err != nil {
		return nil, fmt.Errorf("capture blocks: %w", err)
	}
	size := len(blocks[0])
	r := &ring{fd: -1, blockSize: size, numBlocks: len(blocks), loop: true}
	for _, b := range blocks {
		if len(b) != size {
			return nil, fmt.Errorf("capture blocks: blocks of %d and %d bytes", size, len(b))
		}
		r.mem = append(r.mem, b...)
	}
	s := &Source{name: "blocks", r: r, poll: defaultPollTimeout, buf: make([]byte, 0, 2048)}
	s.match.Store(m)
	return s, nil
}
