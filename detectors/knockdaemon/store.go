package knockdaemon

import (
	"errors"
	"io"
	"time"

	"github.com/doorward/doorward/actions"
	kdaction "github.com/doorward/doorward/actions/knockdaemon"
	"github.com/doorward/doorward/detectors"
)

// The spent store follows the lifecycle of detectors/lifecycle.go, as
// doorman's hash archive does: New only computes its size (a store in
// memory of the detector's own when it is given none: tests), Commit opens
// the space of the daemon's Store once the config is accepted (the same
// space as the running detector's), Close releases it. A store that cannot be opened
// rejects the config: a door configured with Spent_Knocks never accepts a
// knock without it (Spent_Knocks = 0 is the way to run without one).

var (
	_ detectors.Committer = (*Detector)(nil)
	_ io.Closer           = (*Detector)(nil)
)

// Commit opens the spent store's space, creating or resizing its file
// (detectors.Committer). The daemon calls it once the whole config is
// accepted, before Adopt; an error rejects the config (at start, the
// daemon exits with it; on reload, the running config stays).
func (d *Detector) Commit() error {
	if d.spent != nil || d.spentSize == 0 {
		return nil // in memory, committed already, or no door uses one
	}
	s, info, err := d.store.Tokens(d.space())
	if err != nil {
		return err
	}
	d.spent = s
	path := d.spentPath
	if path == "" {
		path = SpentFile
	}
	switch {
	case info.Created:
		d.logf("created port-span spent store %s (%d records)", path, d.spentSize)
	case info.Resized:
		d.logf("resized port-span spent store %s from %d to %d records, %d kept", path, info.From, d.spentSize, info.Kept)
	}
	return nil
}

// Close releases the spent store's space: the detector was replaced
// (after its successor's Adopt), its config rejected or only checked, or
// the daemon stops. The file stays open while the successor holds the
// space. Safe on a detector never committed, and twice.
func (d *Detector) Close() error {
	if d.spent == nil {
		return nil
	}
	err := d.spent.Close()
	d.spent = nil
	return err
}

// spend records the knock dr's codec just accepted in the spent store and
// returns "", or says why the knock is refused (and its reason for the
// metrics), and whether that is worth a line: a shared store that cannot
// be reached logged its outage once, so its refusals are quiet. Refused:
// a part of its ciphertext
// was accepted before (a replay, or a forgery made of a captured knock),
// or it could not be recorded durably, or the store is not open (the
// detector was never committed: it accepts no knock). The check and the
// record are one Spend: two detectors (or hosts) sharing the space cannot
// both accept one knock. The record is on disk (fsynced) before spend
// returns, so before any action runs.
func (d *Detector) spend(dr *door, at time.Time) (why, reason string, quiet bool) {
	if d.spent == nil {
		return "the spent store is not open", kdaction.ReasonSpentStore, false
	}
	d.keys = dr.Codec.AppendSpentKeys(d.keys[:0])
	d.tokens = d.tokens[:0]
	for i := range d.keys {
		d.tokens = append(d.tokens, d.keys[i][:])
	}
	got, err := d.spent.Spend(at, d.tokens...)
	if err != nil {
		quiet = errors.Is(err, actions.ErrUnavailable)
		if !quiet {
			d.logf("error: %v", err)
		}
		return "could not be recorded as spent", kdaction.ReasonSpentStore, quiet
	}
	if !got.Fresh {
		return "reuses the ciphertext of a knock already accepted (a replay or a forgery)", kdaction.ReasonReplay, false
	}
	return "", "", false
}
