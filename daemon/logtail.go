package daemon

// File mode (knockdaemon's runmode = file): a firewall log as a packet
// source, next to or instead of live capture. These helpers are all the
// daemon needs; Live and replay call them in a few marked lines.

import (
	"bufio"
	"compress/gzip"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/doorward/doorward/config/knockd"
	"github.com/doorward/doorward/detectors"
	"github.com/doorward/doorward/detectors/logtail"
	replaysrc "github.com/doorward/doorward/detectors/replay"
)

// captureIfaces is where Live captures. With LogTail set, the log is the
// source and capture runs only on interfaces given explicitly (-i or
// Interface); otherwise on those, or on knockd's default.
func captureIfaces(o Options, cfg *knockd.Config) []string {
	ifaces := o.Interfaces
	if len(ifaces) == 0 {
		ifaces = cfg.Options.Interfaces
	}
	if len(ifaces) == 0 && cfg.Options.LogTail == "" {
		ifaces = []string{knockd.DefaultInterface}
	}
	return ifaces
}

// openLogTail starts following cfg's LogTail, if any (nil, nil if not).
// Its formats are the config's logformat sections; a reload replaces them
// (reloadLogTail), a new LogTail path takes a restart.
func (l *live) openLogTail(cfg *knockd.Config) (*logtail.Source, error) {
	if cfg.Options.LogTail == "" {
		return nil, nil
	}
	formats, err := logtail.Formats(cfg)
	if err != nil {
		return nil, err
	}
	return logtail.Open(cfg.Options.LogTail, logtail.Options{Formats: formats, Logf: l.log.Logf})
}

// reloadLogTail applies a reloaded config to the log source.
func (l *live) reloadLogTail(src *logtail.Source, cfg *knockd.Config) {
	if src == nil {
		return
	}
	if cfg.Options.LogTail != strings.TrimPrefix(src.String(), "tail:") {
		l.log.Logf("LogTail changed to %q: takes effect at restart", cfg.Options.LogTail)
	}
	formats, err := logtail.Formats(cfg)
	if err != nil {
		l.log.Logf("config reload: %v", err) // cannot happen: load validated them
		return
	}
	src.SetFormats(formats)
}

// readLog runs packets from the log through the detectors as read does
// for capture, one per batch (batch.go). The source restarts its tail
// itself; an error it returns (the file cannot be opened) is logged and
// retried every second.
func (l *live) readLog(ctx context.Context, src *logtail.Source) {
	b := newBatch(1, 0)
	for {
		pkt := &b.pkts[0]
		buf := pkt.Payload[:0]
		if err := src.ReadPacket(pkt); err != nil {
			if errors.Is(err, detectors.ErrClosed) || ctx.Err() != nil {
				return
			}
			l.log.Logf("%v; retrying", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
			continue
		}
		pkt.Payload = buf
		b.n = 1
		if !l.run(ctx, b) {
			return
		}
	}
}

// closeLogTail stops the log source and logs what it read.
func (l *live) closeLogTail(src *logtail.Source) {
	if src == nil {
		return
	}
	src.Close()
	st := src.Stats()
	l.log.Logf("log %s: %d lines, %d packets, %d other, %d malformed, %d too long",
		strings.TrimPrefix(src.String(), "tail:"), st.Lines, st.Packets, st.Other, st.Malformed, st.TooLong)
}

// listening is the "starting up" line's tail: the interfaces and the log.
func listening(ifaces []string, src *logtail.Source) string {
	var parts []string
	if len(ifaces) > 0 {
		parts = append(parts, "listening on "+strings.Join(ifaces, ","))
	}
	if src != nil {
		parts = append(parts, "following "+strings.TrimPrefix(src.String(), "tail:"))
	}
	return strings.Join(parts, ", ")
}

// openReplay opens a --replay file: a capture (pcap, pcapng, or either
// gzipped) by its magic number, anything else as a firewall log read with
// the config's log formats. The content decides, not the name: rotated
// logs are called kern.log.1 or kern.log.2.gz, captures anything.
func openReplay(path string, cfg *knockd.Config, logf func(string, ...any)) (detectors.Source, error) {
	isCap, err := isCapture(path)
	if err != nil {
		return nil, err
	}
	if isCap {
		return replaysrc.Open(path)
	}
	formats, err := logtail.Formats(cfg)
	if err != nil {
		return nil, err
	}
	return logtail.OpenFile(path, logtail.Options{Formats: formats, Logf: logf})
}

// isCapture reports whether path starts with a pcap or pcapng magic number,
// looking inside gzip.
func isCapture(path string) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	var r io.Reader = bufio.NewReader(f)
	var magic [4]byte
	n, _ := io.ReadFull(r, magic[:])
	if n >= 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return false, err
		}
		zr, err := gzip.NewReader(f)
		if err != nil {
			return false, fmt.Errorf("%s: %w", path, err)
		}
		defer zr.Close()
		n, _ = io.ReadFull(zr, magic[:])
	}
	if n < 4 {
		return false, nil
	}
	switch binary.LittleEndian.Uint32(magic[:]) {
	case 0xa1b2c3d4, 0xd4c3b2a1, 0xa1b23c4d, 0x4d3cb2a1, 0x0a0d0d0a:
		return true, nil
	}
	return false, nil
}
