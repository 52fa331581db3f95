// Package journal is the durable record of open doors: what makes "never
// leave a door open" true across crashes.
//
// Before a door's start command runs, its rendered stop command is appended
// to the journal and fsynced (Open); when the stop command has succeeded,
// a close record follows (Close). After a crash or SIGKILL the next daemon
// reads the entries still open and runs their stop commands before it
// accepts a knock.
//
// The file, doors.journal in the state directory, is text: one record per
// line, "<crc32c hex> <json>". A line that does not check out (a write torn
// by a crash, a corrupted block) is skipped and counted, never fatal, and
// never costs the other lines. Every failure mode errs towards running a
// stop command once too often (an "iptables -D" of a rule that is already
// gone), never towards forgetting one.
//
// Only one process may use a state directory: Open takes an exclusive flock
// on journal.lock and keeps it until Shutdown.
//
// The journal's stop commands run as root, so the state directory, the
// journal and its lock are trusted only by the rules of internal/trust:
// owned by root (or the daemon's uid), not writable by group or others, no
// symbolic link followed. Anything else is refused with the path named, and
// the daemon does not start.
package journal

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/doorward/doorward/actions"
	"github.com/doorward/doorward/internal/flock"
	"github.com/doorward/doorward/internal/trust"
)

// Entry is one open door: the state layer's door record (actions.DoorEntry).
type Entry = actions.DoorEntry

// The journal is the embedded backend's record of open doors.
var _ actions.Doors = (*Journal)(nil)

// File names inside the state directory.
const (
	FileName    = "doors.journal"
	LockName    = "journal.lock"
	DamagedName = "doors.journal.damaged" // copy of a file that had damaged records
	tempPrefix  = "doors.journal."
	tempSuffix  = ".tmp"
)

// Size bounds.
const (
	maxLine = 64 << 10 // a longer line is damaged; Open and Update refuse to write one
	maxFile = 64 << 20 // a longer file is not read: the admin must look
	// headroom keeps room below maxFile for the update and close records of
	// the doors already open: Open refuses a new door before Close can fail.
	headroom = 4 << 20
	// Close compacts when the garbage reaches compactGarbage bytes, or when
	// the file is at least compactMin bytes and 4× its live size.
	compactGarbage = 1 << 20
	compactMin     = 64 << 10
)

// ErrInUse is wrapped by the error Open returns when another process holds
// the state directory.
var ErrInUse = errors.New("in use by another process")

type inUseError struct{ dir string }

func (e inUseError) Error() string {
	return fmt.Sprintf("state directory %s is in use by another process", e.dir)
}
func (e inUseError) Unwrap() error { return ErrInUse }

// ErrShutdown is returned by methods called after Shutdown.
var ErrShutdown = errors.New("journal: shut down")

type item struct {
	e    Entry
	size int64 // bytes of its record in a compacted file
}

// Journal is an open journal. Its methods are safe for concurrent use,
// though the engine calls them from one goroutine.
type Journal struct {
	mu       sync.Mutex
	dir      string
	path     string
	lock     *os.File
	f        *os.File // O_APPEND; nil after Shutdown or a failed compaction
	open     map[uint64]*item
	next     uint64
	size     int64 // bytes in the file
	live     int64 // bytes a compaction would write
	dirty    bool  // an append failed: the file may end in a partial record
	warnings []string

	// crash, if set, is called at points where a test kills the process:
	// "appended" (record written, not yet fsynced) and "compacted" (temp
	// file complete and fsynced, not yet renamed).
	crash func(point string)
}

// Open opens the journal in dir, creating dir (0700) if needed, and returns
// the entries still open, in ID order: doors a previous run left open,
// whose stop commands must run before any new knock is accepted.
//
// It locks dir against other processes, reads dir/doors.journal (skipping
// damaged records; see Warnings), and rewrites it with only the open
// entries. A journal over 64 MiB is an error: it is not read, the admin must
// look. On error nothing is left locked or open.
func Open(dir string) (*Journal, []Entry, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("journal: %w", err)
	}
	// The journal's stop commands run as root: a directory or file someone
	// else could have written is refused, not read.
	if err := trust.Dir(dir); err != nil {
		return nil, nil, fmt.Errorf("journal: state directory %w", err)
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, nil, err
	}
	j := &Journal{dir: dir, path: filepath.Join(dir, FileName), lock: lock}
	if err := j.load(); err != nil {
		lock.Close()
		return nil, nil, err
	}
	return j, j.entries(), nil
}

func lockDir(dir string) (*os.File, error) {
	path := filepath.Join(dir, LockName)
	f, err := flock.Open(path)
	if errors.Is(err, flock.ErrWouldBlock) {
		return nil, inUseError{dir}
	}
	if err != nil {
		return nil, fmt.Errorf("journal: lock %w", err)
	}
	return f, nil
}

func (j *Journal) load() error {
	// Temp files are left only by a crash during compaction; the journal
	// itself was not replaced, so they are garbage.
	ents, err := os.ReadDir(j.dir)
	if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	for _, de := range ents {
		if n := de.Name(); strings.HasPrefix(n, tempPrefix) && strings.HasSuffix(n, tempSuffix) {
			os.Remove(filepath.Join(j.dir, n))
		}
	}
	data, err := readFile(j.path)
	if err != nil {
		return err
	}
	s := parse(data)
	j.open = make(map[uint64]*item, len(s.open))
	for id, e := range s.open {
		it, err := newItem(e)
		if err != nil { // cannot happen: parsed records re-encode
			return fmt.Errorf("journal: entry %d: %w", id, err)
		}
		j.open[id] = it
	}
	j.next = s.next
	if s.damaged > 0 {
		msg := fmt.Sprintf("journal: ignored %d damaged records in %s", s.damaged, j.path)
		if err := os.WriteFile(filepath.Join(j.dir, DamagedName), data, 0o600); err == nil {
			msg += "; the file as read is saved as " + DamagedName
		}
		j.warnings = append(j.warnings, msg)
	}
	return j.compact()
}

func readFile(path string) ([]byte, error) {
	f, err := trust.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	defer f.Close()
	tooBig := fmt.Errorf("journal: %s is over %d MiB; not reading it: inspect it, then move it away", path, maxFile>>20)
	if fi, err := f.Stat(); err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	} else if fi.Size() > maxFile {
		return nil, tooBig
	}
	data, err := io.ReadAll(io.LimitReader(f, maxFile+1))
	if err != nil {
		return nil, fmt.Errorf("journal: read %s: %w", path, err)
	}
	if len(data) > maxFile {
		return nil, tooBig
	}
	return data, nil
}

func newItem(e Entry) (*item, error) {
	line, err := encode(entryRecord(opOpen, e))
	if err != nil {
		return nil, err
	}
	return &item{e: e, size: int64(len(line))}, nil
}

// OpenDoor records e as open and returns it with its ID. The record is fsynced
// before Open returns: run the start command only after a nil error. e.ID
// is ignored; e.Due and e.Opened are stored in UTC without a monotonic
// reading. Strings must be valid UTF-8 and the record under 64 KiB, or
// Open fails (and the door must not open).
func (j *Journal) OpenDoor(e Entry) (Entry, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.next >= maxID {
		return Entry{}, errors.New("journal: open: IDs exhausted")
	}
	if err := checkEntry(e); err != nil {
		return Entry{}, fmt.Errorf("journal: open: %w", err)
	}
	e.ID = j.next
	e.Due = e.Due.Round(0).UTC()
	if !e.Opened.IsZero() {
		e.Opened = e.Opened.Round(0).UTC()
	}
	it, err := newItem(e)
	if err != nil {
		return Entry{}, fmt.Errorf("journal: open: %w", err)
	}
	j.next++ // even if the append fails: the record may be on disk
	if err := j.append(entryRecord(opOpen, e), maxFile-headroom); err != nil {
		return Entry{}, err
	}
	j.open[e.ID] = it
	j.live += it.size
	return e, nil
}

// UpdateDoor records new Due and Failures for the open entry e.ID (a second
// knock extended the door, or its stop command failed and will be retried).
// The other fields are kept as recorded by Open. On error the entry is
// unchanged.
func (j *Journal) UpdateDoor(e Entry) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	it, ok := j.open[e.ID]
	if !ok {
		return fmt.Errorf("journal: update: no open entry %d", e.ID)
	}
	if e.Failures < 0 {
		return errors.New("journal: update: negative failures")
	}
	ne := it.e
	ne.Due, ne.Failures = e.Due.Round(0).UTC(), e.Failures
	nit, err := newItem(ne)
	if err != nil {
		return fmt.Errorf("journal: update: %w", err)
	}
	if err := j.append(entryRecord(opUpdate, ne), maxFile); err != nil {
		return err
	}
	j.open[e.ID] = nit
	j.live += nit.size - it.size
	j.autoCompact()
	return nil
}

// CloseDoor records that the stop command of entry id succeeded. The entry
// leaves memory even if writing fails: the door is shut. The file then may
// still show it open, and the next start runs its stop command again,
// unless a later compaction (tried before the next append) drops it first.
func (j *Journal) CloseDoor(id uint64) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.lock == nil {
		return ErrShutdown
	}
	it, ok := j.open[id]
	if !ok {
		return fmt.Errorf("journal: close: no open entry %d", id)
	}
	err := j.append(record{Op: opClose, ID: id}, maxFile)
	delete(j.open, id)
	j.live -= it.size
	if err == nil {
		j.autoCompact()
	}
	return err
}

// OpenDoors returns the open entries in ID order.
func (j *Journal) OpenDoors() []Entry {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.entries()
}

func (j *Journal) entries() []Entry {
	if len(j.open) == 0 {
		return nil
	}
	out := make([]Entry, 0, len(j.open))
	for _, it := range j.open {
		out = append(out, it.e)
	}
	sortByID(out)
	return out
}

func sortByID(es []Entry) {
	slices.SortFunc(es, func(a, b Entry) int { return cmp.Compare(a.ID, b.ID) })
}

// Warnings returns, once, messages for the daemon to log: damaged records
// skipped by Open ("journal: ignored N damaged records in ...") and failed
// automatic compactions.
func (j *Journal) Warnings() []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	w := j.warnings
	j.warnings = nil
	return w
}

// Compact rewrites the journal with only the open entries, atomically: a
// crash leaves either the old file or the new one, both complete. Close
// calls it when the file has grown; Open always does.
func (j *Journal) Compact() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.lock == nil {
		return ErrShutdown
	}
	return j.compact()
}

// Shutdown closes the journal and releases the state directory. Every
// record is already fsynced. Calling it again does nothing.
func (j *Journal) Shutdown() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.lock == nil {
		return nil
	}
	var err error
	if j.f != nil {
		err = j.f.Close()
		j.f = nil
	}
	if lerr := j.lock.Close(); err == nil { // closing the descriptor drops the flock
		err = lerr
	}
	j.lock = nil
	if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	return nil
}

// append writes r and fsyncs, keeping the file under limit. After a failed
// append the file may end in a partial record, and a record appended behind
// it would share its line and be lost with it; so the next append compacts
// first, which rewrites the file from memory.
func (j *Journal) append(r record, limit int64) error {
	if j.lock == nil {
		return ErrShutdown
	}
	line, err := encode(r)
	if err != nil {
		return fmt.Errorf("journal: %s: %w", r.Op, err)
	}
	if j.dirty || j.f == nil || j.size+int64(len(line)) > limit {
		if err := j.compact(); err != nil {
			return err
		}
		if j.size+int64(len(line)) > limit {
			return fmt.Errorf("journal: full: %d bytes of open doors", j.size)
		}
	}
	if _, err := j.f.Write(line); err != nil {
		j.dirty = true
		return fmt.Errorf("journal: %s: %w", r.Op, err)
	}
	if j.crash != nil {
		j.crash("appended")
	}
	// After a failed fsync the kernel may have dropped the dirty pages:
	// the record may or may not be on disk. Rewrite before the next append.
	if err := j.f.Sync(); err != nil {
		j.dirty = true
		return fmt.Errorf("journal: %s: sync: %w", r.Op, err)
	}
	j.size += int64(len(line))
	return nil
}

func (j *Journal) autoCompact() {
	garbage := j.size - j.live
	if garbage < compactGarbage && (j.size < compactMin || j.size < 4*j.live) {
		return
	}
	if err := j.compact(); err != nil {
		j.warnings = append(j.warnings, err.Error())
	}
}

// compact writes the open entries to a temp file, fsyncs it, renames it over
// the journal, fsyncs the directory and reopens the journal for appending.
func (j *Journal) compact() (err error) {
	tmp, err := os.CreateTemp(j.dir, tempPrefix+"*"+tempSuffix) // mode 0600
	if err != nil {
		return fmt.Errorf("journal: compact: %w", err)
	}
	defer func() {
		if tmp != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	head, err := encode(record{Op: opNext, Next: j.next})
	if err != nil {
		return fmt.Errorf("journal: compact: %w", err)
	}
	buf := head
	for _, e := range j.entries() {
		line, err := encode(entryRecord(opOpen, e))
		if err != nil {
			return fmt.Errorf("journal: compact: entry %d: %w", e.ID, err)
		}
		buf = append(buf, line...)
	}
	if _, err := tmp.Write(buf); err != nil {
		return fmt.Errorf("journal: compact: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("journal: compact: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("journal: compact: %w", err)
	}
	if j.crash != nil {
		j.crash("compacted")
	}
	if err := os.Rename(tmp.Name(), j.path); err != nil {
		return fmt.Errorf("journal: compact: %w", err)
	}
	tmp = nil
	// From here the file on disk is the compacted one, or (if the directory
	// fsync does not make it) the old one; both say the same.
	if j.f != nil {
		j.f.Close()
		j.f = nil
	}
	j.size, j.live, j.dirty = int64(len(buf)), int64(len(buf)), false
	if err := syncDir(j.dir); err != nil {
		j.dirty = true
		return fmt.Errorf("journal: compact: sync %s: %w", j.dir, err)
	}
	f, err := trust.OpenFile(j.path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	j.f = f
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// Retry policy for a command that closes something (knockd's stop
// commands, knockdaemon's delayed commands, doormand's rule deletions),
// shared so every one of them gives up the same way. A failing command is
// tried again after 1 s, 2 s, 4 s … (at most 10 min apart), and at most
// MaxAttempts times in all, counting the attempts of earlier runs (Failures
// is journaled): at the bound the entry is dropped from the journal and
// the daemon logs the command, which the admin must then run by hand.
// Without a bound, a stop command that can never succeed (a rule that was
// never added, a tool that was removed) would stay in memory and the
// journal forever and run again at every restart.
const (
	MaxAttempts = 10 // 1+2+…+256 s: about 8.5 minutes of retries
	firstRetry  = time.Second
	maxRetry    = 10 * time.Minute
)

// Retry is the wait before the next attempt of a command that has failed
// failures times; ok is false when it must not be tried again.
func Retry(failures int) (wait time.Duration, ok bool) {
	if failures >= MaxAttempts {
		return 0, false
	}
	return min(firstRetry<<min(max(failures-1, 0), 20), maxRetry), true
}
