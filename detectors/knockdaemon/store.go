package knockdaemon

import (
	"io"
	"time"

	"github.com/doorward/doorward/detectors"
	"github.com/doorward/doorward/internal/spent"
)

// The spent store follows the lifecycle of detectors/lifecycle.go, as
// doorman's hash archive does: New only computes its size (a store in
// memory when there is no file: replay, --check, tests), Commit opens the
// file once the config is accepted, Adopt copies in what the running
// detector recorded, Close closes the file. A store that cannot be opened
// rejects the config: a door configured with Spent_Knocks never accepts a
// knock without it (Spent_Knocks = 0 is the way to run without one).

var (
	_ detectors.Committer = (*Detector)(nil)
	_ io.Closer           = (*Detector)(nil)
)

// Commit opens the spent store's file, creating or resizing it
// (detectors.Committer). The daemon calls it once the whole config is
// accepted, before Adopt; an error rejects the config (at start, the
// daemon exits with it; on reload, the running config stays).
func (d *Detector) Commit() error {
	if d.spent != nil || d.spentSize == 0 {
		return nil // in memory, committed already, or no door uses one
	}
	s, info, err := spent.Open(d.spentPath, d.spentSize, spentOptions)
	if err != nil {
		return err
	}
	d.spent = s
	switch {
	case info.Created:
		d.logf("created port-span spent store %s (%d records)", d.spentPath, d.spentSize)
	case info.Resized:
		d.logf("resized port-span spent store %s from %d to %d records, %d kept", d.spentPath, info.From, d.spentSize, info.Kept)
	}
	return nil
}

// adoptSpent copies into d's store the knocks old's store has and d's
// lacks: those old accepted after d's Commit read the file (none when
// both run on the daemon's packet goroutine, but a write to the file may
// have failed), or all of them when d's store is another file or in
// memory. old keeps its store; its Close closes it.
func (d *Detector) adoptSpent(old *Detector) {
	if d.spent == nil || old.spent == nil || d.spent == old.spent {
		return
	}
	if err := d.spent.Merge(old.spent); err != nil {
		d.logf("error: %v", err)
	}
}

// Close closes the spent store's file: the detector was replaced (after
// its successor's Adopt), its config rejected or only checked, or the
// daemon stops. Safe on a detector never committed, and twice.
func (d *Detector) Close() error {
	if d.spent == nil {
		return nil
	}
	return d.spent.Close()
}

// spend records the knock dr's codec just accepted in the spent store and
// returns "", or says why the knock is refused: a part of its ciphertext
// was accepted before (a replay, or a forgery made of a captured knock),
// or it could not be recorded durably, or the store is not open (the
// detector was never committed: it accepts no knock). The record is on
// disk (fsynced) before spend returns, so before any action runs.
func (d *Detector) spend(dr *door, at time.Time) string {
	if d.spent == nil {
		return "the spent store is not open"
	}
	d.keys = dr.Codec.AppendSpentKeys(d.keys[:0])
	for _, k := range d.keys {
		if _, ok := d.spent.Lookup(spent.Digest(k)); ok {
			return "reuses the ciphertext of a knock already accepted (a replay or a forgery)"
		}
	}
	now := at.UnixNano()
	var err error
	for _, k := range d.keys {
		if err == nil {
			err = d.spent.Add(spent.Digest(k), now)
		}
	}
	if err == nil {
		err = d.spent.Sync()
	}
	if err != nil {
		d.logf("error: %v", err)
		return "could not be recorded as spent"
	}
	return ""
}
