package doorman

import (
	"crypto/md5"
	"encoding/binary"
	"fmt"
	"io"
	"time"

	"github.com/doorward/doorward/internal/spent"
)

// Hash archive geometry (doormand.c, x86-64 build).
const (
	RecordSize     = spent.RecordSize // digest, then time_t: 24 bytes, no padding
	MinRecords     = 1000             // smaller files are recreated; smaller sizes are refused
	DefaultRecords = 100000           // hash-archive-size default
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

// ReadRecords decodes an archive file's bytes: one Record per whole 24-byte
// block, a trailing partial block ignored (doormand computes the record
// count as size / 24 too).
func ReadRecords(data []byte) []Record {
	return fromSpent(spent.ReadRecords(data))
}

func fromSpent(rs []spent.Record) []Record {
	out := make([]Record, len(rs))
	for i, r := range rs {
		out[i] = Record{Digest: r.Digest, Time: r.Stamp}
	}
	return out
}

// Archive is the anti-replay archive: a fixed number of slots, each holding
// the digest of an accepted knock, on disk in doormand's layout. It is an
// internal/spent Store with doormand's slot formula: the mechanism is
// shared with the port-span detector's spent store.
//
// The whole file is read when it is opened and indexed by digest, so a
// lookup finds a digest in any slot (records written by a 64-bit doormand
// sit at unpredictable slots) in constant time: an attacker who replays a
// captured knock costs a map lookup, not a scan of megabytes. Inserts go
// to the slot Index gives, evicting whatever was there, as in doormand.
//
// An Archive is not safe for concurrent use; the detector owns it.
type Archive struct{ s *spent.Store }

// OpenInfo reports what OpenArchive did to the file, for the log.
type OpenInfo = spent.OpenInfo

// archiveOptions: doormand's slot formula and creation rule. Like
// doormand's mmap, a write is not fsynced: a crash of the daemon keeps it,
// a power loss may not.
var archiveOptions = spent.Options{
	Slot:       func(d spent.Digest, size int) int { return Index(d, size) },
	MinRecords: MinRecords,
	What:       "hash archive",
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
	if size < MinRecords || size > MaxRecords {
		return nil, OpenInfo{}, fmt.Errorf("hash archive %s: size %d out of range %d..%d", path, size, MinRecords, MaxRecords)
	}
	s, info, err := spent.Open(path, size, archiveOptions)
	if err != nil {
		return nil, info, err
	}
	return &Archive{s}, info, nil
}

// NewMemoryArchive is an archive that is never written to disk: replaying a
// capture must not consume the live daemon's knocks.
func NewMemoryArchive(size int) *Archive {
	return &Archive{spent.NewMemory(size, archiveOptions)}
}

// Size is the number of slots.
func (a *Archive) Size() int { return a.s.Size() }

// Path is the file, "" for a memory archive.
func (a *Archive) Path() string { return a.s.Path() }

// Lookup reports whether d is recorded anywhere, and when it was accepted.
func (a *Archive) Lookup(d [md5.Size]byte) (at time.Time, found bool) {
	t, ok := a.s.Lookup(d)
	if !ok {
		return time.Time{}, false
	}
	return time.Unix(t, 0), true
}

// Add records d as accepted at now in slot Index(d), evicting the slot's
// previous digest. The memory copy is updated even if writing the file
// fails, so the replay is still caught until the daemon restarts; the
// error says the file missed it.
func (a *Archive) Add(d [md5.Size]byte, now time.Time) error {
	return a.s.Add(d, now.Unix())
}

// Merge adds every digest of old that a is missing, at old's time: after a
// reload opened a new Archive on the same file, the knocks the old one
// accepted meanwhile are not lost.
func (a *Archive) Merge(old *Archive) error { return a.s.Merge(old.s) }

// Records returns a copy of the slots, for tests and tools.
func (a *Archive) Records() []Record { return fromSpent(a.s.Records()) }

// Close closes the file.
func (a *Archive) Close() error { return a.s.Close() }

var _ io.Closer = (*Archive)(nil)

// Resize changes the number of slots of an open archive in place (a reload
// changed Hash_Archive_Size), every record carried over to its new slot as
// OpenArchive would: the file is rewritten atomically.
func (a *Archive) Resize(size int) (OpenInfo, error) {
	if size < MinRecords || size > MaxRecords {
		return OpenInfo{}, fmt.Errorf("hash archive %s: size %d out of range %d..%d", a.Path(), size, MinRecords, MaxRecords)
	}
	return a.s.Resize(size)
}
