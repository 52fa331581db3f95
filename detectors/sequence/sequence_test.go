package sequence_test

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
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

// readPackets parses lines "TIME SRC DST PORT/PROTO [FLAGS]", e.g.
// "1.5 10.0.0.2 10.0.0.1 8000/tcp S"; FLAGS are letters of FSRPAU, default S.
func readPackets(t *testing.T, path string) []pcaptest.Frame {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var frames []pcaptest.Frame
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		fs := strings.Fields(line)
		if len(fs) < 4 {
			t.Fatalf("%s:%d: want TIME SRC DST PORT/PROTO [FLAGS]", path, n)
		}
		sec, err1 := strconv.ParseFloat(fs[0], 64)
		port, proto, _ := strings.Cut(fs[3], "/")
		pn, err2 := strconv.ParseUint(port, 10, 16)
		if err1 != nil || err2 != nil {
			t.Fatalf("%s:%d: bad time or port", path, n)
		}
		fr := pcaptest.Frame{
			Time:  t0.Add(time.Duration(sec * float64(time.Second))),
			Src:   netip.AddrPortFrom(netip.MustParseAddr(fs[1]), uint16(40000+n)),
			Dst:   netip.AddrPortFrom(netip.MustParseAddr(fs[2]), uint16(pn)),
			Proto: detectors.TCP,
			Flags: detectors.SYN,
		}
		if proto == "udp" {
			fr.Proto, fr.Flags = detectors.UDP, 0
		}
		if len(fs) > 4 {
			fr.Flags = 0
			for _, c := range fs[4] {
				fr.Flags |= detectors.TCPFlags(1) << strings.IndexRune("FSRPAU", c)
			}
		}
		frames = append(frames, fr)
	}
	return frames
}
