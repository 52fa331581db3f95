package fwknop_test

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/doorward/doorward/actions"
	"github.com/doorward/doorward/actions/filestore"
	"github.com/doorward/doorward/config/knockd"
	"github.com/doorward/doorward/detectors"
	"github.com/doorward/doorward/detectors/detectortest"
	_ "github.com/doorward/doorward/detectors/fwknop"
	"github.com/doorward/doorward/detectors/pcaptest"
	"github.com/doorward/doorward/formats/fwknop"
)

var update = flag.Bool("update", false, "rewrite want.log files")

var t0 = time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)

// TestCases runs every folder under testdata/cases: doors.conf holds
// Type = fwknop doors, packets.txt the SPA packets (sealed by the test
// with formats/fwknop, see readPackets), want.log the detector's lines
// and events, each prefixed with the time since the first packet.
func TestCases(t *testing.T) {
	detectortest.Cases(t, *update, func(t *testing.T, dir string) string {
		src, err := os.ReadFile(filepath.Join(dir, "doors.conf"))
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := knockd.Parse("doors.conf", src)
		if err != nil {
			t.Fatal(err)
		}
		frames := readPackets(t, filepath.Join(dir, "packets.txt"))
		return run(t, cfg, detectortest.WriteFrames(t, frames), filestore.Memory())
	})
}

func run(t *testing.T, cfg *knockd.Config, pcap string, store actions.Store) string {
	var out strings.Builder
	var now time.Time
	logf := func(format string, args ...any) {
		at := "load"
		if !now.IsZero() {
			at = fmt.Sprintf("+%.1f", now.Sub(t0).Seconds())
		}
		fmt.Fprintf(&out, "%s %s\n", at, fmt.Sprintf(format, args...))
	}
	keys := cfg.Keys()
	p, ok := detectors.Lookup("fwknop")
	if !ok {
		t.Fatal("fwknop is not registered")
	}
	det, err := p.Detector(cfg.Doors, &detectors.Env{Logf: logf, Key: func(d *knockd.Door) string { return keys[d] }, Store: store, Replay: true, LogRate: -1})
	if err != nil {
		t.Fatal(err)
	}
	if err := det.(detectors.Committer).Commit(); err != nil {
		t.Fatal(err)
	}
	defer det.(interface{ Close() error }).Close()
	disp := detectors.NewDispatcher([]detectors.Detector{det}, func(ev actions.Event) {
		logf("event %s %s %s/%d %ds (sender %s)", ev.Door, ev.Addr, protoName(ev.Record.Flags[0]), ev.Port, ev.Record.Time, ev.Sender)
	})
	detectortest.Replay(t, pcap, disp, &now, nil)
	return out.String()
}

func protoName(p uint8) string {
	switch p {
	case 6:
		return "tcp"
	case 17:
		return "udp"
	}
	return strconv.Itoa(int(p))
}

// readPackets reads a case's packets, one a line:
//
//	TIME SRC DST PORT FIELD=VALUE...
//
// The fields say what packet to seal: key= and hmac= (the stanza's keys,
// hmac=none for none), digest= (HMAC type, sha256 by default), access=
// (the access message, "0.0.0.0,tcp/22" by default), user=, timeout=
// (the client's), age= (seconds the client's clock is behind), cmd= (a
// command message). Instead of sealing, raw=TEXT sends TEXT as it is,
// again=N repeats the payload of packet line N (a replay), prefix=N
// repeats it with fwknop's stripped "U2FsdGVkX1" put back.
func readPackets(t *testing.T, path string) []pcaptest.Frame {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var frames []pcaptest.Frame
	byLine := map[int][]byte{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		fs := strings.Fields(line)
		if len(fs) < 4 {
			t.Fatalf("%s:%d: want TIME SRC DST PORT FIELD=VALUE...", path, n)
		}
		sec, err := strconv.ParseFloat(fs[0], 64)
		if err != nil {
			t.Fatalf("%s:%d: %v", path, n, err)
		}
		at := t0.Add(time.Duration(sec * float64(time.Second)))
		src := netip.MustParseAddr(fs[1])
		dst := netip.MustParseAddr(fs[2])
		port, _ := strconv.Atoi(fs[3])
		kv := map[string]string{"key": "k1-secret", "hmac": "h1-secret", "access": "0.0.0.0,tcp/22", "user": "alice"}
		for _, f := range fs[4:] {
			k, v, _ := strings.Cut(f, "=")
			kv[k] = v
		}
		var payload []byte
		switch {
		case kv["raw"] != "":
			payload = []byte(kv["raw"])
		case kv["again"] != "" || kv["prefix"] != "":
			ref, _ := strconv.Atoi(kv["again"] + kv["prefix"])
			if byLine[ref] == nil {
				t.Fatalf("%s:%d: no packet at line %d", path, n, ref)
			}
			payload = byLine[ref]
			if kv["prefix"] != "" {
				payload = append([]byte("U2FsdGVkX1"), payload...)
			}
		default:
			payload = seal(t, at, kv, n)
		}
		byLine[n] = payload
		frames = append(frames, pcaptest.Frame{
			Time: at, Src: netip.AddrPortFrom(src, uint16(40000+n)), Dst: netip.AddrPortFrom(dst, uint16(port)),
			Proto: detectors.UDP, Payload: payload,
		})
	}
	return frames
}

func seal(t *testing.T, at time.Time, kv map[string]string, n int) []byte {
	t.Helper()
	k := fwknop.Keys{Key: []byte(kv["key"])}
	if kv["hmac"] != "none" {
		k.HMACKey = []byte(kv["hmac"])
	}
	if d := kv["digest"]; d != "" {
		var err error
		if k.HMAC, err = fwknop.ParseDigest(d); err != nil {
			t.Fatal(err)
		}
	}
	age, _ := strconv.Atoi(kv["age"])
	m := fwknop.Message{User: kv["user"], Time: at.Unix() - int64(age), Type: fwknop.MsgAccess, Access: kv["access"]}
	if c := kv["cmd"]; c != "" {
		m.Type, m.Access = fwknop.MsgCommand, "0.0.0.0,"+c
	}
	if to, _ := strconv.Atoi(kv["timeout"]); to > 0 {
		m.ClientTimeout = uint32(to)
	}
	// Deterministic randomness per line, so want.log does not change.
	pkt, err := fwknop.Seal(&m, &k, bytes.NewReader(bytes.Repeat([]byte{byte(n)}, 4096)))
	if err != nil {
		t.Fatal(err)
	}
	return pkt
}
