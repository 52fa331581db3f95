package logtail

import (
	"bufio"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"time"

	"github.com/doorward/doorward/detectors"
)

// FileSource reads a whole log file once, for knockd --replay: a finite
// detectors.Source that ends with io.EOF.
//
// Time is the log's: each packet gets its line's timestamp, so sequence
// timeouts and Cmd_Timeout follow the log as they follow a capture's
// packet times. A line without one (dmesg output) gets the time of the
// line before, or the file's modification time before the first dated
// line. Time never goes back: a line older than the one before (remote
// syslog delivers out of order) gets the previous time. Year-less syslog
// timestamps are dated against the file's modification time (see
// fwlog.LineTime), which rotation keeps: the last line of a log is never
// newer than its last write.
type FileSource struct {
	*reader
	f      *os.File
	lr     lineReader
	mtime  time.Time // dates year-less lines; the time before the first dated one
	last   time.Time // the previous packet's time
	closed atomic.Bool
}

var _ detectors.Source = (*FileSource)(nil)

// OpenFile opens a log for one pass. A gzip-compressed log (kern.log.2.gz)
// is read transparently. Options.Poll, FromStart and Now do not apply.
func OpenFile(path string, opt Options) (*FileSource, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("logtail: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("logtail %s: %w", path, err)
	}
	s := &FileSource{reader: newReader(path, opt), f: f, mtime: fi.ModTime()}
	// The line reader bounds what one line may cost; longer lines are
	// skipped as they are read.
	s.lr.init(s.opt.MaxLineSize)
	peek := bufio.NewReader(f)
	var r io.Reader = peek
	if magic, _ := peek.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(peek)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("logtail %s: %w", path, err)
		}
		r = zr
	}
	s.lr.br.Reset(r)
	return s, nil
}

// Stats returns the counts so far.
func (s *FileSource) Stats() Stats { return s.n.stats() }

// ReadPacket fills p with the next TCP or UDP packet line and returns
// io.EOF at the end of the file. A last line without a newline is read.
func (s *FileSource) ReadPacket(p *detectors.Packet) error {
	for {
		if s.closed.Load() {
			return detectors.ErrClosed
		}
		line, _, long, err := s.lr.next()
		switch {
		case long || (err != nil && s.lr.skip):
			s.lr.skip = false // a last line too long ends the file
			s.tooLong(s.mtime)
			if err == nil {
				continue
			}
		case errors.Is(err, io.EOF) && len(line) > 0:
			err = nil // a last line without a newline
		}
		if err != nil {
			if s.closed.Load() {
				return detectors.ErrClosed
			}
			if errors.Is(err, io.EOF) {
				return io.EOF
			}
			return fmt.Errorf("logtail %s: %w", s.path, err)
		}
		text := trimCR(line)
		if !s.line(text, s.mtime, true, p) {
			continue
		}
		if (s.fields.Time.IsZero() && !s.last.IsZero()) || p.Time.Before(s.last) {
			p.Time = s.last // no time of its own, or out of order: the line before's
		}
		s.last = p.Time
		return nil
	}
}

// Close releases the file; safe to call more than once.
func (s *FileSource) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	return s.f.Close()
}

func (s *FileSource) String() string { return "log:" + s.path }
