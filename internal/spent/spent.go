// Package spent is a bounded, durable set of digests of accepted knocks:
// the anti-replay memory shared by doorman's hash archive (formats/doorman)
// and the port-span detector's spent store (detectors/knockdaemon).
//
// A Store is a fixed number of 24-byte slots, on disk exactly as in memory
// (a 16-byte digest, then a little-endian int64 stamp; an all-zero digest
// is an empty slot), which is doormand's hash-archive layout. Where a new
// digest goes is the Store's policy: a slot computed from the digest, as
// doormand does (Options.Slot), or a ring that overwrites the oldest record
// (the default). The whole file is read at Open and indexed by digest, so a
// lookup is a map lookup wherever the digest sits; inserts write one slot
// in place, optionally fsynced.
//
// Opening may create or rewrite the file (a new store, a resize). Callers
// that build a configuration before knowing whether it will be adopted
// (config check, a reload that may be rejected) must not Open until it is:
// Check validates a path and size without touching anything.
package spent

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"github.com/doorward/doorward/internal/trust"
	"io"
	"os"
	"path/filepath"
	"slices"
)

// RecordSize is the size of a slot: digest, then stamp, no padding.
const RecordSize = DigestSize + 8

// DigestSize is the size of a digest.
const DigestSize = 16

// maxFileRecords bounds what Open reads of a file: no store is configured
// larger (doorman's archive and Spent_Knocks stop at 2^20 records), so a
// bigger file is not ours to trust.
const maxFileRecords = 1 << 21

// Digest identifies an accepted knock (or a part of one).
type Digest [DigestSize]byte

// Record is one slot. Stamp is the policy's: doorman keeps the Unix time
// of acceptance; the ring keeps a strictly increasing stamp (nanoseconds)
// from which the oldest slot is found again after a restart.
type Record struct {
	Digest Digest
	Stamp  int64
}

func (r Record) empty() bool { return r.Digest == Digest{} }

// ReadRecords decodes a file's bytes: one Record per whole RecordSize
// block, a trailing partial block ignored.
func ReadRecords(data []byte) []Record {
	out := make([]Record, len(data)/RecordSize)
	for i := range out {
		b := data[i*RecordSize:]
		copy(out[i].Digest[:], b)
		out[i].Stamp = int64(binary.LittleEndian.Uint64(b[DigestSize:]))
	}
	return out
}

func appendRecord(dst []byte, r Record) []byte {
	dst = append(dst, r.Digest[:]...)
	return binary.LittleEndian.AppendUint64(dst, uint64(r.Stamp))
}

// Options are a Store's policy.
type Options struct {
	// Slot places a digest in a store of size slots (doormand's index).
	// nil: a ring, the oldest record out.
	Slot func(d Digest, size int) int
	// MinRecords: a file with fewer records is recreated empty (doormand's
	// rule; 0 keeps any file's records).
	MinRecords int
	// Sync fsyncs every Add before it returns, so a knock recorded is
	// recorded across a crash or a power loss before anything opens.
	Sync bool
	// What names the store in errors ("hash archive", "spent store").
	What string
}

// Store is the set. It is not safe for concurrent use; its detector owns it.
type Store struct {
	opt   Options
	f     *os.File // nil: in memory only (replay, tests)
	path  string
	recs  []Record
	where map[Digest]slots
	next  int   // ring: the slot the next Add overwrites (the oldest)
	last  int64 // ring: the highest stamp
}

// slots says where a digest is: one slot that holds it and how many do
// (more than one only in files a foreign writer made).
type slots struct{ at, n int32 }

// OpenInfo reports what Open did to the file, for the log.
type OpenInfo struct {
	Created bool // the file was missing or under MinRecords records: made anew, empty
	Resized bool // the file had another record count: rewritten, records kept
	From    int  // record count before a resize
	Kept    int  // records that survived a resize
}

func (o Options) what() string {
	if o.What == "" {
		return "spent store"
	}
	return o.What
}

// Check reports what Open would have to do to the file at path for size
// slots, touching nothing: a configuration check calls it in place of Open.
// A file it cannot read is an error, as it would be for Open.
func Check(path string, size int, o Options) (OpenInfo, error) {
	var info OpenInfo
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if _, err := os.Stat(filepath.Dir(path)); err != nil {
			return info, fmt.Errorf("%s: %w", o.what(), err)
		}
		info.Created = true
		return info, nil
	case err != nil:
		return info, fmt.Errorf("%s: %w", o.what(), err)
	case !fi.Mode().IsRegular():
		return info, fmt.Errorf("%s: %s is not a regular file", o.what(), path)
	}
	f, err := trust.Open(path)
	if err != nil {
		return info, fmt.Errorf("%s: %w", o.what(), err)
	}
	f.Close()
	n := int(fi.Size() / RecordSize)
	switch {
	case n < max(o.MinRecords, 1):
		info.Created = true
	case n != size:
		info.Resized, info.From = true, n
	}
	return info, nil
}

// Open opens the store at path with size slots:
//
//   - a missing file, or one under MinRecords records, is created anew,
//     zero-filled, mode 0600;
//   - a file with another record count is resized, every record carried
//     over (slot policy: to its new slot, the newer winning a collision;
//     ring: the newest size records); the new file replaces the old one
//     atomically.
func Open(path string, size int, o Options) (*Store, OpenInfo, error) {
	var info OpenInfo
	if size < 1 {
		return nil, info, fmt.Errorf("%s %s: size %d", o.what(), path, size)
	}
	// The store is what stops a replayed knock: it is trusted only by the
	// state-file rules of internal/trust (owner, no group/other write, its
	// directory too, no symbolic link followed), and read up to a bound.
	data, err := trust.ReadFile(path, maxFileRecords*RecordSize)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, info, fmt.Errorf("%s: %w", o.what(), err)
	}
	if len(data) > maxFileRecords*RecordSize {
		return nil, info, fmt.Errorf("%s %s: over %d records; not reading it", o.what(), path, maxFileRecords)
	}
	s := &Store{opt: o, path: path}
	old := ReadRecords(data)
	switch {
	case len(old) < max(o.MinRecords, 1):
		info.Created = true
		s.recs = make([]Record, size)
	case len(old) == size:
		s.recs = old
	default:
		info.Resized, info.From = true, len(old)
		s.recs, info.Kept = s.resized(old, size)
	}
	if info.Created || info.Resized {
		if err := s.rewrite(); err != nil {
			return nil, info, err
		}
	}
	f, err := trust.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, info, fmt.Errorf("%s: %w", o.what(), err)
	}
	s.f = f
	s.index()
	return s, info, nil
}

// NewMemory is a store never written to disk: replaying a capture must not
// consume the live daemon's knocks.
func NewMemory(size int, o Options) *Store {
	s := &Store{opt: o, recs: make([]Record, max(size, 1))}
	s.index()
	return s
}

// resized lays old's records out in size slots by the policy and says how
// many survived.
func (s *Store) resized(old []Record, size int) ([]Record, int) {
	recs := make([]Record, size)
	live := slices.DeleteFunc(slices.Clone(old), Record.empty)
	// Oldest first, so the newer record wins a slot (or the ring keeps the
	// newest).
	slices.SortStableFunc(live, func(a, b Record) int { return cmp.Compare(a.Stamp, b.Stamp) })
	if s.opt.Slot == nil {
		live = live[max(0, len(live)-size):]
		copy(recs, live)
		return recs, len(live)
	}
	kept := 0
	for _, r := range live {
		i := s.opt.Slot(r.Digest, size)
		if recs[i].empty() {
			kept++
		}
		recs[i] = r
	}
	return recs, kept
}

// index rebuilds the digest index and, for a ring, finds the oldest slot:
// the one after the highest stamp.
func (s *Store) index() {
	s.where = make(map[Digest]slots)
	s.next, s.last = 0, 0
	for i, r := range s.recs {
		if r.empty() {
			continue
		}
		sl := s.where[r.Digest]
		if sl.n == 0 {
			sl.at = int32(i)
		}
		sl.n++
		s.where[r.Digest] = sl
		if r.Stamp >= s.last {
			s.last, s.next = r.Stamp, (i+1)%len(s.recs)
		}
	}
}

// rewrite writes s.recs to a new file and renames it over s.path.
func (s *Store) rewrite() error {
	buf := make([]byte, 0, len(s.recs)*RecordSize)
	for _, r := range s.recs {
		buf = appendRecord(buf, r)
	}
	tmp, err := os.CreateTemp(filepath.Dir(s.path), filepath.Base(s.path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("%s: %w", s.opt.what(), err)
	}
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	for _, step := range []func() error{
		func() error { return tmp.Chmod(0o600) },
		func() error { _, err := tmp.Write(buf); return err },
		tmp.Sync,
		tmp.Close,
		func() error { return os.Rename(tmp.Name(), s.path) },
	} {
		if err := step(); err != nil {
			return fmt.Errorf("%s: %w", s.opt.what(), err)
		}
	}
	ok = true
	if d, err := os.Open(filepath.Dir(s.path)); err == nil {
		d.Sync() // the rename, durable
		d.Close()
	}
	return nil
}

// Size is the number of slots.
func (s *Store) Size() int { return len(s.recs) }

// Path is the file, "" for a memory store.
func (s *Store) Path() string { return s.path }

// Lookup reports whether d is recorded, and its stamp.
func (s *Store) Lookup(d Digest) (stamp int64, found bool) {
	sl, ok := s.where[d]
	if !ok {
		return 0, false
	}
	return s.recs[sl.at].Stamp, true
}

// Add records d with stamp, evicting the slot's previous digest: the slot
// the policy gives, or the ring's oldest. A ring raises stamp above every
// stamp it holds, so the order survives a restart whatever the clock did.
// The memory copy is updated even if writing the file fails, so a replay
// is still caught until the daemon restarts; the error says the file
// missed it.
func (s *Store) Add(d Digest, stamp int64) error {
	var i int
	if s.opt.Slot != nil {
		i = s.opt.Slot(d, len(s.recs))
	} else {
		stamp = max(stamp, s.last+1)
		i, s.last = s.next, stamp
		s.next = (i + 1) % len(s.recs)
	}
	if old := s.recs[i]; !old.empty() {
		s.forget(old.Digest, i)
	}
	r := Record{Digest: d, Stamp: stamp}
	s.recs[i] = r
	sl := s.where[d]
	if sl.n == 0 {
		sl.at = int32(i)
	}
	sl.n++
	s.where[d] = sl
	if s.f == nil {
		return nil
	}
	var b [RecordSize]byte
	if _, err := s.f.WriteAt(appendRecord(b[:0], r), int64(i)*RecordSize); err != nil {
		return fmt.Errorf("%s: %w", s.opt.what(), err)
	}
	if s.opt.Sync {
		if err := s.f.Sync(); err != nil {
			return fmt.Errorf("%s: %w", s.opt.what(), err)
		}
	}
	return nil
}

// forget drops slot i's claim on digest d from the index.
func (s *Store) forget(d Digest, i int) {
	sl := s.where[d]
	if sl.n <= 1 {
		delete(s.where, d)
		return
	}
	sl.n--
	if int(sl.at) == i {
		for j, r := range s.recs {
			if j != i && r.Digest == d {
				sl.at = int32(j)
				break
			}
		}
	}
	s.where[d] = sl
}

// Merge adds the digests of old that s is missing, with their stamps:
// after a reload opened a new Store on the same file, the knocks the old
// one accepted meanwhile are not lost.
//
// A slot policy adds them oldest first. A ring keeps the newest records of
// both stores, laid out in stamp order as a resize does (the file is
// rewritten if any of old's records is kept): adding them one by one would
// write old records over newer ones when s is smaller (a reload that shrank
// the store) and leave them at the wrong end of the eviction order.
func (s *Store) Merge(old *Store) error {
	if old == s {
		return nil
	}
	missing := slices.DeleteFunc(old.Records(), func(r Record) bool {
		_, have := s.where[r.Digest]
		return have || r.empty()
	})
	if len(missing) == 0 {
		return nil
	}
	if s.opt.Slot == nil {
		recs, _ := s.resized(append(s.Records(), missing...), len(s.recs))
		added := make(map[Digest]bool, len(missing))
		for _, r := range missing {
			added[r.Digest] = true
		}
		for _, r := range recs {
			if added[r.Digest] {
				return s.install(recs)
			}
		}
		return nil // every missing record is older than all s keeps
	}
	var errs []error
	slices.SortStableFunc(missing, func(a, b Record) int { return cmp.Compare(a.Stamp, b.Stamp) })
	for _, r := range missing {
		if _, ok := s.where[r.Digest]; ok {
			continue
		}
		if err := s.Add(r.Digest, r.Stamp); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Resize changes the number of slots of an open store in place (a reload
// changed the size): the records are carried over as Open would, the file
// rewritten atomically and reopened.
func (s *Store) Resize(size int) (OpenInfo, error) {
	info := OpenInfo{Resized: true, From: len(s.recs)}
	if size < 1 {
		return info, fmt.Errorf("%s %s: size %d", s.opt.what(), s.path, size)
	}
	if size == len(s.recs) {
		return OpenInfo{}, nil
	}
	recs, kept := s.resized(s.recs, size)
	info.Kept = kept
	return info, s.install(recs)
}

// install makes recs the store's slots: the file is rewritten atomically
// and reopened, the index rebuilt. On error the store is unchanged.
func (s *Store) install(recs []Record) error {
	prev := s.recs
	s.recs = recs
	if s.f != nil {
		if err := s.rewrite(); err != nil {
			s.recs = prev
			return err
		}
		f, err := trust.OpenFile(s.path, os.O_RDWR, 0)
		if err != nil {
			return fmt.Errorf("%s: %w", s.opt.what(), err)
		}
		s.f.Close()
		s.f = f
	}
	s.index()
	return nil
}

// Sync flushes the inserts so far to stable storage: a caller that adds
// several digests for one knock syncs once, before it acts on the knock.
func (s *Store) Sync() error {
	if s.f == nil {
		return nil
	}
	if err := s.f.Sync(); err != nil {
		return fmt.Errorf("%s: %w", s.opt.what(), err)
	}
	return nil
}

// Records returns a copy of the slots, for tests and tools.
func (s *Store) Records() []Record { return slices.Clone(s.recs) }

// Close closes the file. The Store still answers lookups from memory.
func (s *Store) Close() error {
	if s.f == nil {
		return nil
	}
	err := s.f.Close()
	s.f = nil
	return err
}

var _ io.Closer = (*Store)(nil)
