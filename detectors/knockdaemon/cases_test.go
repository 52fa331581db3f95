package knockdaemon_test

import (
	"flag"
	"fmt"
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
	"github.com/doorward/doorward/detectors/detectortest"
	"github.com/doorward/doorward/detectors/knockdaemon"
)

var update = flag.Bool("update", false, "rewrite want.log files")

var t0 = time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)

// TestCases runs every folder under testdata/cases: knockd.conf is the
// config, packets.txt the traffic (a pcap replayed through the real replay
// source and dispatcher), want.log the detector's log lines and events,
// each prefixed with the time since the first packet. A new behaviour is a
// new folder.
func TestCases(t *testing.T) {
	detectortest.Cases(t, *update, func(t *testing.T, dir string) string {
		cfg := loadConfig(t, filepath.Join(dir, "knockd.conf"))
		return run(t, cfg, detectortest.WritePcap(t, filepath.Join(dir, "packets.txt"), t0))
	})
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
	doors, err := knockdaemon.FromDoors(cfg.Doors, func(d *knockd.Door) string { return keys[d] }, 0)
	if err != nil {
		t.Fatal(err)
	}
	det := knockdaemon.New(doors, knockdaemon.Options{Logf: logf})
	disp := detectors.NewDispatcher([]detectors.Detector{det}, func(ev actions.Event) {
		logf("event %s %s port %d {%s}", ev.Door, ev.Addr, ev.Port, eventFields(ev))
	})
	detectortest.Replay(t, pcap, disp, &now, nil)
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

// eventFields lists the fields an action sees by name, sorted: the
// record's, IP (the address to open for, the record's or the sender) and
// LOGIP (the sender).
func eventFields(ev actions.Event) string {
	vals := map[string]string{"IP": ev.Addr.String(), "LOGIP": ev.Sender.String()}
	if r := ev.Record; r != nil {
		if r.Has&actions.HasIP != 0 {
			vals["IP"] = r.IP.String()
		}
		if r.Has&actions.HasPort != 0 {
			vals["PORT"] = fmt.Sprint(r.Port)
		}
		if r.Has&actions.HasTime != 0 {
			vals["TIME"] = fmt.Sprint(r.Time)
		}
		if r.Has&actions.HasChecksum != 0 {
			vals["CHECKSUM"] = fmt.Sprint(r.Checksum)
		}
		for n, v := range r.Flags {
			if r.Has&actions.HasFlag(n) != 0 {
				vals[fmt.Sprint("FLAG", n)] = fmt.Sprint(v)
			}
		}
	}
	var out []string
	for _, k := range slices.Sorted(maps.Keys(vals)) {
		out = append(out, k+"="+vals[k])
	}
	return strings.Join(out, " ")
}
