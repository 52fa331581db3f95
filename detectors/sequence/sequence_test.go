package sequence_test

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/doorward/doorward/actions"
	"github.com/doorward/doorward/actions/filestore"
	"github.com/doorward/doorward/config/knockd"
	"github.com/doorward/doorward/detectors"
	"github.com/doorward/doorward/detectors/detectortest"
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
	detectortest.Cases(t, *update, func(t *testing.T, dir string) string {
		cfg := loadCase(t, dir)
		got := run(t, cfg, detectortest.WritePcap(t, filepath.Join(dir, "packets.txt"), t0))
		checkOneTimeFiles(t, dir, cfg)
		return got
	})
}

func run(t *testing.T, cfg *knockd.Config, pcap string) string {
	var out strings.Builder
	var now time.Time
	logf := func(format string, args ...any) {
		fmt.Fprintf(&out, "+%.1f %s\n", now.Sub(t0).Seconds(), fmt.Sprintf(format, args...))
	}
	dirty := false
	det := sequence.New(mustDoors(t, cfg), sequence.Options{Logf: logf, RulesChanged: func() { dirty = true }})
	disp := detectors.NewDispatcher([]detectors.Detector{det}, func(ev actions.Event) {
		logf("event %s %s", ev.Door, ev.Addr)
	})
	detectortest.Replay(t, pcap, disp, &now, func() {
		if dirty { // as the daemon does: a one-time sequence moved on
			disp.Reindex()
			dirty = false
		}
	})
	if det.Sources() != 0 {
		t.Errorf("%d sources still tracked after every timeout", det.Sources())
	}
	return out.String()
}

// loadCase reads a case's knockd.conf. A one-time sequence file in the case
// (otp.seq) is copied to a temporary directory, which $DIR names in the
// config, because knocks consume it.
func loadCase(t *testing.T, dir string) *knockd.Config {
	t.Helper()
	src, err := os.ReadFile(filepath.Join(dir, "knockd.conf"))
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	if b, err := os.ReadFile(filepath.Join(dir, "otp.seq")); err == nil {
		if err := os.WriteFile(filepath.Join(tmp, "otp.seq"), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := knockd.Parse("knockd.conf", bytes.ReplaceAll(src, []byte("$DIR"), []byte(tmp)))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// checkOneTimeFiles compares each consumed one-time sequence file with the
// case's want.seq.
func checkOneTimeFiles(t *testing.T, dir string, cfg *knockd.Config) {
	want, err := os.ReadFile(filepath.Join(dir, "want.seq"))
	if err != nil && !*update {
		return
	}
	for _, d := range cfg.Doors {
		if d.OneTimeSequences == "" {
			continue
		}
		got, err := os.ReadFile(d.OneTimeSequences)
		if err != nil {
			t.Fatal(err)
		}
		if *update {
			os.WriteFile(filepath.Join(dir, "want.seq"), got, 0o644)
		} else if !bytes.Equal(got, want) {
			t.Errorf("one-time file after the knocks:\n%s\nwant:\n%s", got, want)
		}
	}
}

// openOneTime opens one-time files through the state layer, as the daemon
// does (a memory Store still marks the file, knockd's format).
var openOneTime = sequence.OneTimeFrom(filestore.Memory())

func mustDoors(t *testing.T, cfg *knockd.Config) []sequence.Door {
	t.Helper()
	doors, err := sequence.FromConfig(cfg, openOneTime)
	if err != nil {
		t.Fatal(err)
	}
	return doors
}
