// Package otp reads and consumes knockd one-time sequence files
// (One_Time_Sequences, ../shared/specs/knockd.md §4.3), crash-safely.
//
// The format is knockd's: one sequence per line in Sequence syntax
// ("2001,2002", " 2003:udp,2004"). Lines are trimmed of C whitespace; blank
// lines and lines starting with '#' are skipped; a line that does not parse
// is skipped and reported by Problems. The active sequence is always the
// first valid line. Using it writes one '#' over the first byte of its line,
// exactly as knockd does, so files written and consumed by knockd keep
// working here and back (" 2003,2004" becomes "#2003,2004", "2001,2002"
// becomes "#001,2002").
//
// Where knockd differs:
//   - The '#' lands on the used line even when unparseable lines come before
//     it (knockd marks the unparseable line and accepts the used sequence a
//     second time, §16 OTS2).
//   - The '#' is fsynced before Use returns, and Use re-reads the file and
//     checks that the line still holds the sequence before writing, so an
//     admin's edit is never overwritten and a sequence that cannot be marked
//     is refused. The file is not kept open: an editor may replace it.
//   - As in knockd, a file with no valid unused line is an error at Open (so
//     at --check, start and reload). Once open, using its last line is not:
//     Current reports ok=false and the admin may append lines; Changed and
//     Reload pick them up (knockd crashed there, §4.3).
//   - The file decides who may open a door, so it is opened by the state-file
//     rules of internal/trust: owned by root (or the daemon's uid), not
//     writable by group or others, in a directory that passes the same test,
//     and not through a symbolic link.
//
// The file is never truncated or rewritten; the only write is that one byte.
package otp

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/doorward/doorward/formats/sequence"
	"github.com/doorward/doorward/formats/srcpos"
	"github.com/doorward/doorward/internal/trust"
)

const (
	// MaxLineLen is the longest line, without its '\n', that can hold a
	// sequence: knockd reads lines with fgets(PATH_MAX) and splits longer
	// ones. A longer non-comment line is a problem and is skipped.
	MaxLineLen = 4095
	// MaxFileSize bounds the memory a file can make us use.
	MaxFileSize = 16 << 20
)

var (
	// ErrNoSequence is returned by Use when the file holds no unused
	// sequence.
	ErrNoSequence = errors.New("no unused one-time sequence left")
	// ErrNotInFile is returned by Use when no unused line of the file (as
	// it is on disk now) holds the sequence: the admin removed it or marked
	// it used. The knock must not be accepted.
	ErrNotInFile = errors.New("sequence is not an unused line of the file")
)

// space is C's isspace in the C locale, what knockd's trim() strips.
const space = " \t\n\v\f\r"

// entry is one valid, unused line.
type entry struct {
	line int    // 1-based line number
	off  int64  // offset of the line's first byte, where the '#' goes
	raw  string // the line as on disk, without its '\n' (a CR is kept)
	seq  []sequence.Knock
}

// File is a one-time sequence file. Its methods are safe for concurrent use.
type File struct {
	path string

	mu       sync.Mutex
	entries  []entry // valid unused lines, in file order
	problems []error
	snap     snapshot // the file as last read or written by us
}

// Open reads the file at path. It fails if the file does not exist, is not
// a regular file, cannot be opened for writing by us (it must be, to mark
// sequences used), is larger than MaxFileSize or cannot be read, fails
// internal/trust, or holds no valid unused line (knockd's rule). Unparseable
// lines are not errors by themselves: see Problems.
func Open(path string) (*File, error) {
	f, err := load(path)
	if err != nil {
		return nil, err
	}
	if len(f.entries) == 0 {
		msg := fmt.Sprintf("%s: no valid unused sequence line (knockd refuses such a file); add one", path)
		if len(f.problems) > 0 {
			msg += fmt.Sprintf(" (%d lines skipped, first: %v)", len(f.problems), f.problems[0])
		}
		return nil, errors.New(msg)
	}
	return f, nil
}

// load is Open without the "at least one valid line" rule: what a file
// whose last line was used looks like to a running daemon.
func load(path string) (*File, error) {
	f := &File{path: path}
	if err := f.Reload(); err != nil {
		return nil, err
	}
	return f, nil
}

// Path returns the path given to Open.
func (f *File) Path() string { return f.path }

// Current returns the active sequence, the first valid unused line, and its
// 1-based line number. ok is false when the file has no unused sequence: the
// door can then never open until lines are added.
func (f *File) Current() (seq []sequence.Knock, line int, ok bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.entries) == 0 {
		return nil, 0, false
	}
	e := f.entries[0]
	return slices.Clone(e.seq), e.line, true
}

// Problems returns the lines skipped at the last read because they do not
// parse or are longer than MaxLineLen. Each is a *srcpos.Error whose message
// reads "path:line: line skipped: ...".
func (f *File) Problems() []error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.problems)
}

// Reload re-reads the file (after Changed reported an edit); Current may
// change. On error f keeps its previous contents, so the daemon keeps its
// current sequence (and Use fails while the file cannot be opened).
func (f *File) Reload() error {
	fd, err := trust.OpenFile(f.path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("one-time sequences: %w", err)
	}
	data, snap, err := readAll(fd)
	fd.Close()
	if err != nil {
		return fmt.Errorf("one-time sequences %s: %w", f.path, err)
	}
	entries, problems := parse(f.path, data)
	f.mu.Lock()
	f.entries, f.problems, f.snap = entries, problems, snap
	f.mu.Unlock()
	return nil
}

// Changed reports whether the file on disk differs from what f last read or
// wrote: another file at the path (an editor's rename), another size, mtime
// or ctime. It costs one stat; poll it (say every second) and call Reload
// when it is true. Our own Use does not make it true. An error (the file is
// missing, maybe in the middle of an editor's save) means "unknown": keep
// the current state and poll again.
//
// An in-place edit that keeps the size and lands within the filesystem's
// timestamp granularity of our last read can go unnoticed until the next
// edit; Use does not depend on Changed for safety (it re-reads the file).
func (f *File) Changed() (bool, error) {
	fi, err := os.Stat(f.path)
	if err != nil {
		return false, fmt.Errorf("one-time sequences: %w", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return !f.snap.same(fi), nil
}

// Use durably marks seq used, as knockd does, by writing '#' over the first
// byte of its line. Call it with the sequence that was knocked (normally
// Current's) before opening the door, and open the door only if it returns
// nil: a sequence that cannot be marked must not be accepted.
//
// Use opens the file afresh (an editor may have replaced it), re-reads it
// and picks the line to mark: the line where f last saw seq if it is still
// there unchanged, otherwise the first unused line that holds seq, otherwise
// ErrNotInFile. It writes the single byte in place and fsyncs it before
// returning nil; nothing else in the file is touched. On success f reflects
// the file as it is now on disk (Current moves to the next unused line, or
// wherever the admin's edits put it) and Changed does not report the write.
// On error f is unchanged.
func (f *File) Use(seq []sequence.Knock) error {
	return f.use(seq, nil)
}

// Steps of use, in order, for the crash test's hook.
const (
	stepOpen     = "open"     // before opening the file
	stepOpened   = "opened"   // after opening it
	stepVerified = "verified" // after reading and choosing the line
	stepWritten  = "written"  // after writing the '#'
	stepSynced   = "synced"   // after fsync
	stepClosed   = "closed"   // after close
)

// use is Use with a hook called at each step (nil in production; the crash
// test kills the process from it).
func (f *File) use(seq []sequence.Knock, hook func(step string)) error {
	step := func(s string) {
		if hook != nil {
			hook(s)
		}
	}
	if len(seq) == 0 {
		return ErrNoSequence
	}
	name := sequence.Format(seq)

	f.mu.Lock()
	defer f.mu.Unlock()
	var last *entry
	if i := slices.IndexFunc(f.entries, func(e entry) bool { return slices.Equal(e.seq, seq) }); i >= 0 {
		last = &f.entries[i]
	}

	step(stepOpen)
	fd, err := trust.OpenFile(f.path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("mark %s used: %w", name, err)
	}
	step(stepOpened)
	mark, entries, problems, err := choose(f.path, fd, last, seq)
	if err != nil {
		fd.Close()
		return fmt.Errorf("mark %s used in %s: %w", name, f.path, err)
	}
	step(stepVerified)
	// One byte cannot be torn; the line's other bytes stay as they are.
	if _, err := fd.WriteAt([]byte{'#'}, entries[mark].off); err != nil {
		fd.Close()
		return fmt.Errorf("mark %s used: %w", name, err)
	}
	step(stepWritten)
	if err := fd.Sync(); err != nil {
		fd.Close()
		return fmt.Errorf("mark %s used: %w", name, err)
	}
	step(stepSynced)
	// Our write changed the mtime; remember the file as it is now so
	// Changed does not take the write for an edit. If fstat fails, the
	// zero snapshot makes Changed report a change, and Reload fixes it.
	var snap snapshot
	if fi, err := fd.Stat(); err == nil {
		snap = snapshotOf(fi)
	}
	if err := fd.Close(); err != nil {
		// The mark is durable, but be conservative: refuse the knock. The
		// sequence is lost, never replayable.
		return fmt.Errorf("mark %s used: %w", name, err)
	}
	step(stepClosed)

	// The '#' turned that line into a comment and changed nothing else.
	f.entries = slices.Delete(entries, mark, mark+1)
	f.problems = problems
	f.snap = snap
	return nil
}

// choose reads the open file and returns the index, in its fresh entries, of
// the line to mark for seq: last's line if the file still holds it at the
// same offset, byte for byte, else the first line that parses to seq.
func choose(path string, fd *os.File, last *entry, seq []sequence.Knock) (int, []entry, []error, error) {
	data, _, err := readAll(fd)
	if err != nil {
		return 0, nil, nil, err
	}
	entries, problems := parse(path, data)
	if last != nil {
		if i := slices.IndexFunc(entries, func(e entry) bool { return e.off == last.off && e.raw == last.raw }); i >= 0 {
			return i, entries, problems, nil
		}
	}
	if i := slices.IndexFunc(entries, func(e entry) bool { return slices.Equal(e.seq, seq) }); i >= 0 {
		return i, entries, problems, nil
	}
	return 0, nil, nil, ErrNotInFile
}

// readAll reads a whole regular file of at most MaxFileSize bytes. The
// snapshot is taken before reading: an edit during the read then shows as a
// change at the next poll.
func readAll(fd *os.File) ([]byte, snapshot, error) {
	fi, err := fd.Stat()
	if err != nil {
		return nil, snapshot{}, err
	}
	if !fi.Mode().IsRegular() {
		return nil, snapshot{}, fmt.Errorf("not a regular file (%v)", fi.Mode().Type())
	}
	if fi.Size() > MaxFileSize {
		return nil, snapshot{}, fmt.Errorf("file is %d bytes, more than the %d allowed", fi.Size(), MaxFileSize)
	}
	data, err := io.ReadAll(io.NewSectionReader(fd, 0, MaxFileSize+1))
	if err != nil {
		return nil, snapshot{}, err
	}
	if len(data) > MaxFileSize {
		return nil, snapshot{}, fmt.Errorf("file grew beyond the %d bytes allowed", MaxFileSize)
	}
	return data, snapshotOf(fi), nil
}

// parse splits data into lines at '\n' and returns its valid lines and the
// lines it skipped for not parsing.
func parse(path string, data []byte) ([]entry, []error) {
	var entries []entry
	var problems []error
	for off, n := 0, 1; off < len(data); n++ {
		raw := data[off:]
		next := len(data)
		if i := bytes.IndexByte(raw, '\n'); i >= 0 {
			raw, next = raw[:i], off+i+1
		}
		trimmed := bytes.Trim(raw, space)
		var err error
		switch {
		case len(trimmed) == 0 || trimmed[0] == '#':
		case len(raw) > MaxLineLen:
			err = fmt.Errorf("line is %d bytes long, more than %d", len(raw), MaxLineLen)
		default:
			var seq []sequence.Knock
			if seq, err = sequence.Parse(string(trimmed)); err == nil {
				entries = append(entries, entry{line: n, off: int64(off), raw: string(raw), seq: seq})
			}
		}
		if err != nil {
			problems = append(problems, &srcpos.Error{
				Pos: srcpos.Pos{File: path, Line: n},
				Err: fmt.Errorf("line skipped: %w", err),
			})
		}
		off = next
	}
	return entries, problems
}

// snapshot is what Changed compares: which file, its size and times.
type snapshot struct {
	fi    os.FileInfo // for os.SameFile (device and inode)
	size  int64
	mtime time.Time
	ctime time.Time // zero where unavailable
}

func snapshotOf(fi os.FileInfo) snapshot {
	return snapshot{fi: fi, size: fi.Size(), mtime: fi.ModTime(), ctime: ctime(fi)}
}

func (s snapshot) same(fi os.FileInfo) bool {
	return s.fi != nil && os.SameFile(s.fi, fi) && s.size == fi.Size() &&
		s.mtime.Equal(fi.ModTime()) && s.ctime.Equal(ctime(fi))
}
