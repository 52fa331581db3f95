// Package logtail is knockdaemon's "file mode" as a detectors.Source: it
// reads a firewall log instead of the wire, each line through formats/fwlog
// into the same Packet live capture fills, so every detector (knockd
// sequences, port-span knocks) runs from a log exactly as from packets.
//
// Open follows a live log as tail -F does (rotation by rename and by
// truncation are followed); OpenFile reads a whole file once and ends with
// io.EOF, for knockd --replay on a log. Both read lines through one
// bounded reader (lines.go): a line costs at most MaxLineSize+1 bytes of
// memory, however long it is.
//
// Lines that are not packet lines are skipped; packet lines that cannot be
// read are counted (Stats) and logged at a bounded rate, never fatal: the
// log is partly written by whoever sends us packets.
package logtail

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/doorward/doorward/detectors"
	"github.com/doorward/doorward/formats/fwlog"
	"github.com/doorward/doorward/formats/proto"
	"github.com/doorward/doorward/internal/ratelimit"
)

// DefaultMaxLineSize bounds a line, and so the memory one line can take
// (MaxLineSize+1 bytes of read buffer, whatever the line's length). The
// kernel prints at most about 1 KiB for one packet (nf_log_syslog's worst
// case is 806 bytes plus prefix and syslog header), so a longer line is not
// a packet line.
const DefaultMaxLineSize = 4096

// checkEvery is how often a following Source looks at the file when no
// inotify event woke it: a safety net for lost events, and how soon lines
// appended to a file renamed away are read at the latest.
const checkEvery = time.Second

// Options configure a Source. The zero value works: the built-in iptables
// format with any prefix, inotify, only lines written after Open.
type Options struct {
	// Formats read each line, tried in order; the first that takes the
	// line wins. Empty: fwlog.Builtin("iptables") with no prefix.
	Formats []*fwlog.Format
	// Poll watches the file by polling (every 250 ms) instead of inotify,
	// for file systems where inotify reports nothing: NFS and other
	// network mounts, some FUSE and container overlay mounts.
	Poll bool
	// MaxLineSize: lines of this many bytes or more are dropped and
	// counted as TooLong. 0 means DefaultMaxLineSize.
	MaxLineSize int
	// FromStart makes Open read the lines already in the file first. By
	// default only lines appended after Open are read (tail -F -n 0): old
	// knocks in the log must not open doors again at every restart.
	FromStart bool
	// Logf receives notices: rotations and truncations followed, and
	// malformed lines at a bounded rate. nil discards them. It is called
	// from more than one goroutine.
	Logf func(format string, args ...any)
	// Now is the clock that stamps lines as read; nil is time.Now.
	Now func() time.Time
}

func (o *Options) defaults() {
	if len(o.Formats) == 0 {
		f, _ := fwlog.Builtin("iptables")
		o.Formats = []*fwlog.Format{f}
	}
	if o.MaxLineSize <= 0 {
		o.MaxLineSize = DefaultMaxLineSize
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Stats count what a Source read. They may be read from any goroutine.
type Stats struct {
	Lines     uint64 // lines read
	Packets   uint64 // TCP and UDP packets returned by ReadPacket
	Other     uint64 // lines skipped: other messages, non-TCP/UDP packets, fragments
	Malformed uint64 // packet lines that could not be read
	TooLong   uint64 // lines of MaxLineSize bytes or more
}

type counters struct {
	lines, packets, other, malformed, tooLong atomic.Uint64
}

func (c *counters) stats() Stats {
	return Stats{Lines: c.lines.Load(), Packets: c.packets.Load(), Other: c.other.Load(),
		Malformed: c.malformed.Load(), TooLong: c.tooLong.Load()}
}

// reader is what both Sources share: lines to packets.
type reader struct {
	path    string
	opt     Options
	formats atomic.Pointer[[]*fwlog.Format]
	n       counters
	fields  fwlog.Fields
	lim     *ratelimit.Limiter
}

func newReader(path string, opt Options) *reader {
	opt.defaults()
	r := &reader{path: path, opt: opt, lim: ratelimit.New(1.0/60, 5)}
	fs := opt.Formats
	r.formats.Store(&fs)
	return r
}

// setFormats replaces the formats, for a config reload; safe to call
// while another goroutine reads.
func (r *reader) setFormats(fs []*fwlog.Format) {
	if len(fs) == 0 {
		f, _ := fwlog.Builtin("iptables")
		fs = []*fwlog.Format{f}
	}
	r.formats.Store(&fs)
}

// line turns one line into p. It reports whether p holds a packet; read is
// when the line was read (a file's modification time for OpenFile), which
// also dates year-less timestamps. lineTime says whether the line's own
// time stamps the packet.
func (r *reader) line(text string, read time.Time, lineTime bool, p *detectors.Packet) bool {
	if len(text) >= r.opt.MaxLineSize {
		r.tooLong(read)
		return false
	}
	r.n.lines.Add(1)
	f, err := fwlog.ParseAny(*r.formats.Load(), text, read, &r.fields)
	switch {
	case err == nil:
	case errors.Is(err, fwlog.ErrMalformed):
		r.n.malformed.Add(1)
		if ok, _ := r.lim.Allow(read); ok {
			r.opt.Logf("%s: %v (%d so far): %.200q", r, err, r.n.malformed.Load(), text)
		}
		return false
	default:
		r.n.other.Add(1)
		return false
	}
	fl := &r.fields
	if fl.Proto != detectors.TCP && fl.Proto != detectors.UDP {
		r.n.other.Add(1)
		return false
	}
	buf := p.Payload[:0]
	*p = detectors.Packet{
		Time:    read,
		Src:     fl.Src,
		Dst:     fl.Dst,
		SrcPort: fl.SrcPort,
		DstPort: fl.DstPort,
		Proto:   fl.Proto,
		Length:  fl.Length,
		Payload: buf,
	}
	if fl.Proto == detectors.TCP {
		p.Flags = fl.Flags & proto.KnockFlags // a knock filter knows no ECE or CWR
	}
	if (lineTime || f.LineTime) && !fl.Time.IsZero() {
		p.Time = fl.Time
	}
	r.n.packets.Add(1)
	return true
}

// tooLong counts a line of MaxLineSize bytes or more, which is dropped.
func (r *reader) tooLong(read time.Time) {
	r.n.lines.Add(1)
	r.n.tooLong.Add(1)
	r.note(read, "line of %d bytes or more dropped", r.opt.MaxLineSize)
}

func (r *reader) note(now time.Time, format string, args ...any) {
	if ok, _ := r.lim.Allow(now); ok {
		r.opt.Logf("%s: "+format, append([]any{r}, args...)...)
	}
}

func (r *reader) String() string { return "log " + r.path }

// Source follows a growing log file, as tail -F does: rotation by rename
// and by truncation (copytruncate) are followed, and a file that does not
// exist yet is read once it is created. It is a detectors.Source for one
// reading goroutine; Close may be called from any.
//
// It reads the file itself, through a lineReader: a line costs at most
// MaxLineSize+1 bytes of memory however long it is (nxadm/tail, used
// before, read each line whole before cutting it). It wakes on inotify
// events in the file's directory (fsnotify) and, as a safety net, every
// checkEvery; with Options.Poll, or where inotify is not available, it
// looks every pollEvery instead.
type Source struct {
	*reader
	done   chan struct{}
	once   sync.Once
	closed atomic.Bool
	tick   *time.Ticker
	watch  *fsnotify.Watcher // nil when polling

	// Only the reading goroutine touches these; mu guards cur against
	// Close.
	mu      sync.Mutex
	cur     *os.File // the file being read; nil until the path exists
	curInfo os.FileInfo
	off     int64 // end of the last complete line taken from cur
	seen    int64 // cur's size when atEnd last looked
	lr      lineReader
	movedAt time.Time // when the path was first seen naming an empty new file

	atEOF        func() // tests: runs where a read has just found cur's end
	betweenLooks func() // tests: runs between atEnd's two looks
}

var _ detectors.Source = (*Source)(nil)

const (
	// pollEvery is how often a polling Source looks at the file.
	pollEvery = 250 * time.Millisecond
	// rotateGrace is how long, after a rotation by rename, the old file is
	// still read while the new one stays empty: its writer keeps writing
	// to it until logrotate's postrotate signals it.
	rotateGrace = 2 * checkEvery
)

// Open starts following path, which need not exist yet (it is read from
// its start once created). Lines already in the file are skipped unless
// Options.FromStart. The caller must Close the Source.
func Open(path string, opt Options) (*Source, error) {
	s := &Source{reader: newReader(path, opt), done: make(chan struct{})}
	s.lr.init(s.opt.MaxLineSize)
	if f, err := os.Open(path); err == nil {
		fi, err := f.Stat()
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("logtail %s: %w", path, err)
		}
		if !fi.Mode().IsRegular() {
			f.Close()
			return nil, fmt.Errorf("logtail %s: not a regular file", path)
		}
		off := int64(0)
		if !s.opt.FromStart {
			off = fi.Size()
		}
		s.use(f, fi, off)
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("logtail: %w", err)
	}
	every := checkEvery
	if !s.opt.Poll {
		w, err := fsnotify.NewWatcher()
		if err == nil {
			err = w.Add(filepath.Dir(path))
			if err != nil {
				w.Close()
			}
		}
		if err != nil {
			s.opt.Logf("logtail %s: no inotify (%v); polling every %v", path, err, pollEvery)
			every = pollEvery
		} else {
			s.watch = w
		}
	} else {
		every = pollEvery
	}
	s.tick = time.NewTicker(every)
	return s, nil
}

// SetFormats replaces the formats (a config reload); safe while reading.
func (s *Source) SetFormats(fs []*fwlog.Format) { s.setFormats(fs) }

// Stats returns the counts so far.
func (s *Source) Stats() Stats { return s.n.stats() }

// ReadPacket fills p with the next TCP or UDP packet line. Packets are
// stamped with the time the line was read, or with the line's own time for
// formats with LineTime. It blocks until a line comes or Close.
func (s *Source) ReadPacket(p *detectors.Packet) error {
	for {
		text, err := s.next()
		if err != nil {
			return err
		}
		if s.line(text, s.opt.Now(), false, p) {
			return nil
		}
	}
}

// next returns the next complete line, in file order across rotations.
func (s *Source) next() (string, error) {
	for {
		if s.closed.Load() {
			return "", detectors.ErrClosed
		}
		if s.cur == nil {
			s.openPath()
		}
		if s.cur != nil {
			line, n, long, err := s.lr.next()
			switch {
			case err == nil && long:
				s.off += n
				s.tooLong(s.opt.Now())
				continue
			case err == nil:
				s.off += n
				return trimCR(line), nil
			case s.lr.skip:
				s.off += n // a piece of a too-long line: dropped as read
			}
			// The end of what is written: a partial last line is read
			// again, whole, once its writer finishes it.
			s.lr.reset(s.cur, s.off)
			if s.atEOF != nil {
				s.atEOF()
			}
			if s.atEnd() {
				continue
			}
		}
		select {
		case <-s.done:
			return "", detectors.ErrClosed
		case <-s.tick.C:
		case <-s.events():
		case <-s.errors():
		}
	}
}

func (s *Source) events() <-chan fsnotify.Event {
	if s.watch == nil {
		return nil
	}
	return s.watch.Events
}

func (s *Source) errors() <-chan error {
	if s.watch == nil {
		return nil
	}
	return s.watch.Errors
}

// atEnd, at the end of what cur holds, looks for a truncation or a
// rotation and reports whether there is something new to read.
func (s *Source) atEnd() bool {
	if fi, err := s.cur.Stat(); err == nil && fi.Size() < s.off {
		// copytruncate: what was written before the copy and not read is
		// lost, as for any reader.
		s.opt.Logf("logtail %s: file truncated; reading it from the start", s.path)
		s.use(s.cur, fi, 0)
		return true
	} else if err == nil && fi.Size() > s.seen {
		// Ours grew since we last looked (lines written just before a
		// rename land here after the read that found its end): read them
		// before looking for a new file, or they are lost.
		s.seen = fi.Size()
		return true
	}
	if s.betweenLooks != nil {
		s.betweenLooks()
	}
	fi, err := os.Stat(s.path)
	if err != nil || os.SameFile(fi, s.curInfo) {
		// Same file, or renamed away with no new one yet: the writer
		// may still add to ours.
		s.movedAt = time.Time{}
		return false
	}
	// A new file at the path proves the rename, and so every line its
	// writer put in ours before it: lines that landed after the first look
	// are read before the switch, or they are lost.
	if cfi, err := s.cur.Stat(); err == nil && cfi.Size() > s.seen {
		s.seen = cfi.Size()
		return true
	}
	if fi.Size() == 0 {
		now := time.Now()
		if s.movedAt.IsZero() {
			s.movedAt = now
		}
		if now.Sub(s.movedAt) < rotateGrace {
			return false // the writer may still finish lines in the old file
		}
	}
	s.movedAt = time.Time{}
	if !s.openPath() {
		return false
	}
	s.opt.Logf("logtail %s: rotated; following the new file", s.path)
	return true
}

// openPath makes the file now at the path the one read, from its start,
// and reports whether it could.
func (s *Source) openPath() bool {
	f, err := os.Open(s.path)
	if err != nil {
		return false
	}
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		f.Close()
		return false
	}
	return s.use(f, fi, 0)
}

// use makes f the file read, from off; it reports false (and closes f)
// after Close.
func (s *Source) use(f *os.File, fi os.FileInfo, off int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Load() {
		f.Close()
		return false
	}
	if s.cur != nil && s.cur != f {
		s.cur.Close()
	}
	s.cur, s.curInfo, s.off, s.seen = f, fi, off, off
	s.lr.skip = false
	s.lr.reset(f, off)
	return true
}

// Close stops following and releases the file. It is safe to call more
// than once and from another goroutine; a pending ReadPacket returns
// detectors.ErrClosed.
func (s *Source) Close() error {
	s.once.Do(func() {
		s.closed.Store(true)
		close(s.done)
		s.tick.Stop()
		if s.watch != nil {
			s.watch.Close()
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.cur != nil {
			s.cur.Close()
		}
	})
	return nil
}

func (s *Source) String() string { return "tail:" + s.path }
