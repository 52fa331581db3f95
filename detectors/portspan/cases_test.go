package portspan_test

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/doorward/doorward/actions"
	"github.com/doorward/doorward/config/knockd"
	"github.com/doorward/doorward/detectors"
	"github.com/doorward/doorward/detectors/decode"
	"github.com/doorward/doorward/detectors/pcaptest"
	"github.com/doorward/doorward/detectors/portspan"
	"github.com/doorward/doorward/detectors/replay"
)

var update = flag.Bool("update", false, "rewrite want.log files")

var t0 = time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)

// TestCases runs every folder under testdata/cases: knockd.conf is the
// config, packets.txt the traffic (a pcap replayed through the real replay
// source and dispatcher), want.log the detector's log lines and events,
// each prefixed with the time since the first packet. A new behaviour is a
// new folder.
func TestCases(t *testing.T) {
	dirs, _ := filepath.Glob("testdata/cases/*")
	if len(dirs) == 0 {
		t.Fatal("no test cases")
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			cfg := loadConfig(t, filepath.Join(dir, "knockd.conf"))
			pcap := writePcap(t, filepath.Join(dir, "packets.txt"))
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

func loadConfig(t *testing.T, path string) *knockd.Config {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := knockd.Parse("knockd.conf", src)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func writePcap(t *testing.T, script string) string {
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

// run replays pcap through a detector for cfg's port-span doors, as the
// daemon does (Expire before each packet, then an hour later), and returns
// the log with the events.
func run(t *testing.T, cfg *knockd.Config, pcap string) string {
	var out strings.Builder
	now := t0
	logf := func(format string, args ...any) {
		fmt.Fprintf(&out, "+%.2f %s\n", now.Sub(t0).Seconds(), fmt.Sprintf(format, args...))
	}
	keys := cfg.Keys()
	doors, err := portspan.FromDoors(cfg.Doors, func(d *knockd.Door) string { return keys[d] }, 0)
	if err != nil {
		t.Fatal(err)
	}
	det := portspan.New(doors, portspan.Options{Logf: logf})
	disp := detectors.NewDispatcher([]detectors.Detector{det}, func(ev actions.Event) {
		var vals []string
		for _, k := range slices.Sorted(maps.Keys(ev.Values)) {
			vals = append(vals, k+"="+ev.Values[k])
		}
		logf("event %s %s port %d {%s}", ev.Door, ev.Addr, ev.Port, strings.Join(vals, " "))
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
	if n := det.Sources(); n != 0 {
		t.Errorf("%d senders still tracked an hour after the last packet", n)
	}
	for _, d := range doors {
		if st := det.Stats(d.Key); st.Retransmits+st.Evicted+st.Refused > 0 {
			logf("stats %s: %d retransmits, %d evicted, %d refused", d.Key, st.Retransmits, st.Evicted, st.Refused)
		}
	}
	return out.String()
}
