// Package filestore is the embedded backend of the durable-state layer
// (actions.Store): every space in the file it has always had, so state
// directories written by earlier releases (and doormand's archives,
// knockd's one-time files) load unchanged.
//
//   - Doors: the journal of open doors (actions/journal), given by the
//     runtime, which opens it first to recover leftover doors.
//   - Ring token spaces: internal/spent rings, StateDir/Name (the
//     port-span spent store, portspan.spent).
//   - HashArchive token spaces: doormand's hash archive at Space.File
//     (formats/doorman), slot formula and all.
//   - OneTimeLines token spaces: knockd's one-time sequence file at
//     Space.File (formats/otp). The file is knockd's: the list of valid
//     sequences and, by a '#' over a line's first byte, the record of the
//     spent ones, in one file an admin edits and knockd reads. So this
//     backend owns it whole: Spend marks the line used (fsynced) exactly as
//     knockd does, and the handle also reads the list (OneTime), which the
//     sequence detector needs to know which sequence to expect. Every mode
//     marks lines, memory included: the file is the door's configuration,
//     and replaying a capture has always used its lines.
//   - Value spaces: the knockdaemon state cache (actions/state) at
//     Space.File, rewritten whole by Sync.
//
// Space.Keep needs nothing here: rings and archives are bounded by Size
// alone and keep a token until a newer one takes its slot, the state cache
// by its entry bound; nothing is dropped before its Keep on that account
// that the Size would not drop anyway.
//
// A memory Store (Memory) keeps everything but one-time files in memory:
// replay and --check must neither consume a live daemon's knocks nor
// create files.
package filestore

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/doorward/doorward/actions"
	"github.com/doorward/doorward/actions/state"
	"github.com/doorward/doorward/formats/doorman"
	"github.com/doorward/doorward/formats/expr"
	"github.com/doorward/doorward/formats/otp"
	"github.com/doorward/doorward/formats/sequence"
	"github.com/doorward/doorward/internal/spent"
)

// Options say where a Store keeps its files.
type Options struct {
	// Dir is the state directory: Ring spaces live there. "" with Memory.
	Dir string
	// Memory keeps every space but one-time files in memory.
	Memory bool
	// Doors is the journal of open doors; nil keeps door records in
	// memory (replay, tests).
	Doors actions.Doors
	// Logf receives a value space's evictions and load notes.
	Logf actions.Logf
}

// Store is the embedded backend. Safe for concurrent use.
type Store struct {
	actions.Doors
	o Options

	mu     sync.Mutex
	spaces map[string]*digests // open Ring and HashArchive spaces, by file (or name in memory)
}

var _ actions.Store = (*Store)(nil)

// New returns the Store over o's files. It opens nothing: each space is
// opened when its user declares it (actions.Store.Tokens, Values).
func New(o Options) *Store {
	if o.Logf == nil {
		o.Logf = actions.Discard
	}
	s := &Store{Doors: o.Doors, o: o, spaces: map[string]*digests{}}
	if s.Doors == nil {
		s.Doors = &memDoors{}
	}
	return s
}

// Memory is a Store that writes no file but one-time sequence files.
func Memory() *Store { return New(Options{Memory: true}) }

// path is where sp lives: its File, else Name in the state directory.
func (s *Store) path(sp actions.Space) string {
	if sp.File != "" {
		return sp.File
	}
	return filepath.Join(s.o.Dir, sp.Name)
}

// Tokens opens sp (actions.Store). Ring and HashArchive spaces are shared
// by every handle on the same file: a reload that keeps a space hands the
// new detector the very records the old one had, and one whose size
// changed resizes it in place, records carried over.
func (s *Store) Tokens(sp actions.Space) (actions.Tokens, actions.SpaceInfo, error) {
	if sp.Layout == actions.OneTimeLines {
		f, err := otp.Open(sp.File)
		if err != nil {
			return nil, actions.SpaceInfo{}, err
		}
		return &OneTime{f}, actions.SpaceInfo{}, nil
	}
	if sp.Layout != actions.Ring && sp.Layout != actions.HashArchive {
		return nil, actions.SpaceInfo{}, fmt.Errorf("token space %s: unknown layout %d", sp.Name, sp.Layout)
	}
	key := sp.Name
	if !s.o.Memory {
		key = s.path(sp)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if d := s.spaces[key]; d != nil {
		if d.layout != sp.Layout {
			return nil, actions.SpaceInfo{}, fmt.Errorf("token space %s: open already with another layout", key)
		}
		info, err := d.resize(sp.Size)
		if err != nil {
			return nil, info, err
		}
		d.refs++
		d.sync = d.sync || sp.Sync
		return &handle{s: s, d: d}, info, nil
	}
	d := &digests{key: key, layout: sp.Layout, sync: sp.Sync, refs: 1}
	var info spent.OpenInfo
	var err error
	switch {
	case sp.Layout == actions.HashArchive && s.o.Memory:
		d.archive = doorman.NewMemoryArchive(sp.Size)
	case sp.Layout == actions.HashArchive:
		d.archive, info, err = doorman.OpenArchive(key, sp.Size)
	case s.o.Memory:
		d.ring = spent.NewMemory(sp.Size, ringOptions)
	default:
		d.ring, info, err = spent.Open(key, sp.Size, ringOptions)
	}
	if err != nil {
		return nil, actions.SpaceInfo(info), err
	}
	s.spaces[key] = d
	return &handle{s: s, d: d}, actions.SpaceInfo(info), nil
}

// ringOptions: a ring, the oldest token out; synced by Spend when the
// space asks for it.
var ringOptions = spent.Options{What: "port-span spent store"}

// digests is one open Ring or HashArchive space.
type digests struct {
	key    string
	layout actions.Layout
	sync   bool
	refs   int // handles open on it; guarded by Store.mu

	mu      sync.Mutex
	ring    *spent.Store     // Ring
	archive *doorman.Archive // HashArchive
}

func (d *digests) resize(size int) (actions.SpaceInfo, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ring != nil {
		if size == d.ring.Size() || size < 1 {
			return actions.SpaceInfo{}, nil
		}
		info, err := d.ring.Resize(size)
		return actions.SpaceInfo(info), err
	}
	if size == d.archive.Size() {
		return actions.SpaceInfo{}, nil
	}
	info, err := d.archive.Resize(size)
	return actions.SpaceInfo(info), err
}

// spend is Tokens.Spend under the space's lock: the check and the record
// are one step for every goroutine sharing the space.
func (d *digests) spend(now time.Time, tokens [][]byte) (actions.Spent, error) {
	for _, t := range tokens {
		if len(t) != spent.DigestSize {
			return actions.Spent{}, fmt.Errorf("token space %s: a token of %d bytes (want %d)", d.key, len(t), spent.DigestSize)
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, t := range tokens {
		if at, seen := d.lookup(spent.Digest(t)); seen {
			return actions.Spent{At: at}, nil
		}
	}
	var errs []error
	for _, t := range tokens {
		if d.archive != nil {
			errs = append(errs, d.archive.Add([16]byte(t), now))
		} else {
			errs = append(errs, d.ring.Add(spent.Digest(t), now.UnixNano()))
		}
	}
	err := errors.Join(errs...)
	if err == nil && d.sync && d.ring != nil {
		err = d.ring.Sync()
	}
	return actions.Spent{Fresh: true}, err
}

// lookup: a hash archive keeps doormand's seconds, a ring nanoseconds.
func (d *digests) lookup(t spent.Digest) (time.Time, bool) {
	if d.archive != nil {
		return d.archive.Lookup(t)
	}
	ns, ok := d.ring.Lookup(t)
	return time.Unix(0, ns), ok
}

func (d *digests) close() error {
	if d.archive != nil {
		return d.archive.Close()
	}
	return d.ring.Close()
}

// handle is one user's hold on a shared space.
type handle struct {
	s    *Store
	d    *digests
	once sync.Once
}

func (h *handle) Spend(now time.Time, tokens ...[]byte) (actions.Spent, error) {
	return h.d.spend(now, tokens)
}

// Close closes the space's file when no other handle holds it.
func (h *handle) Close() error {
	var err error
	h.once.Do(func() {
		h.s.mu.Lock()
		defer h.s.mu.Unlock()
		if h.d.refs--; h.d.refs > 0 {
			return
		}
		delete(h.s.spaces, h.d.key)
		h.d.mu.Lock()
		defer h.d.mu.Unlock()
		err = h.d.close()
	})
	return err
}

// OneTime is an open knockd one-time sequence file: Spend marks a line
// used, the rest reads the list. A token is sequence.Format of a line's
// sequence (the line as the sequence detector expects it).
type OneTime struct{ *otp.File }

// Spend marks the line holding the sequence tokens[0] used (otp.File.Use,
// fsynced). A sequence that is not an unused line of the file is not
// fresh; the error says why (knockd's file: the admin may have removed or
// marked it), as it is what the door's log line reports.
func (o *OneTime) Spend(_ time.Time, tokens ...[]byte) (actions.Spent, error) {
	seq, err := o.Sequence(tokens)
	if err != nil {
		return actions.Spent{}, err
	}
	if err := o.Use(seq); err != nil {
		return actions.Spent{}, err
	}
	return actions.Spent{Fresh: true}, nil
}

// Sequence is the one sequence a Spend's tokens carry (a shared backend
// spends it too, before its own marks).
func (o *OneTime) Sequence(tokens [][]byte) ([]sequence.Knock, error) {
	if len(tokens) != 1 {
		return nil, fmt.Errorf("one-time sequences %s: %d tokens (want 1)", o.Path(), len(tokens))
	}
	seq, err := sequence.Parse(string(tokens[0]))
	if err != nil {
		return nil, fmt.Errorf("one-time sequences %s: %w", o.Path(), err)
	}
	return seq, nil
}

// Close is a no-op: the file is opened afresh by every Spend.
func (o *OneTime) Close() error { return nil }

// Values opens the value space sp (actions.Store): the state cache at
// sp.File, with room for sp.Size entries (0: state.DefaultMax); in memory
// for a memory Store or an empty File.
func (s *Store) Values(sp actions.Space) (actions.Values, error) {
	path := sp.File
	if s.o.Memory {
		path = ""
	}
	st, err := state.Open(path, state.Options{MaxEntries: sp.Size, Logf: s.o.Logf})
	if err != nil {
		return nil, err
	}
	return StateCache(st), nil
}

// StateCache is the value space over an open state cache, for a caller
// that opened it itself (tests that look at its entries); the space owns
// it from then on: its Close closes st.
func StateCache(st *state.Store) actions.Values { return &values{st: st} }

// values is a state cache behind a lock, so Add is one step.
type values struct {
	mu sync.Mutex
	st *state.Store
}

func (v *values) Value(key []string) (string, bool, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	s, ok := v.st.Get(key)
	return s, ok, nil
}

func (v *values) SetValue(key []string, s string, now time.Time) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.st.Set(key, s, now)
}

func (v *values) DeleteValue(key []string) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.st.Delete(key)
	return nil
}

func (v *values) Add(key []string, delta int64, now time.Time) (int64, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	var cur int64
	if s, ok := v.st.Get(key); ok {
		i, ok := expr.ParseInt(s)
		if !ok {
			return 0, &actions.NotCounterError{Value: s}
		}
		cur = i
	}
	if (delta > 0 && cur > maxInt-delta) || (delta < 0 && cur < minInt-delta) {
		return 0, actions.ErrOverflow
	}
	n := cur + delta
	return n, v.st.Set(key, strconv.FormatInt(n, 10), now)
}

const (
	maxInt = int64(^uint64(0) >> 1)
	minInt = -maxInt - 1
)

func (v *values) Sync() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.st.Flush()
}

func (v *values) Close() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.st.Close()
}

// memDoors keeps door records in memory: a memory Store's, and a file
// Store's without a journal. Closing them is the runtime's job either way.
type memDoors struct {
	mu   sync.Mutex
	last uint64
	open []actions.DoorEntry // in ID order
}

func (m *memDoors) OpenDoor(e actions.DoorEntry) (actions.DoorEntry, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.last++
	e.ID = m.last
	e.Due = e.Due.UTC()
	m.open = append(m.open, e)
	return e, nil
}

func (m *memDoors) UpdateDoor(e actions.DoorEntry) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	i := slices.IndexFunc(m.open, func(o actions.DoorEntry) bool { return o.ID == e.ID })
	if i < 0 {
		return fmt.Errorf("door entry %d is not open", e.ID)
	}
	m.open[i].Due, m.open[i].Failures = e.Due.UTC(), e.Failures
	return nil
}

func (m *memDoors) CloseDoor(id uint64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.open = slices.DeleteFunc(m.open, func(o actions.DoorEntry) bool { return o.ID == id })
	return nil
}

func (m *memDoors) OpenDoors() []actions.DoorEntry {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.open)
}
