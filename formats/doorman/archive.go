package doorman

import (
	"crypto/md5"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/doorward/doorward/internal/trust"
)

// Hash archive geometry (doormand.c, x86-64 build).
const (
	RecordSize     = md5.Size + 8 // digest, then time_t: 24 bytes, no padding
	MinRecords     = 1000         // smaller files are recreated; smaller sizes are refused
	DefaultRecords = 100000       // hash-archive-size default
	// MaxRecords bounds what a config may ask for (240 MB of file). The
	// original has no bound; a typo should not fill the disk.
	MaxRecords = 10_000_000
)

// Index is the slot a digest goes to: the four little-endian 32-bit words
// of the digest summed modulo 2^32, the sign bit cleared, modulo size. It is
// what a 32-bit doormand computes; a 64-bit one reads 32 bytes (16 of them
// uninitialised stack) and puts records anywhere, which is why Lookup does
// not trust the slot and checks every record.
func Index(d [md5.Size]byte, size int) int {
	var sum uint32
	for i := 0; i < md5.Size; i += 4 {
		sum += binary.LittleEndian.Uint32(d[i:])
	}
	return int(sum&0x7fffffff) % size
}

// Record is one archive slot: the digest of an accepted knock and when it
// was accepted (epoch seconds). An all-zero digest is an empty slot.
type Record struct {
	Digest [md5.Size]byte
	Time   int64
}

func (r Record) empty() bool { return r.Digest == [md5.Size]byte{} }

// ReadRecords decodes an archive file's bytes: one Record per whole 24-byte
// block, a trailing partial block ignored (doormand computes the record
// count as size / 24 too).
func ReadRecords(data []byte) []Record {
	out := make([]Record, len(data)/RecordSize)
	for i := range out {
		b := data[i*RecordSize:]
		copy(out[i].Digest[:], b)
		out[i].Time = int64(binary.LittleEndian.Uint64(b[md5.Size:]))
	}
	return out
}

func appendRecord(dst []byte, r Record) []byte {
	dst = append(dst, r.Digest[:]...)
	return binary.LittleEndian.AppendUint64(dst, uint64(r.Time))
}

// Archive is the anti-replay archive: a fixed number of slots, each holding
// the digest of an accepted knock, on disk in doormand's layout.
//
// The whole file is read when it is opened and indexed by digest, so a
// lookup finds a digest in any slot (records written by a 64-bit doormand
// sit at unpredictable slots) in constant time: an attacker who replays a
// captured knock costs a map lookup, not a scan of megabytes. Inserts go
// to the slot Index gives, evicting whatever was there, as in doormand.
//
// An Archive is not safe for concurrent use; the detector owns it.
type Archive struct {
	f     *os.File // nil: in memory only (replay, --check)
	path  string
	recs  []Record
	where map[[md5.Size]byte]slots
}

// slots says where a digest is: one slot that holds it and how many do
// (more than one only in files a 64-bit doormand wrote).
type slots struct {
	at, n int32
}

// OpenInfo reports what OpenArchive did to the file, for the log.
type OpenInfo struct {
	Created bool // the file was missing or under MinRecords records: made anew, empty
	Resized bool // the file had another record count: rewritten, records kept
	From    int  // record count before a resize
	Kept    int  // records that survived a resize (collisions keep the newer)
}

// OpenArchive opens the archive at path with size slots, as doormand does at
// start-up and on SIGHUP:
//
//   - a missing file, or one under MinRecords records, is created anew,
//     zero-filled, mode 0600;
//   - a file with another record count is resized: unlike doormand (which
//     loses every record when it grows the file and can crash when it
//     shrinks it) every record is carried over to its new slot, the newer
//     one winning a collision; the new file replaces the old atomically.
func OpenArchive(path string, size int) (*Archive, OpenInfo, error) {
	var info OpenInfo
	if size < MinRecords || size > MaxRecords {
		return nil, info, fmt.Errorf("hash archive %s: size %d out of range %d..%d", path, size, MinRecords, MaxRecords)
	}
	// The archive is what stops a replayed knock: it is trusted only by
	// the state-file rules of internal/trust (owner, no group/other write,
	// its directory too, no symbolic link followed).
	data, err := trust.ReadFile(path, MaxRecords*RecordSize)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, info, fmt.Errorf("hash archive: %w", err)
	}
	if len(data) > MaxRecords*RecordSize {
		return nil, info, fmt.Errorf("hash archive %s: over %d records; not reading it", path, MaxRecords)
	}
	a := &Archive{path: path}
	a.recs, info = fromFile(data, size)
	if info.Created || info.Resized {
		if err := a.rewrite(); err != nil {
			return nil, info, err
		}
	}
	f, err := trust.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, info, fmt.Errorf("hash archive: %w", err)
	}
	a.f = f
	a.index()
	return a, info, nil
}

// fromFile decides the slots of an archive of size records from the bytes
// of its file (nil if missing), by doormand's creation rules and a correct
// resize; info says whether the file must be rewritten.
func fromFile(data []byte, size int) ([]Record, OpenInfo) {
	var info OpenInfo
	old := ReadRecords(data)
	switch {
	case len(old) < MinRecords:
		info.Created = true
		return make([]Record, size), info
	case len(old) == size:
		return old, info
	}
	info.Resized, info.From = true, len(old)
	recs := make([]Record, size)
	for _, r := range old {
		if r.empty() {
			continue
		}
		i := Index(r.Digest, size)
		if recs[i].empty() {
			info.Kept++
		}
		if recs[i].empty() || r.Time >= recs[i].Time {
			recs[i] = r
		}
	}
	return recs, info
}

// NewMemoryArchive is an archive that is never written to disk: replaying a
// capture must not consume the live daemon's knocks.
func NewMemoryArchive(size int) *Archive {
	a := &Archive{recs: make([]Record, max(size, 1))}
	a.index()
	return a
}

func (a *Archive) index() {
	a.where = make(map[[md5.Size]byte]slots)
	for i, r := range a.recs {
		if r.empty() {
			continue
		}
		s := a.where[r.Digest]
		if s.n == 0 {
			s.at = int32(i)
		}
		s.n++
		a.where[r.Digest] = s
	}
}

// rewrite writes a.recs to a new file and renames it over a.path.
func (a *Archive) rewrite() error {
	buf := make([]byte, 0, len(a.recs)*RecordSize)
	for _, r := range a.recs {
		buf = appendRecord(buf, r)
	}
	tmp, err := os.CreateTemp(filepath.Dir(a.path), filepath.Base(a.path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("hash archive: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := tmp.Chmod(0o600); err != nil {
		return fmt.Errorf("hash archive: %w", err)
	}
	if _, err := tmp.Write(buf); err != nil {
		return fmt.Errorf("hash archive: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("hash archive: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("hash archive: %w", err)
	}
	if err := os.Rename(tmp.Name(), a.path); err != nil {
		return fmt.Errorf("hash archive: %w", err)
	}
	ok = true
	return nil
}

// Size is the number of slots.
func (a *Archive) Size() int { return len(a.recs) }

// Path is the file, "" for a memory archive.
func (a *Archive) Path() string { return a.path }

// Lookup reports whether d is recorded anywhere, and when it was accepted.
func (a *Archive) Lookup(d [md5.Size]byte) (at time.Time, found bool) {
	s, ok := a.where[d]
	if !ok {
		return time.Time{}, false
	}
	return time.Unix(a.recs[s.at].Time, 0), true
}

// Add records d as accepted at now in slot Index(d), evicting the slot's
// previous digest. The memory copy is updated even if writing the file
// fails, so the replay is still caught until the daemon restarts; the
// error says the file missed it. Like doormand's mmap, the write is not
// fsynced: a crash of the daemon keeps it, a power loss may not.
func (a *Archive) Add(d [md5.Size]byte, now time.Time) error {
	i := Index(d, len(a.recs))
	if old := a.recs[i]; !old.empty() {
		a.forget(old.Digest, i)
	}
	r := Record{Digest: d, Time: now.Unix()}
	a.recs[i] = r
	s := a.where[d]
	if s.n == 0 {
		s.at = int32(i)
	}
	s.n++
	a.where[d] = s
	if a.f == nil {
		return nil
	}
	var b [RecordSize]byte
	if _, err := a.f.WriteAt(appendRecord(b[:0], r), int64(i)*RecordSize); err != nil {
		return fmt.Errorf("hash archive: %w", err)
	}
	return nil
}

// forget drops slot i's claim on digest d from the index.
func (a *Archive) forget(d [md5.Size]byte, i int) {
	s := a.where[d]
	if s.n <= 1 {
		delete(a.where, d)
		return
	}
	s.n--
	if int(s.at) == i {
		for j, r := range a.recs {
			if j != i && r.Digest == d {
				s.at = int32(j)
				break
			}
		}
	}
	a.where[d] = s
}

// Merge adds every digest of old that a is missing, at old's time: after a
// reload opened a new Archive on the same file, the knocks the old one
// accepted meanwhile are not lost.
func (a *Archive) Merge(old *Archive) error {
	var errs []error
	for d, s := range old.where {
		if _, ok := a.where[d]; ok {
			continue
		}
		if err := a.Add(d, time.Unix(old.recs[s.at].Time, 0)); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Records returns a copy of the slots, for tests and tools.
func (a *Archive) Records() []Record { return append([]Record(nil), a.recs...) }

// Close closes the file.
func (a *Archive) Close() error {
	if a.f == nil {
		return nil
	}
	err := a.f.Close()
	a.f = nil
	return err
}

var _ io.Closer = (*Archive)(nil)
