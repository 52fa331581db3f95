package logtail

import (
	"bufio"
	"errors"
	"io"
	"strings"
)

// lineReader reads lines with one fixed buffer of max+1 bytes: a line
// longer than that is skipped piece by piece as it is read, never held
// whole, so a multi-megabyte line (or one that never ends) costs the
// buffer and nothing more. Both Sources read through it.
type lineReader struct {
	br *bufio.Reader
	// skip: inside a line too long for the buffer; what comes up to its
	// newline is dropped. It survives reset, so a long line still being
	// written is skipped across reads.
	skip bool
}

func (l *lineReader) init(max int) {
	l.br = bufio.NewReaderSize(nil, max+1)
}

// reset makes l read r from off on, keeping its buffer.
func (l *lineReader) reset(r io.ReaderAt, off int64) {
	l.br.Reset(io.NewSectionReader(r, off, 1<<62))
}

// next returns the next line without its newline, and n, the bytes it
// consumed. long is true, once, for a line that did not fit (line is then
// nil). At the end of the input (err io.EOF or a read error), line is the
// partial line read so far and n its length; if skip is set they are a
// piece of a too-long line, already dropped.
func (l *lineReader) next() (line []byte, n int64, long bool, err error) {
	for {
		b, err := l.br.ReadSlice('\n')
		n += int64(len(b))
		switch {
		case err == nil && l.skip:
			l.skip = false
			return nil, n, true, nil
		case err == nil:
			return b[:len(b)-1], n, false, nil
		case errors.Is(err, bufio.ErrBufferFull):
			l.skip = true
		case l.skip:
			return nil, n, false, err
		default:
			return b, n, false, err
		}
	}
}

// trimCR returns a line as a string, without the \r of a CRLF ending.
func trimCR(b []byte) string { return strings.TrimSuffix(string(b), "\r") }
