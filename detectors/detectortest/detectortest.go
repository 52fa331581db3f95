// Package detectortest runs detectors the way the daemon's --replay does,
// for the test-case folders of every detector: a readable packet script
// becomes a pcap file, which goes through the real replay source and
// dispatcher with packet time as the clock.
package detectortest

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/doorward/doorward/detectors"
	"github.com/doorward/doorward/detectors/decode"
	"github.com/doorward/doorward/detectors/pcaptest"
	"github.com/doorward/doorward/detectors/replay"
)

// WritePcap turns script (pcaptest.ParseScript form, times after t0) into
// a pcap file in a temporary directory and returns its path.
func WritePcap(t testing.TB, script string, t0 time.Time) string {
	t.Helper()
	f, err := os.Open(script)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	frames, err := pcaptest.ParseScript(f, t0)
	if err != nil {
		t.Fatalf("%s: %v", script, err)
	}
	var buf bytes.Buffer
	if err := pcaptest.WritePcap(&buf, decode.Ethernet, frames); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "knocks.pcap")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// Replay feeds pcap to disp as the daemon's replay does: *now follows the
// packets, attempts are expired before each packet, afterPacket (if not
// nil) runs after each, and at the end time moves on an hour so every
// attempt times out.
func Replay(t testing.TB, pcap string, disp *detectors.Dispatcher, now *time.Time, afterPacket func()) {
	t.Helper()
	src, err := replay.Open(pcap)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var p detectors.Packet
	for {
		err := src.ReadPacket(&p)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		*now = p.Time
		disp.Expire(*now)
		disp.Dispatch(&p)
		if afterPacket != nil {
			afterPacket()
		}
	}
	*now = now.Add(time.Hour)
	disp.Expire(*now)
}
