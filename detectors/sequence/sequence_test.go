package sequence_test

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/doorward/doorward/actions"
	"github.com/doorward/doorward/config/knockd"
	"github.com/doorward/doorward/detectors"
	"github.com/doorward/doorward/detectors/decode"
	"github.com/doorward/doorward/detectors/pcaptest"
	"github.com/doorward/doorward/detectors/replay"
	"github.com/doorward/doorward/detectors/sequence"
)

var update = flag.Bool("update", false, "rewrite want.log files")

var t0 = time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)

// TestCases runs every folder under testdata/cases: knockd.conf is the
// config, packets.txt the traffic (turned into a pcap and replayed through
// the real replay source), want.log the detector's log lines and events, each
// prefixed with the time since the first packet. A new behaviour is a new
// folder.
func TestCases(t *testing.T) {
	dirs, _ := filepath.Glob("testdata/cases/*")
	if len(dirs) == 0 {
		t.Fatal("no test cases")
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			cfg, err := knockd.Load(filepath.Join(dir, "knockd.conf"))
			if err != nil {
				t.Fatal(err)
			}
			frames := readPackets(t, filepath.Join(dir, "packets.txt"))
			pcap := filepath.Join(t.TempDir(), "knocks.pcap")
			var buf bytes.Buffer
			if err := pcaptest.WritePcap(&buf, decode.Ethernet, frames); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(pcap, buf.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			got := run(t, cfg, pcap)
			want := filepath.Join(dir, "want.log")
			if *update {
				os.WriteFile(want, []byte(got), 0o644)
			}
			w, err := os.ReadFile(want)
			if err != nil {
				t.Fatal(err)
			}
			if got != string(w) {
				t.Errorf("got:\n%s\nwant:\n%s", got, w)
			}
		})
	}
}

func run(t *testing.T, cfg *knockd.Config, pcap string) string {
	var out strings.Builder
	var now time.Time
	logf := func(format string, args ...any) {
		fmt.Fprintf(&out, "+%.1f %s\n", now.Sub(t0).Seconds(), fmt.Sprintf(format, args...))
	}
	det := sequence.New(sequence.FromConfig(cfg), sequence.Options{Logf: logf})
	disp := detectors.NewDispatcher([]detectors.Detector{det}, func(ev actions.Event) {
		logf("event %s %s", ev.Door, ev.Addr)
	})
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
		now = p.Time
		disp.Expire(now)
		disp.Dispatch(&p)
	}
	now = now.Add(time.Hour)
	disp.Expire(now)
	if det.Sources() != 0 {
		t.Errorf("%d sources still tracked after every timeout", det.Sources())
	}
	return out.String()
}

func readPackets(t *testing.T, path string) []pcaptest.Frame {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	frames, err := pcaptest.ParseScript(f, t0)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return frames
}
