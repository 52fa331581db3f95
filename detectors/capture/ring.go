//go:build linux

package capture

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// ring is a SOCK_DGRAM AF_PACKET socket with a TPACKET_V3 receive ring
// (packet(7), Documentation/networking/packet_mmap.rst). The kernel fills
// fixed-size blocks with variable-size frames and hands a block over whole
// (when full, or when its retire timeout expires); userspace walks the
// block's frames and hands it back. One syscall-free walk per block is what
// makes the ring cheaper than a recv per packet.
//
// Only one goroutine may read (take, release, poll, the block); stats and
// setFilter may run concurrently with it. close must not.
type ring struct {
	fd        int
	mem       []byte // numBlocks blocks of blockSize bytes, shared with the kernel
	blockSize int
	numBlocks int
	next      int            // the block the kernel hands over next
	blk       block          // the block being read; blk.mem is nil when none is held
	pollfd    [1]unix.PollFd // kept here so poll does not allocate

	ifindex int // what the socket is bound to; 0: every interface
	closed  bool
	// loop: mem is not shared with a kernel but made by OpenBlocks; a
	// released block counts as handed over again at once.
	loop bool

	statsMu        sync.Mutex
	packets, drops uint64 // accumulated: PACKET_STATISTICS resets on every read
}

// Offsets into struct tpacket_block_desc (its tpacket_hdr_v1 starts at 8)
// and struct tpacket3_hdr, from <linux/if_packet.h>. The sockaddr_ll the
// kernel writes after a frame's header is at TPACKET_ALIGN(sizeof
// tpacket3_hdr) from the frame.
const (
	blkStatus     = 8
	blkNumPkts    = 12
	blkFirstPkt   = 16
	blkHeaderSize = 48 // sizeof(struct tpacket_block_desc)

	tpNextOffset = 0
	tpSec        = 4
	tpNsec       = 8
	tpSnaplen    = 12
	tpNet        = 26
	tpSockaddr   = (unix.SizeofTpacket3Hdr + unix.TPACKET_ALIGNMENT - 1) &^ (unix.TPACKET_ALIGNMENT - 1)
	sllIfindex   = tpSockaddr + 4
	sllPkttype   = tpSockaddr + 10
	tpMinFrame   = tpSockaddr + unix.SizeofSockaddrLinklayer
)

// openRing creates the socket, its ring and its filter, then binds it to
// ifindex (0: every interface). The socket is created with protocol 0,
// which receives nothing, and starts receiving only at bind, after the
// filter is attached: no packet the filter would refuse can slip into the
// ring in between, as it could when the filter was set after NewTPacket.
func openRing(ifindex int, prog []bpf.RawInstruction, opt Options) (*ring, error) {
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("socket: %w", err)
	}
	r := &ring{fd: fd, blockSize: opt.BlockSize, numBlocks: opt.NumBlocks}
	fail := func(what string, err error) (*ring, error) {
		r.close()
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VERSION, unix.TPACKET_V3); err != nil {
		return fail("set TPACKET_V3", err)
	}
	// Frames are variable in V3; frame size and count only have to be
	// consistent with the blocks for the kernel's checks.
	fs := min(frameSize, opt.BlockSize)
	req := unix.TpacketReq3{
		Block_size:     uint32(opt.BlockSize),
		Block_nr:       uint32(opt.NumBlocks),
		Frame_size:     uint32(fs),
		Frame_nr:       uint32(opt.BlockSize / fs * opt.NumBlocks),
		Retire_blk_tov: uint32(max(1, opt.BlockTimeout/time.Millisecond)),
	}
	if err := unix.SetsockoptTpacketReq3(fd, unix.SOL_PACKET, unix.PACKET_RX_RING, &req); err != nil {
		return fail("set up the ring", err)
	}
	r.mem, err = unix.Mmap(fd, 0, opt.BlockSize*opt.NumBlocks, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return fail("map the ring", err)
	}
	if err := r.setFilter(prog); err != nil {
		return fail("attach filter", err)
	}
	sa := &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifindex}
	if err := unix.Bind(fd, sa); err != nil {
		return fail("bind", err)
	}
	r.ifindex = ifindex
	if n, err := r.boundTo(); err == nil { // should the name have moved meanwhile
		r.ifindex = n
	}
	r.pollfd[0] = unix.PollFd{Fd: int32(fd), Events: unix.POLLIN}
	return r, nil
}

// htons puts v in network byte order, as bind wants sll_protocol.
func htons(v uint16) uint16 {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], v)
	return binary.NativeEndian.Uint16(b[:])
}

// setFilter attaches prog, replacing the filter in one step: the kernel
// swaps the program under the socket, so no packet meets neither.
func (r *ring) setFilter(prog []bpf.RawInstruction) error {
	if len(prog) == 0 || len(prog) > maxInsns {
		return fmt.Errorf("%d instructions", len(prog))
	}
	if r.loop {
		return nil
	}
	ins := make([]unix.SockFilter, len(prog))
	for i, p := range prog {
		ins[i] = unix.SockFilter{Code: p.Op, Jt: p.Jt, Jf: p.Jf, K: p.K}
	}
	return unix.SetsockoptSockFprog(r.fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER,
		&unix.SockFprog{Len: uint16(len(ins)), Filter: &ins[0]})
}

// boundTo is the interface the socket is bound to: the kernel sets it to -1
// when that interface is unregistered.
func (r *ring) boundTo() (int, error) {
	sa, err := unix.Getsockname(r.fd)
	if err != nil {
		return 0, err
	}
	ll, ok := sa.(*unix.SockaddrLinklayer)
	if !ok {
		return 0, errors.New("not a packet socket address")
	}
	return ll.Ifindex, nil
}

// status is the block's block_status word, which the kernel and userspace
// pass the block between with: read with acquire and written with release
// semantics, so the frames are read only after the kernel finished them and
// the block is handed back only after they were read.
func status(blk []byte) *uint32 { return (*uint32)(unsafe.Pointer(&blk[blkStatus])) }

// take makes the next block the current one if the kernel has handed it
// over. The current block must have been released.
func (r *ring) take() bool {
	m := r.mem[r.next*r.blockSize : (r.next+1)*r.blockSize : (r.next+1)*r.blockSize]
	if atomic.LoadUint32(status(m))&unix.TP_STATUS_USER == 0 {
		return false
	}
	r.blk = newBlock(m)
	return true
}

// release hands the current block, if any, back to the kernel. Frames read
// from it are invalid from here on.
func (r *ring) release() {
	if r.blk.mem == nil {
		return
	}
	st := uint32(unix.TP_STATUS_KERNEL)
	if r.loop {
		st = unix.TP_STATUS_USER
	}
	atomic.StoreUint32(status(r.blk.mem), st)
	r.blk = block{}
	r.next++
	if r.next == r.numBlocks {
		r.next = 0
	}
}

// poll waits up to timeout for the kernel to hand over a block. It reports
// whether one may be ready, and pollErr when the socket has an error
// pending (ENETDOWN: the interface went down).
func (r *ring) poll(timeout time.Duration) (ready, pollErr bool, err error) {
	r.pollfd[0].Revents = 0
	n, err := unix.Poll(r.pollfd[:], int(timeout/time.Millisecond))
	switch {
	case errors.Is(err, unix.EINTR):
		return false, false, nil
	case err != nil:
		return false, false, fmt.Errorf("poll: %w", err)
	case n == 0:
		return false, false, nil
	case r.pollfd[0].Revents&unix.POLLERR != 0:
		return false, true, nil
	}
	return true, false, nil
}

// clearError reads and so clears the socket's pending error, without which
// every later poll would return at once.
func (r *ring) clearError() {
	unix.GetsockoptInt(r.fd, unix.SOL_SOCKET, unix.SO_ERROR)
}

// stats returns the kernel's counters since the ring was opened: packets
// that passed the filter (dropped ones included, as the kernel counts them)
// and packets dropped because no block was free.
func (r *ring) stats() (packets, drops uint64, err error) {
	r.statsMu.Lock()
	defer r.statsMu.Unlock()
	if r.loop {
		return 0, 0, nil
	}
	st, err := unix.GetsockoptTpacketStatsV3(r.fd, unix.SOL_PACKET, unix.PACKET_STATISTICS)
	if err != nil {
		return 0, 0, err
	}
	r.packets += uint64(st.Packets)
	r.drops += uint64(st.Drops)
	return r.packets, r.drops, nil
}

// close unmaps the ring and closes the socket. Calling it again does nothing.
func (r *ring) close() {
	if r.closed {
		return
	}
	r.closed = true
	if r.loop {
		r.mem, r.blk = nil, block{}
		return
	}
	if r.mem != nil {
		unix.Munmap(r.mem)
		r.mem = nil
	}
	r.blk = block{}
	unix.Close(r.fd)
}

// block is one block handed over by the kernel, read one frame at a time.
// It is the unit a reader can take whole: every frame of it stays valid
// until the ring releases the block.
type block struct {
	mem  []byte // the whole block
	off  int    // offset of the next frame in mem
	left int    // frames not yet read
}

func newBlock(m []byte) block {
	n := int(binary.NativeEndian.Uint32(m[blkNumPkts:]))
	off := int(binary.NativeEndian.Uint32(m[blkFirstPkt:]))
	if off < blkHeaderSize || off > len(m) {
		n = 0
	}
	return block{mem: m, off: off, left: n}
}

// frame is one packet of a block.
type frame struct {
	data      []byte // from the IP header on (SOCK_DGRAM), as much as was captured
	sec, nsec uint32 // receive time
	ifindex   int32  // the interface it arrived on
	pktType   uint8  // PACKET_HOST, PACKET_OUTGOING, ... (sll_pkttype)
}

// next fills f with the block's next frame; false at the end of the block.
// A frame whose header or data does not fit in the block (which the kernel
// never writes) ends the block rather than read past it.
func (b *block) next(f *frame) bool {
	if b.left <= 0 {
		return false
	}
	b.left--
	h := b.mem[b.off:]
	if len(h) < tpMinFrame {
		b.left = 0
		return false
	}
	ne := binary.NativeEndian
	net, snap := int(ne.Uint16(h[tpNet:])), int(ne.Uint32(h[tpSnaplen:]))
	if net > len(h) || snap > len(h)-net {
		b.left = 0
		return false
	}
	f.data = h[net : net+snap : net+snap]
	f.sec, f.nsec = ne.Uint32(h[tpSec:]), ne.Uint32(h[tpNsec:])
	f.ifindex = int32(ne.Uint32(h[sllIfindex:]))
	f.pktType = h[sllPkttype]
	if step := int(ne.Uint32(h[tpNextOffset:])); step > 0 && step <= len(h) {
		b.off += step
	} else { // more frames announced, no way to them
		b.left = 0
	}
	return true
}
