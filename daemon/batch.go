package daemon

import "github.com/doorward/doorward/detectors"

// Packets reach the detectors in batches, not one by one.
//
// Each source has a reader goroutine (capture, the firewall log), and one
// goroutine owns every detector, so detectors need no locks; it also serves
// ticks, SIGHUP, reloads and shutdown between packets. Handing every packet
// across on a channel cost a quarter of the daemon's CPU under a max-rate
// flood (issue 14: selectgo, lock2/unlock2, futex wake-ups and task
// switches, each paid per packet). So a capture reader decodes what the
// ring block it holds has, up to batchSize packets, into a batch of its own
// (capture.ReadBatch: no allocation, payloads copied so the block goes back
// to the kernel at once) and hands the batch over whole; the channel and
// the scheduler are paid per batch, a few nanoseconds per packet.
//
// Why these bounds:
//   - Latency: the detectors' goroutine returns to its select after each
//     batch, so a tick, a reload or SIGTERM waits at most one batch's
//     dispatch (batchSize packets, tens of microseconds), however long the
//     flood lasts. A ring block of SYNs (32 KiB, 255 of them) is two
//     batches.
//   - Memory: each reader owns batchesPerReader batches and no more; a
//     reader with none free waits and leaves the packets in the kernel's
//     ring, which absorbs a burst and counts what it cannot hold (the drops
//     logged and reported at shutdown). Nothing queues up in the daemon.
//   - Two batches per reader: the reader fills one while the detectors'
//     goroutine dispatches the other, as the 256 shared slots allowed
//     before; one reader's flood cannot take another's batches, so several
//     interfaces and the log source keep their own way in.
//
// The log source hands over one packet per batch: it reads a line at a
// time, and a knock in the log must not wait for more lines.
type batch struct {
	pkts []detectors.Packet // pkts[:n] are the packets handed over
	n    int
	home chan *batch // its reader's free batches, where the batch goes back after dispatch
}

const (
	// batchSize bounds the packets handed over at once.
	batchSize = 128
	// batchesPerReader bounds the batches a reader fills or has in flight.
	batchesPerReader = 2
	// handoff is the capacity of the channel batches are handed over on;
	// a reader that finds it full waits (or stops, on shutdown).
	handoff = 16
)

// newBatches preallocates a reader's batches of size packets, each with
// payload bytes of payload buffer, and returns them as its free list.
func newBatches(size, payload int) chan *batch {
	free := make(chan *batch, batchesPerReader)
	for range batchesPerReader {
		b := &batch{pkts: make([]detectors.Packet, size), home: free}
		for i := range b.pkts {
			b.pkts[i].Payload = make([]byte, 0, payload)
		}
		free <- b
	}
	return free
}
