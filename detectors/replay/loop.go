package replay

import (
	"errors"
	"io"
	"time"

	"github.com/doorward/doorward/detectors"
)

// Loop drives a finite detectors.Source (a capture through Open, a firewall
// log through logtail.OpenFile) to its end with packet time as the only
// clock, so a replay triggers exactly what the same traffic did live, and
// gives the same result every time. It is the one replay loop: knockd
// --replay and the detectors' test harness differ only in their Hooks.
//
// A Loop reads into one Packet it owns and calls no hook that was not
// given, so a replay costs no allocation per packet (floods of many
// thousand sources are replayed in tests).
type Loop struct {
	src    detectors.Source
	now    *time.Time
	pkt    detectors.Packet
	peeked bool // pkt holds the first packet, read by Peek, still to be handled
	eof    bool // the source ended during Peek
}

// Hooks are what a replay does at each step; a nil hook is skipped. For
// each packet the Loop sets the clock to the packet's time, then calls
// Advance, Tick (at its cadence) and Packet, in that order. At the end of
// the source it runs out the clock: for each deadline Due names, the clock
// moves there and Expire, then Advance, run; last the clock moves on by
// Linger and Expire runs once more, so every attempt in progress times out.
type Hooks struct {
	// Advance runs what is due by now before the packet is seen: the
	// engine's stop commands, a protocol's delayed actions.
	Advance func(now time.Time)
	// Tick is the detectors' housekeeping before a packet (expire
	// attempts, re-read edited files), called before the first packet and
	// then once TickEvery of packet time has passed since the last call;
	// 0 calls it before every packet. The live daemon ticks once a second;
	// a flood of many thousand sources needs that too, since a sweep per
	// packet is quadratic.
	Tick      func(now time.Time)
	TickEvery time.Duration
	// Packet handles the packet: dispatch it, and whatever follows.
	Packet func(p *detectors.Packet)

	// Due is the next deadline to run the clock out to, given the time the
	// source ended at (the last packet's); false when nothing is left to
	// run. It is called again after each deadline has run.
	Due func(end time.Time) (time.Time, bool)
	// Expire times out the detectors' attempts at each deadline and at the
	// very end.
	Expire func(now time.Time)
	// Linger is how far the clock moves past the last deadline for the
	// final Expire: the longest an attempt can stay open.
	Linger time.Duration
}

// NewLoop returns a loop over src that keeps its clock in *now: log lines
// and timers read it there.
func NewLoop(src detectors.Source, now *time.Time) *Loop {
	return &Loop{src: src, now: now}
}

// Peek reads the first packet and sets the clock to its time before Run,
// so that what is logged while the replay is being set up carries capture
// time too. A source without packets is not an error; the clock is left
// alone.
func (l *Loop) Peek() error {
	if l.peeked || l.eof {
		return nil
	}
	err := l.src.ReadPacket(&l.pkt)
	switch {
	case errors.Is(err, io.EOF):
		l.eof = true
		return nil
	case err != nil:
		return err
	}
	l.peeked = true
	*l.now = l.pkt.Time
	return nil
}

// Run replays the source to its end with h, then runs out the clock. A
// read error other than the end of the source stops the replay without
// running out the clock and is returned.
func (l *Loop) Run(h Hooks) error {
	var ticked time.Time
	first := true
	for !l.eof {
		if !l.peeked {
			err := l.src.ReadPacket(&l.pkt)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return err
			}
		}
		l.peeked = false
		now := l.pkt.Time
		*l.now = now
		if h.Advance != nil {
			h.Advance(now)
		}
		if h.Tick != nil && (first || now.Sub(ticked) >= h.TickEvery) {
			h.Tick(now)
			ticked, first = now, false
		}
		if h.Packet != nil {
			h.Packet(&l.pkt)
		}
	}
	l.eof = true
	l.runOut(h)
	return nil
}

// runOut runs what is due after the last packet in time order, then moves
// the clock past every attempt. A source without packets leaves a zero
// clock and nothing to time out.
func (l *Loop) runOut(h Hooks) {
	end := *l.now
	for h.Due != nil {
		t, ok := h.Due(end)
		if !ok {
			break
		}
		*l.now = t
		if h.Expire != nil {
			h.Expire(t)
		}
		if h.Advance != nil {
			h.Advance(t)
		}
	}
	if l.now.IsZero() {
		return
	}
	*l.now = l.now.Add(h.Linger)
	if h.Expire != nil {
		h.Expire(*l.now)
	}
}
