// Package logtail is knockdaemon's "file mode" as a detectors.Source: it
// reads a firewall log instead of the wire, each line through formats/fwlog
// into the same Packet live capture fills, so every detector (knockd
// sequences, port-span knocks) runs from a log exactly as from packets.
//
// Open follows a live log with github.com/nxadm/tail (tail -F: rotation by
// rename and by truncation are followed); OpenFile reads a whole file once
// and ends with io.EOF, for knockd --replay on a log.
//
// Lines that are not packet lines are skipped; packet lines that cannot be
// read are counted (Stats) and logged at a bounded rate, never fatal: the
// log is partly written by whoever sends us packets.
package logtail

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nxadm/tail"

	"github.com/doorward/doorward/detectors"
	"github.com/doorward/doorward/formats/fwlog"
	"github.com/doorward/doorward/internal/ratelimit"
)

// DefaultMaxLineSize bounds a line. The kernel prints at most about 1 KiB
// for one packet (nf_log_syslog's worst case is 806 bytes plus prefix and
// syslog header), so a longer line is not a packet line.
const DefaultMaxLineSize = 4096

// checkEvery is how often a following Source looks whether the log was
// rotated away under it (see Source.checkRotated).
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
	// Logf receives notices: rotations and reopens (from nxadm/tail) and
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
	r.n.lines.Add(1)
	if len(text) >= r.opt.MaxLineSize {
		r.n.tooLong.Add(1)
		r.note(read, "line of %d bytes or more dropped", r.opt.MaxLineSize)
		return false
	}
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
	var proto detectors.Proto
	switch fl.Proto {
	case fwlog.TCP:
		proto = detectors.TCP
	case fwlog.UDP:
		proto = detectors.UDP
	default:
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
		Proto:   proto,
		Length:  fl.Length,
		Payload: buf,
	}
	if proto == detectors.TCP {
		p.Flags = detectors.TCPFlags(fl.Flags) & (detectors.FIN | detectors.SYN | detectors.RST | detectors.PSH | detectors.ACK | detectors.URG)
	}
	if (lineTime || f.LineTime) && !fl.Time.IsZero() {
		p.Time = fl.Time
	}
	r.n.packets.Add(1)
	return true
}

func (r *reader) note(now time.Time, format string, args ...any) {
	if ok, _ := r.lim.Allow(now); ok {
		r.opt.Logf("%s: "+format, append([]any{r}, args...)...)
	}
}

func (r *reader) String() string { return "log " + r.path }

// Source follows a growing log file. It is a detectors.Source for one
// reading goroutine; Close may be called from any.
type Source struct {
	*reader
	t      *tail.Tail
	done   chan struct{}
	once   sync.Once
	closed atomic.Bool
	tick   *time.Ticker

	// Rotation: nxadm/tail reopens the path when the file is renamed
	// away, and may do so before it read the last lines of the old file
	// (its inotify watcher reports the write and the rename on two
	// channels and it picks either). So the Source keeps its own handle
	// on the file tail reads, knows the offset after the last line it
	// took from it, and reads what is left from that handle itself
	// before the first line of the new file. Lines tail still delivers
	// from the old file at or below that offset are dropped as seen.
	//
	// Only the reading goroutine touches these; mu guards t and cur
	// against Close.
	mu      sync.Mutex
	started time.Time // when t was started
	cur     *os.File
	curInfo os.FileInfo
	off     int64         // end of the last line taken from cur
	drain   *bufio.Reader // what is left of cur, while being read
	pending *tail.Line    // the new file's first line, after the drain
	// truncated: cur was seen shorter than off (copytruncate), so the
	// next reopen of the same file is not a re-read.
	truncated bool
	movedAt   time.Time // when the path was first seen naming another file
}

var _ detectors.Source = (*Source)(nil)

// Open starts following path, which need not exist yet (it is read once
// created). The caller must Close the Source.
func Open(path string, opt Options) (*Source, error) {
	s := &Source{reader: newReader(path, opt), done: make(chan struct{})}
	var loc *tail.SeekInfo
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
		s.cur, s.curInfo = f, fi
		if !s.opt.FromStart {
			s.off = fi.Size()
			loc = &tail.SeekInfo{Offset: 0, Whence: io.SeekEnd}
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("logtail: %w", err)
	}
	// A file created after Open is read from its start: all of it is new.
	t, err := tail.TailFile(path, s.tailConfig(loc))
	if err != nil {
		if s.cur != nil {
			s.cur.Close()
		}
		return nil, fmt.Errorf("logtail %s: %w", path, err)
	}
	s.t, s.started = t, time.Now()
	s.tick = time.NewTicker(checkEvery)
	return s, nil
}

func (s *Source) tailConfig(loc *tail.SeekInfo) tail.Config {
	logf, path := s.opt.Logf, s.path
	return tail.Config{
		Location:      loc,
		ReOpen:        true,
		Follow:        true,
		Poll:          s.opt.Poll,
		MaxLineSize:   s.opt.MaxLineSize,
		CompleteLines: true,
		Logger:        log.New(logWriter(func(msg string) { logf("logtail %s: %s", path, msg) }), "", 0),
	}
}

// restart follows the path again after nxadm/tail gave up: it does when the
// path vanishes between its reopen and its next watch (two rotations in a
// row), and on errors such as a file made unreadable. It resumes where we
// are in the file we hold, or reads a new file from its start; lines seen
// twice are dropped as usual. Restarts are at least a second apart, so a
// file that stays unreadable does not spin.
func (s *Source) restart(why string) error {
	s.opt.Logf("logtail %s: %s; following again", s.path, why)
	_ = s.t.Stop()
	if wait := time.Second - time.Since(s.started); wait > 0 {
		timer := time.NewTimer(wait)
		defer timer.Stop()
		select {
		case <-timer.C:
		case <-s.done:
			return detectors.ErrClosed
		}
	}
	var loc *tail.SeekInfo
	if s.cur != nil && !s.rotated() {
		loc = &tail.SeekInfo{Offset: s.off, Whence: io.SeekStart}
	}
	t, err := tail.TailFile(s.path, s.tailConfig(loc))
	if err != nil {
		return fmt.Errorf("logtail %s: %w", s.path, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Load() {
		_ = t.Stop()
		return detectors.ErrClosed
	}
	s.t, s.started = t, time.Now()
	return nil
}

// logWriter turns nxadm/tail's log.Logger output into Logf calls.
type logWriter func(string)

func (w logWriter) Write(p []byte) (int, error) {
	w(strings.TrimSpace(string(p)))
	return len(p), nil
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

// next returns the next line to parse, in file order across rotations.
func (s *Source) next() (string, error) {
	for {
		if s.closed.Load() {
			return "", detectors.ErrClosed
		}
		if s.drain != nil {
			if text, ok := s.drainLine(); ok {
				return text, nil
			}
		}
		if l := s.pending; l != nil {
			s.pending = nil
			s.switchFile(l)
			return l.Text, nil
		}
		select {
		case <-s.done:
			return "", detectors.ErrClosed
		case <-s.tick.C:
			s.checkRotated()
		case l, ok := <-s.t.Lines:
			if !ok {
				if s.closed.Load() {
					return "", detectors.ErrClosed
				}
				if err := s.restart(fmt.Sprint(s.t.Err())); err != nil {
					return "", err
				}
				continue
			}
			if l.Err != nil {
				continue // a notice, not a line (tail's rate limiter: unused)
			}
			if l.Num == 1 && !s.fromCur(l) {
				// The first line since tail opened another file than
				// the one we hold: if ours was rotated away, finish it
				// first.
				if s.cur != nil && s.rotated() {
					s.startDrain()
					s.pending = l
					continue
				}
				s.switchFile(l)
				return l.Text, nil
			}
			if l.Num == 1 {
				if s.reread(l) {
					continue
				}
				s.truncated = false
				s.off = l.SeekInfo.Offset
				return l.Text, nil
			}
			if l.SeekInfo.Offset <= s.off {
				// Already read from our own handle, or a further piece of
				// a line tail split at MaxLineSize (pieces share the
				// offset of the line's end).
				continue
			}
			s.off = l.SeekInfo.Offset
			return l.Text, nil
		}
	}
}

// fromCur reports whether l, a first line since tail (re)opened the path,
// is in the file we hold, at the offset tail gives: tail's first open races
// with ours, and a truncated or spuriously reopened file is still ours.
func (s *Source) fromCur(l *tail.Line) bool {
	if s.cur == nil {
		return false
	}
	n := int64(len(l.Text)) + 1
	at := l.SeekInfo.Offset - n
	if at < 0 || n > int64(s.opt.MaxLineSize)+2 {
		return false
	}
	buf := make([]byte, n)
	if _, err := s.cur.ReadAt(buf, at); err != nil {
		return false
	}
	return buf[n-1] == '\n' && string(buf[:n-1]) == l.Text
}

// reread reports whether l, the first line since tail reopened the file we
// already hold, is one we took before: nxadm/tail sometimes reopens the
// same file twice after a rotation (a stale inotify event for the path),
// and then reads it again from the start. A reopen after a truncation is
// told apart by the file having been shorter than what we read.
func (s *Source) reread(l *tail.Line) bool {
	if s.cur == nil || s.truncated || l.SeekInfo.Offset > s.off {
		return false
	}
	fi, err := s.cur.Stat()
	return err == nil && fi.Size() >= s.off
}

// rotated reports whether the path no longer names the file we hold.
func (s *Source) rotated() bool {
	fi, err := os.Stat(s.path)
	return err != nil || !os.SameFile(fi, s.curInfo)
}

// checkRotated, every second, reads what was appended to a file renamed
// away while tail has not moved on yet (nothing new in the new file), so
// the end of a knock logged just before a rotation is not held back until
// the next line.
func (s *Source) checkRotated() {
	if s.cur == nil {
		// The file did not exist at Open; tail reads it from its start
		// once it does, and so would we.
		s.hold(0)
		return
	}
	if fi, err := s.cur.Stat(); err == nil && fi.Size() < s.off {
		s.truncated = true // copytruncate: tail reopens it, and we must not skip
	}
	if s.drain != nil || !s.rotated() {
		s.movedAt = time.Time{}
		return
	}
	s.startDrain()
	// nxadm/tail's shared inotify watcher can lose the watch it adds
	// after a reopen (its removal of the old watch races with the new
	// one), and then never sees the next rotation. If a new file has
	// been at the path for two checks and tail has not moved to it,
	// start it again.
	if _, err := os.Stat(s.path); err != nil {
		return // not there yet: tail waits for it
	}
	now := time.Now()
	switch {
	case s.movedAt.IsZero():
		s.movedAt = now
	case now.Sub(s.movedAt) >= 2*checkEvery:
		s.movedAt = time.Time{}
		if err := s.restart("rotation not followed"); err != nil {
			s.opt.Logf("logtail %s: %v", s.path, err)
		}
	}
}

// hold opens the path as the file we hold, at offset off.
func (s *Source) hold(off int64) {
	f, err := os.Open(s.path)
	if err != nil {
		return
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Load() {
		f.Close()
		return
	}
	if s.cur != nil {
		s.cur.Close()
	}
	s.cur, s.curInfo, s.off = f, fi, off
}

func (s *Source) startDrain() {
	s.drain = bufio.NewReaderSize(io.NewSectionReader(s.cur, s.off, 1<<62), s.opt.MaxLineSize+1)
}

// drainLine returns the next complete line of the old file, advancing
// s.off past it. At its end the drain stops; a partial last line is left
// (the writer may still finish it, and a later drain reads it then).
func (s *Source) drainLine() (string, bool) {
	for {
		start := s.off
		b, err := s.drain.ReadSlice('\n')
		if err == nil {
			s.off += int64(len(b))
			return strings.TrimSuffix(string(b[:len(b)-1]), "\r"), true
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			s.drain = nil
			return "", false
		}
		// Too long: skip to its end, and count it once it is complete.
		n := int64(len(b))
		for errors.Is(err, bufio.ErrBufferFull) {
			b, err = s.drain.ReadSlice('\n')
			n += int64(len(b))
		}
		if err != nil {
			s.off = start
			s.drain = nil
			return "", false
		}
		s.off = start + n
		s.n.lines.Add(1)
		s.n.tooLong.Add(1)
	}
}

// switchFile takes l, the first line of the file tail now reads, and makes
// that file the one we hold.
func (s *Source) switchFile(l *tail.Line) {
	s.drain, s.truncated, s.movedAt = nil, false, time.Time{}
	if s.cur == nil || s.rotated() {
		s.hold(l.SeekInfo.Offset)
	}
	s.off = l.SeekInfo.Offset
}

// Close stops following and releases the file. It is safe to call more
// than once and from another goroutine; a pending ReadPacket returns
// detectors.ErrClosed.
func (s *Source) Close() error {
	s.once.Do(func() {
		s.closed.Store(true)
		close(s.done)
		s.tick.Stop()
		s.mu.Lock()
		defer s.mu.Unlock()
		_ = s.t.Stop()
		if s.cur != nil {
			s.cur.Close()
		}
	})
	return nil
}

func (s *Source) String() string { return "tail:" + s.path }
