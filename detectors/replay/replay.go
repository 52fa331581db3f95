// Package replay reads a pcap or pcapng file as a detectors.Source, and
// holds the one loop (Loop) that drives any finite source, a capture or a
// firewall log, through the detectors with packet time as the clock.
//
// It shares the decoder with live capture so a recorded knock is seen exactly
// as it was live, and it stamps each packet with its capture time so the
// engine's clock follows the file and timeouts fire as they would have.
package replay

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sync/atomic"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/doorward/doorward/detectors"
	"github.com/doorward/doorward/detectors/decode"
)

// Source is a finite packet source over one capture file.
type Source struct {
	path string
	f    *os.File
	read func() ([]byte, gopacket.CaptureInfo, error)
	link decode.LinkType

	closed atomic.Bool
}

var _ detectors.Source = (*Source)(nil)

const (
	pcapMicroLE = 0xa1b2c3d4
	pcapNanoLE  = 0xa1b23c4d
	pcapngBlock = 0x0a0d0d0a // section header block type, the same in both byte orders
)

// Open reads the file header and checks the link type, so a file the decoder
// cannot handle fails here rather than yielding nothing. Gzip-compressed
// files are read transparently, as pcapgo does.
//
// A pcapng file's link type is its first interface's; packets from other
// interfaces with a different link type are skipped, as libpcap does.
func Open(path string) (*Source, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("replay: %w", err)
	}
	s, err := newSource(path, f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("replay %s: %w", path, err)
	}
	return s, nil
}

func newSource(path string, f *os.File) (*Source, error) {
	br := bufio.NewReaderSize(f, 1<<16)
	magic, err := br.Peek(4)
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = errors.New("not a capture file: too short")
		}
		return nil, err
	}
	s := &Source{path: path, f: f}
	switch m := binary.LittleEndian.Uint32(magic); {
	case m == pcapngBlock:
		r, err := pcapgo.NewNgReader(br, pcapgo.DefaultNgReaderOptions)
		if err != nil {
			return nil, fmt.Errorf("pcapng: %w", err)
		}
		s.read, s.link = r.ZeroCopyReadPacketData, decode.LinkType(r.LinkType())
	case m == pcapMicroLE || m == pcapNanoLE || m == swap32(pcapMicroLE) || m == swap32(pcapNanoLE) ||
		(magic[0] == 0x1f && magic[1] == 0x8b): // gzip: only pcapgo.Reader unwraps it
		r, err := pcapgo.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("pcap: %w", err)
		}
		s.read, s.link = r.ZeroCopyReadPacketData, decode.LinkType(r.LinkType())
	default:
		return nil, fmt.Errorf("not a pcap or pcapng file (magic %#08x)", m)
	}
	if !s.link.Supported() {
		return nil, fmt.Errorf("unsupported link type %d (%v)", uint16(s.link), s.link)
	}
	return s, nil
}

func swap32(v uint32) uint32 {
	return v>>24 | v>>8&0xff00 | v<<8&0xff0000 | v<<24
}

// ReadPacket fills p with the next frame that decodes as TCP or UDP; other
// frames are skipped. It returns io.EOF at the end of the file. A file cut
// short mid-record also ends with io.EOF, since a capture killed while
// writing is common and what was written is still worth replaying.
//
// Like every Source, it is meant for one reading goroutine.
func (s *Source) ReadPacket(p *detectors.Packet) error {
	for {
		if s.closed.Load() {
			return detectors.ErrClosed
		}
		data, ci, err := s.read()
		switch {
		case err != nil && s.closed.Load():
			return detectors.ErrClosed
		case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
			return io.EOF
		case err != nil:
			return fmt.Errorf("replay %s: %w", s.path, err)
		}
		if !decode.Decode(s.link, data, p) {
			continue
		}
		p.Time = ci.Timestamp
		return nil
	}
}

// Close releases the file. It is safe to call more than once and from
// another goroutine: a read blocked on a pipe (a capture streamed through a
// FIFO) returns, and ReadPacket reports detectors.ErrClosed from then on.
// Payload of the last packet stays valid, since it lives in Go memory.
func (s *Source) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	return s.f.Close()
}

func (s *Source) String() string { return "pcap:" + s.path }

// LinkType is the link type from the file header.
func (s *Source) LinkType() decode.LinkType { return s.link }
