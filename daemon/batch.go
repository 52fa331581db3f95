package daemon

import "github.com/doorward/doorward/detectors"

// Packets reach the detectors in batches, on the goroutine that read them.
//
// Each source has a reader goroutine (capture, the firewall log). The
// detectors need no locks of their own because only one goroutine runs
// them at a time: whoever holds live.owner, a reader dispatching the batch
// it just read, or Live's loop for ticks, reloads and refilters. A capture
// reader decodes what the ring block it holds has, up to batchSize
// packets, into its batch (capture.ReadBatch: no allocation, payloads
// copied so the block goes back to the kernel at once), takes the lock and
// runs the batch through the detectors itself.
//
// Why not hand the batch to a goroutine that owns the detectors, as before
// (issue 14): under a max-rate flood that hand-off, though paid per batch,
// still cost about a third of the daemon's CPU, nearly all of it in the Go
// scheduler and the kernel rather than in the channel: each hand-off woke
// an idle thread (futex), which found the detectors' goroutine, ran it for
// the batch, spun looking for more work (with a nanosleep when it tried to
// steal the reader's next goroutine) and went back to sleep, twice per ring
// block, on top of the reader's own poll. With the reader running the
// detectors, a ring block costs one wake-up, the reader's, and one
// uncontended lock per batch.
//
// Why these bounds:
//   - Latency: the lock is released after each batch, so a tick, a reload
//     or SIGTERM waits at most one batch's dispatch (batchSize packets,
//     tens of microseconds), however long the flood lasts. The other way
//     round, a reader waits for a tick's work: that is why expiry is swept
//     a slice at a time (sweepParts). A ring block of
//     SYNs (32 KiB, 255 of them) is two batches.
//   - Memory: each reader owns one batch and reads no further until it is
//     dispatched; meanwhile the packets wait in the kernel's ring, which
//     absorbs a burst and counts what it cannot hold (the drops logged and
//     reported at shutdown). Nothing queues up in the daemon.
//   - Several sources (interfaces, the log) take turns at the lock, a
//     batch at a time; none can take another's batch.
//
// The log source dispatches one packet per batch: it reads a line at a
// time, and a knock in the log must not wait for more lines.
type batch struct {
	pkts []detectors.Packet // pkts[:n] are the packets read
	n    int
}

// batchSize bounds the packets dispatched under the lock at once.
const batchSize = 128

// newBatch preallocates a reader's batch of size packets, each with
// payload bytes of payload buffer.
func newBatch(size, payload int) *batch {
	b := &batch{pkts: make([]detectors.Packet, size)}
	for i := range b.pkts {
		b.pkts[i].Payload = make([]byte, 0, payload)
	}
	return b
}
