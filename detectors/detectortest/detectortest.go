// Package detectortest runs detectors the way the daemon's --replay does,
// for the test-case folders of every detector: a readable packet script
// becomes a pcap file, which goes through the real replay source and
// dispatcher with packet time as the clock.
package detectortest

import (
	"bytes"
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
	return WriteFrames(t, frames)
}

// WriteFrames writes frames to a pcap file in a temporary directory and
// returns its path: for captures a test generates (a flood of thousands of
// spoofed sources) rather than reads from a script.
func WriteFrames(t testing.TB, frames []pcaptest.Frame) string {
	t.Helper()
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

// Replay feeds pcap to disp through replay.Loop, the loop knockd --replay
// runs, so a case folder sees what an admin's replay would: *now follows
// the packets, attempts are expired before each packet, afterPacket (if
// not nil) runs after each, and at the end time moves on an hour so every
// attempt times out.
func Replay(t testing.TB, pcap string, disp *detectors.Dispatcher, now *time.Time, afterPacket func()) {
	t.Helper()
	ReplayEvery(t, pcap, disp, now, 0, afterPacket)
}

// ReplayEvery is Replay with attempts expired at most once every interval
// of packet time, as the live daemon does (once a second), rather than
// before each packet: for floods of many thousand sources, where a sweep
// per packet would be quadratic.
func ReplayEvery(t testing.TB, pcap string, disp *detectors.Dispatcher, now *time.Time, every time.Duration, afterPacket func()) {
	t.Helper()
	src, err := replay.Open(pcap)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	err = replay.NewLoop(src, now).Run(replay.Hooks{
		Tick:      disp.Expire,
		TickEvery: every,
		Packet: func(p *detectors.Packet) {
			disp.Dispatch(p)
			if afterPacket != nil {
				afterPacket()
			}
		},
		Expire: disp.Expire,
		Linger: time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
}

// Cases runs run for every folder under testdata/cases as a subtest and
// compares what it returns with the folder's want.log, rewriting want.log
// instead when update is set (the packages' -update flag). A new
// behaviour is a new folder.
func Cases(t *testing.T, update bool, run func(t *testing.T, dir string) string) {
	dirs, _ := filepath.Glob("testdata/cases/*")
	if len(dirs) == 0 {
		t.Fatal("no test cases under testdata/cases")
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			got := run(t, dir)
			want := filepath.Join(dir, "want.log")
			if update {
				if err := os.WriteFile(want, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
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
