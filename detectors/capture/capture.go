//go:build linux

// Package capture reads packets live from an interface through an AF_PACKET
// socket with a TPACKET_V3 ring of its own (ring.go, golang.org/x/sys/unix,
// no cgo), with a kernel BPF filter built from the detectors' rules so the
// host's other traffic never reaches userspace.
//
// The socket is SOCK_DGRAM ("cooked"): the kernel hands over every packet
// starting at its IP header whatever the interface's link layer, so
// Ethernet, tun/WireGuard and "any" all decode the same way and the filter
// needs only IP offsets. VLAN tags are already gone at that point (the
// kernel moves them into packet metadata on receive).
package capture

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"github.com/doorward/doorward/detectors"
	"github.com/doorward/doorward/detectors/decode"
)

// Options tune the ring. The zero value is fine.
type Options struct {
	// BlockSize and NumBlocks size the ring (BlockSize × NumBlocks bytes of
	// locked memory). BlockSize must be a multiple of the page size and
	// bounds the largest packet kept whole. Defaults: 32 KiB × 256.
	BlockSize, NumBlocks int
	// PollTimeout bounds how long a ReadPacket waits in the kernel before
	// it looks at the closed flag again, so it bounds how long Close waits.
	// Default 100ms.
	PollTimeout time.Duration
	// BlockTimeout is how long the kernel holds a partly filled block
	// before handing it over: the added latency of a lone knock. Default
	// 1ms, the least the kernel takes (whole milliseconds).
	BlockTimeout time.Duration
}

// The ring's shape sets how long a knock waits before the daemon sees it
// and how long a stall the daemon can take under a flood without losing
// packets (issue 14: knock-to-command p99 ≤ 2 ms and no kernel drops at the
// machine's max rate, about 500,000 SYNs/s on the benchmark VM).
//
// TPACKET_V3 hands a block to userspace only when it is full or when
// BlockTimeout has passed since it was opened, so a knock waits for the
// rest of its block to fill or for the timeout, whichever comes first.
// A spoofed SYN takes 128 bytes of a block (frame header, address, the
// 40-byte IP packet, alignment):
//   - BlockSize 32 KiB holds 255 of them, 0.5 ms of a 500,000/s flood, so
//     under a flood a knock reaches userspace within about 0.5 ms plus the
//     wake-up. The 256 KiB blocks before held 2,047: 4 ms, and the daemon
//     measured 3–6.5 ms from capture to command, almost all of it there.
//     Smaller blocks mean more wake-ups of the reader (about 2,000/s at
//     that rate, each a poll and a hand-off). A block still holds any
//     knock many times over; only packets larger than a block (GRO'd TCP
//     data) are cut, and no detector reads that far.
//   - BlockTimeout 1 ms bounds the wait of a lone knock when little else
//     arrives. The kernel takes it in whole milliseconds; on the
//     benchmark's kernel (6.18) lone knocks reached userspace within
//     0.2–1.1 ms, a kernel that runs the timer in jiffies may round it up
//     to one (4 ms at HZ=250). It was 20 ms.
//   - NumBlocks 256: 8 MiB of ring, 65,000 SYNs, 130 ms of that flood, for
//     the stalls of a busy machine (the scheduler, another process, a
//     fork). 2 MiB (8 × 256 KiB) lost 152–15,161 packets per benchmark
//     run on a quiet machine; 8 MiB lost none there (with other jobs
//     compiling on both cores it still lost 10,305 once: a stall of
//     some 200 ms). It is locked kernel memory, mapped into the daemon
//     (peak RSS about 23 MiB instead of 17).
const (
	defaultBlockSize    = 32 << 10
	defaultNumBlocks    = 256
	defaultPollTimeout  = 100 * time.Millisecond
	defaultBlockTimeout = time.Millisecond
	frameSize           = 4096 // TPACKET_V3 frames are variable; this only has to divide BlockSize
)

// ErrInterfaceGone is wrapped by ReadPacket's error when the interface the
// Source is bound to was deleted.
var ErrInterfaceGone = errors.New("interface is gone")

// Source is a live capture on one interface or on all of them.
type Source struct {
	name    string // interface name, or "any"
	ifindex int    // 0 for "any"
	r       *ring
	poll    time.Duration

	// mu is held for reading around every use of r and for writing only by
	// Close, because closing unmaps the ring that a concurrent read would be
	// looking at.
	mu     sync.RWMutex
	closed atomic.Bool
	match  atomic.Pointer[matcher]
	buf    []byte // payload copy: the ring block is reused and unmapped on Close
}

var _ detectors.Source = (*Source)(nil)

// Open starts capturing packets that match any of rules on iface ("" or
// "any": every interface). It does not set promiscuous mode, as knockd does
// not: only packets addressed to this host are seen.
func Open(iface string, rules []detectors.Rule, opt Options) (*Source, error) {
	name := iface
	if name == "" {
		name = "any"
	}
	m, raw, err := buildFilter(rules)
	if err != nil {
		return nil, fmt.Errorf("capture %s: %w", name, err)
	}
	if opt.BlockSize == 0 {
		opt.BlockSize = defaultBlockSize
	}
	if opt.NumBlocks == 0 {
		opt.NumBlocks = defaultNumBlocks
	}
	if opt.PollTimeout <= 0 {
		opt.PollTimeout = defaultPollTimeout
	}
	if opt.BlockTimeout <= 0 {
		opt.BlockTimeout = defaultBlockTimeout
	}
	ifindex := 0
	if name != "any" {
		ifi, err := net.InterfaceByName(name)
		if err != nil {
			return nil, fmt.Errorf("capture %s: %w", name, err)
		}
		ifindex = ifi.Index
	}
	r, err := openRing(ifindex, raw, opt)
	if err != nil {
		return nil, fmt.Errorf("capture %s: %w", name, err)
	}
	s := &Source{
		name:    name,
		ifindex: r.ifindex,
		r:       r,
		poll:    opt.PollTimeout,
		buf:     make([]byte, 0, 2048),
	}
	s.match.Store(m)
	return s, nil
}

// buildFilter compiles rules for the matcher and the kernel. A rule set
// too large for the kernel gets a coarse filter (all TCP or UDP), which the
// matcher makes exact again.
func buildFilter(rules []detectors.Rule) (*matcher, []bpf.RawInstruction, error) {
	m, err := newMatcher(rules)
	if err != nil {
		return nil, nil, err
	}
	prog, err := BuildFilter(rules)
	if errors.Is(err, ErrFilterTooLarge) {
		prog, err = coarse(rules)
	}
	if err != nil {
		return nil, nil, err
	}
	raw, err := bpf.Assemble(prog)
	if err != nil {
		return nil, nil, err
	}
	return m, raw, nil
}

// ReadPacket blocks until a packet matching the rules arrives and fills p.
// p.Payload is a copy owned by the Source, valid until the next ReadPacket.
// Only one goroutine may call it at a time.
//
// After Close it returns detectors.ErrClosed. If the interface is deleted it
// returns an error wrapping ErrInterfaceGone (within PollTimeout); the
// caller should Close and Open again once the interface is back, since the
// socket stays bound to the old one. An interface that merely goes down and
// up again needs nothing: reading resumes by itself.
func (s *Source) ReadPacket(p *detectors.Packet) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var f frame
	for {
		if err := s.wait(); err != nil {
			return err
		}
		for s.r.blk.next(&f) {
			if s.accept(&f, p) {
				s.buf = append(s.buf[:0], p.Payload...)
				p.Payload = s.buf
				return nil
			}
		}
	}
}

// ReadBatch is ReadPacket for many packets at once: it blocks until at
// least one packet matching the rules arrives, then fills pkts from the
// ring block it holds, up to len(pkts), without waiting for the next
// block. It returns how many it filled, and returns the block to the kernel
// as soon as it has read all of it. Each packet's payload is copied into
// the buffer pkts[i].Payload already has (its capacity; what does not fit
// is cut), so the packets stay valid after the block goes back and
// reading allocates nothing. The errors are ReadPacket's.
//
// It exists so that a caller handing packets to another goroutine pays
// that hand-off once per batch, not once per packet (see the daemon).
func (s *Source) ReadBatch(pkts []detectors.Packet) (int, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var f frame
	n := 0
	for n == 0 {
		if err := s.wait(); err != nil {
			return 0, err
		}
		for n < len(pkts) && s.r.blk.next(&f) {
			p := &pkts[n]
			buf := p.Payload[:0]
			if s.accept(&f, p) {
				p.Payload = append(buf, p.Payload[:min(len(p.Payload), cap(buf))]...)
				n++
			} else {
				p.Payload = buf
			}
		}
	}
	if s.r.blk.left <= 0 {
		s.r.release()
	}
	return n, nil
}

// wait returns once the ring holds a block with frames left to read,
// handing read blocks back to the kernel and polling for the next one.
func (s *Source) wait() error {
	for {
		if s.closed.Load() {
			return detectors.ErrClosed
		}
		if s.r.blk.mem != nil && s.r.blk.left > 0 {
			return nil
		}
		s.r.release()
		if s.r.take() {
			continue
		}
		ready, pollErr, err := s.r.poll(s.poll)
		if err != nil {
			return fmt.Errorf("capture %s: %w", s.name, err)
		}
		if ready {
			continue
		}
		// A bound interface that goes away shows up as a poll error, or
		// (when it went down first) as silence: check on both. A link
		// that is merely down has nothing to read until it is up again.
		if gone := s.checkInterface(pollErr); gone != nil {
			return fmt.Errorf("capture %s: %w", s.name, gone)
		}
	}
}

// accept decodes f into p and reports whether it is a packet for the
// rules; p.Payload then points into the ring block. The filter already dropped this host's own outgoing packets and
// all the rules do not want; the matcher checks again for the packets a
// coarse filter, or the filter before a SetFilter, let through.
func (s *Source) accept(f *frame, p *detectors.Packet) bool {
	if f.pktType == unix.PACKET_OUTGOING {
		return false
	}
	if !decode.Decode(decode.Raw, f.data, p) || !s.match.Load().match(p) {
		return false
	}
	p.Time = time.Unix(int64(f.sec), int64(f.nsec))
	return true
}

// checkInterface reports whether the bound interface was deleted. The
// kernel raises ENETDOWN on the socket when the interface goes down (also
// the first step of a deletion), and unbinds the socket (ifindex -1) when it
// is unregistered. Reading SO_ERROR clears the error, without which every
// later poll would fail at once.
func (s *Source) checkInterface(pollErr bool) error {
	if pollErr {
		s.r.clearError()
	}
	if s.ifindex == 0 {
		return nil
	}
	if n, err := s.r.boundTo(); err == nil && n != s.ifindex {
		return ErrInterfaceGone
	}
	return nil
}

// SetFilter replaces the rules in place, for a reload that keeps the
// interface. Packets the old filter let into the ring before the swap are
// checked against the new rules, so the output follows the new rules from
// the moment SetFilter returns. On error the old rules stay.
func (s *Source) SetFilter(rules []detectors.Rule) error {
	m, raw, err := buildFilter(rules)
	if err != nil {
		return fmt.Errorf("capture %s: %w", s.name, err)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed.Load() {
		return detectors.ErrClosed
	}
	old := s.match.Swap(m)
	if err := s.r.setFilter(raw); err != nil {
		s.match.Store(old)
		return fmt.Errorf("capture %s: attach filter: %w", s.name, err)
	}
	return nil
}

// Stats reports the kernel's counters since Open: packets that passed the
// filter (dropped ones included, as the kernel counts them) and packets
// dropped because the ring was full.
func (s *Source) Stats() (received, dropped uint64, err error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed.Load() {
		return 0, 0, detectors.ErrClosed
	}
	received, dropped, err = s.r.stats()
	if err != nil {
		return 0, 0, fmt.Errorf("capture %s: stats: %w", s.name, err)
	}
	return received, dropped, nil
}

// Close stops the capture. A ReadPacket blocked in another goroutine
// returns detectors.ErrClosed within PollTimeout; Close waits for it so the
// ring is never unmapped under a reader. Calling Close again does nothing.
func (s *Source) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.r.close()
	return nil
}

func (s *Source) String() string { return "capture:" + s.name }
