package sequence

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"time"

	"github.com/doorward/doorward/actions"
	"github.com/doorward/doorward/detectors"
	"github.com/doorward/doorward/formats/rotating"
)

// Rotating doors (docs/rotating.md) expect the sequence of any window
// from T-Skew to T+Skew, T the time step of the packet. The capture
// filter and the dispatch index hold the door's whole port set, so they
// never change; what changes is which ports start an attempt. The
// detector derives each door's accepted sequences once per time step, on
// the first packet of a new step (roll), and keeps their first ports in
// an index of its own (rfirst), so a packet costs one comparison more
// than at a fixed door and no HMAC. An attempt remembers its window, and
// its next step is looked up in that window's sequence while the window
// is still accepted.
//
// A completed sequence opens the door only once: its window is spent in
// the state layer's token space SpentSpace first (one atomic Spend, on
// this host or, with a shared backend, on any), and a sequence whose
// window was spent is refused, from whatever address.

// Rotating is a rotating door's derivation.
type Rotating struct {
	Params rotating.Params // Door is the section name
	Skew   int             // windows accepted either side of the current one
}

// window is one accepted time step of a rotating door and its sequence.
type window struct {
	t   int64
	seq []Step // nil when the derivation failed
}

// rentry is one accepted window's first knock in the rotating index:
// entries of one (proto, port) are chained by next (-1 ends).
type rentry struct {
	door int32
	next int32
	win  int64
}

// SpentSpace is the token space where rotating windows are spent: a ring
// in the state directory of the embedded backend.
const SpentSpace = "rotating.spent"

// minSpent is the least size of the spent ring.
const minSpent = 256

// rotatingState is the part of the Detector that serves rotating doors.
type rotatingState struct {
	rot    []int            // indexes of the rotating doors
	rfirst map[uint32]int32 // (proto, port) → first entry in rents
	rents  []rentry         // the accepted windows' first knocks
	wins   [][]window       // by door: its accepted windows, oldest first
	from   int64            // UnixNano: the windows are valid from here…
	until  int64            // …until here (a packet outside rolls them)
	store  actions.Store    // where spent windows are recorded
	spent  actions.Tokens   // open once committed
	size   int              // of the spent space
	keep   time.Duration    // how long a spent window matters
}

var (
	_ detectors.Committer = (*Detector)(nil)
	_ io.Closer           = (*Detector)(nil)
)

// initRotating finds the rotating doors; their windows are derived at
// the first packet.
func (d *Detector) initRotating(store actions.Store) {
	r := &d.rs
	r.store = store
	r.rfirst = map[uint32]int32{}
	r.wins = make([][]window, len(d.doors))
	r.until = math.MinInt64 // roll at the first packet
	for i := range d.doors {
		rd := d.doors[i].Rotating
		if rd == nil {
			continue
		}
		r.rot = append(r.rot, i)
		ws := make([]window, 2*rd.Skew+1)
		for j := range ws {
			ws[j].seq = make([]Step, 0, rd.Params.Length)
		}
		r.wins[i] = ws
		// A door spends at most one window per period, and a spent
		// window matters while it is accepted: 2*Skew+1 windows, one
		// more for a window that rolls while a knock completes.
		r.size += 2*rd.Skew + 2
		r.keep = max(r.keep, time.Duration(2*rd.Skew+2)*time.Duration(rd.Params.Period)*time.Second)
	}
	r.size = max(minSpent, 4*r.size)
}

// roll derives the accepted windows of every rotating door at now and
// rebuilds the index of their first knocks. It runs once per time step
// (and when packet time goes back, as it may in a replay).
func (d *Detector) roll(now time.Time) {
	r := &d.rs
	clear(r.rfirst)
	r.rents = r.rents[:0]
	r.from, r.until = math.MinInt64, math.MaxInt64
	for _, di := range r.rot {
		rd := d.doors[di].Rotating
		p := &rd.Params
		t := rotating.Window(now, p.Period)
		r.from = max(r.from, rotating.Start(t, p.Period).UnixNano())
		r.until = min(r.until, rotating.Start(t+1, p.Period).UnixNano())
		ws := r.wins[di] // oldest first
		for j := range ws {
			w := t - int64(rd.Skew) + int64(j)
			seq, err := rotating.Derive(ws[j].seq, p, w)
			if err != nil { // the config was checked: cannot happen
				d.logf("%s: rotating sequence of window %d: %v", d.doors[di].Name, w, err)
			}
			ws[j] = window{t: w, seq: seq}
		}
		for _, w := range ws {
			if len(w.seq) == 0 {
				continue
			}
			k := key(w.seq[0].Proto, w.seq[0].Port)
			head, ok := r.rfirst[k]
			if !ok {
				head = -1
			}
			r.rents = append(r.rents, rentry{door: int32(di), next: head, win: w.t})
			r.rfirst[k] = int32(len(r.rents) - 1)
		}
	}
}

// seqOf is the sequence attempt a follows: its door's, or for a rotating
// door its window's, nil once that window is no longer accepted.
func (d *Detector) seqOf(door *Door, di int32, win int64) []Step {
	if door.Rotating == nil {
		return door.Seq
	}
	for _, w := range d.rs.wins[di] {
		if w.t == win {
			return w.seq
		}
	}
	return nil
}

// spendWindow records door's window win as spent and says why the knock
// must be refused, or "" when it may open the door. quiet: refused, but
// not worth a line, because the shared store cannot be reached and logged
// that once itself.
func (d *Detector) spendWindow(door *Door, win int64, at time.Time) (why string, quiet bool) {
	if d.rs.spent == nil {
		return "the spent rotating sequences are not open (the detector was not committed)", false
	}
	got, err := d.rs.spent.Spend(at, spentToken(door.Key, win))
	switch {
	case err != nil:
		return "could not mark the rotating sequence used: " + err.Error(), errors.Is(err, actions.ErrUnavailable)
	case !got.Fresh:
		return fmt.Sprintf("the rotating sequence of window %d was used already", win), false
	}
	return "", false
}

// spentToken names a door's window in the spent space, the same on every
// host that shares it: a digest (the ring keeps 16 bytes) of the door key
// and the window.
func spentToken(door string, win int64) []byte {
	h := sha256.Sum256([]byte(rotating.Label + "|spent|" + door + "|" + strconv.FormatInt(win, 10)))
	return h[:16]
}

// Commit opens the spent space of the state layer once the config is
// accepted (detectors.Committer); an error rejects the config. Without
// rotating doors, or without a store (tests of fixed doors), it opens
// nothing.
func (d *Detector) Commit() error {
	r := &d.rs
	if len(r.rot) == 0 || r.store == nil || r.spent != nil {
		return nil
	}
	tok, info, err := r.store.Tokens(actions.Space{Name: SpentSpace, Layout: actions.Ring, Size: r.size, Keep: r.keep, Sync: true})
	if err != nil {
		return fmt.Errorf("rotating sequences: %w", err)
	}
	r.spent = tok
	switch {
	case info.Created:
		d.logf("created rotating spent store %s (%d records)", SpentSpace, r.size)
	case info.Resized:
		d.logf("resized rotating spent store %s from %d to %d records, %d kept", SpentSpace, info.From, r.size, info.Kept)
	}
	return nil
}

// Close releases the spent space (io.Closer); safe on a detector never
// committed, and twice.
func (d *Detector) Close() error {
	if d.rs.spent == nil {
		return nil
	}
	err := d.rs.spent.Close()
	d.rs.spent = nil
	return err
}
