package knockdaemon

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/doorward/doorward/daemon"
	"github.com/doorward/doorward/detectors/decode"
	"github.com/doorward/doorward/detectors/pcaptest"
	wire "github.com/doorward/doorward/formats/knockdaemon"
)

// knock is one knockclient run: a record, sent from an address at a time
// (seconds after t0).
type knock struct {
	at    float64
	from  string
	ip    string // the record's IP field
	port  uint16
	flag0 uint8
}

var behaveT0 = time.Date(2026, 11, 25, 9, 0, 0, 0, time.Local)

// encode spells each knock on the span as the Perl knockclient would, one
// hit every 10 ms, from the legacy settings.
func encode(t *testing.T, s wire.Settings, knocks []knock) (hits []hit) {
	t.Helper()
	codec, err := s.Codec()
	if err != nil {
		t.Fatal(err)
	}
	for i, k := range knocks {
		r := wire.Record{IP: netip.MustParseAddr(k.ip), Port: k.port}
		r.Flags[0] = k.flag0
		// A new IV for every knock, as the Perl client's rand() gave: the
		// same IV twice would be the same ciphertext, which the spent
		// store refuses as a replay.
		ports, err := codec.Encode(nil, &r, strings.NewReader(fmt.Sprintf("%08d", 36574210+i)))
		if err != nil {
			t.Fatal(err)
		}
		for i, p := range ports {
			hits = append(hits, hit{at: k.at + float64(i)*0.01, from: k.from, port: p})
		}
	}
	return hits
}

type hit struct {
	at   float64
	from string
	port uint16
}

// replayRun replays file against the config ini and returns the commands
// run, in order.
func replayRun(t *testing.T, ini, file string) []string {
	t.Helper()
	var got []string
	var out, errOut bytes.Buffer
	o := daemon.Options{Config: ini, LogFile: filepath.Join(t.TempDir(), "knockd.log"), Stdout: &out, Stderr: &errOut, Verbose: true,
		Runner: func(ctx context.Context, line string) (int, error) {
			got = append(got, line)
			return 0, nil
		}}
	if code := daemon.Replay(context.Background(), o, file); code != 0 {
		t.Fatalf("replay exit %d: %s", code, errOut.String())
	}
	t.Logf("daemon log:\n%s", out.String())
	return got
}

// TestMigratedRecipesBehave: the manual's recipes, migrated, replayed
// against knocks encoded as the Perl client would send them, run the
// commands the manual says they run. Network mode from a capture.
func TestMigratedRecipesBehave(t *testing.T) {
	dir := t.TempDir()
	res := migrateFixture(t, "manual.conf")
	ini := filepath.Join(dir, "knockd.conf")
	if err := os.WriteFile(ini, []byte(res.INI), 0o644); err != nil {
		t.Fatal(err)
	}
	settings := wire.Settings{Portspan: "1024-5000,6000-25000,26000-35789", Knock: "IP,PORT,FLAG0,CHECKSUM", Encrypt: "yes", Key: "my_secret_phrase", IV: "yes"}
	knocks := []knock{
		{0, "10.1.1.1", "10.1.1.1", 22, 1},    // throttle: opens, and closes a minute later
		{10, "10.1.1.1", "10.1.1.1", 22, 1},   // within the hour: not again (the close action runs again)
		{20, "10.1.1.2", "10.9.9.9", 80, 0},   // limit: 1st opening, for the record's IP
		{30, "10.1.1.2", "10.9.9.9", 80, 0},   // 2nd
		{40, "10.1.1.2", "10.9.9.9", 80, 0},   // 3rd: refused
		{50, "10.1.1.3", "10.1.1.3", 3306, 2}, // one-time by counter, two uses
		{60, "10.1.1.3", "10.1.1.3", 3306, 2},
		{70, "10.1.1.3", "10.1.1.3", 3306, 2}, // refused
		{80, "10.1.1.4", "10.1.1.4", 443, 7},  // one-time by unique value
		{90, "10.1.1.4", "10.1.1.4", 443, 7},  // refused
		{100, "10.1.1.4", "10.1.1.4", 443, 8}, // a new value
		{110, "10.1.1.5", "10.1.1.5", 25, 1},  // unique per hour
		{120, "10.1.1.5", "10.1.1.5", 25, 1},  // refused within the hour
		{130, "10.1.1.6", "10.1.1.6", 110, 1}, // unique per day
		{140, "10.1.1.6", "10.1.1.6", 110, 1}, // refused within the day
	}
	hits := encode(t, settings, knocks)
	var script strings.Builder
	for _, h := range hits {
		fmt.Fprintf(&script, "%.3f %s 192.0.2.1 %d/tcp\n", h.at, h.from, h.port)
	}
	frames, err := pcaptest.ParseScript(strings.NewReader(script.String()), behaveT0)
	if err != nil {
		t.Fatal(err)
	}
	var pcap bytes.Buffer
	if err := pcaptest.WritePcap(&pcap, decode.Ethernet, frames); err != nil {
		t.Fatal(err)
	}
	capture := filepath.Join(dir, "knocks.pcap")
	if err := os.WriteFile(capture, pcap.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	open := func(ip string, port int) string {
		return fmt.Sprintf("/sbin/iptables -I INPUT -p tcp -s %s/32 -d 0/0 --dport %d --syn -j ACCEPT", ip, port)
	}
	closeCmd := func(ip string, port int) string {
		return fmt.Sprintf("/sbin/iptables -D INPUT -p tcp -s %s/32 -d 0/0 --dport %d --syn -j ACCEPT", ip, port)
	}
	want := []string{
		open("10.1.1.1", 22),
		open("10.9.9.9", 80), open("10.9.9.9", 80),
		open("10.1.1.3", 3306),
		closeCmd("10.1.1.1", 22), // the first knock's delayed close, due at 60 s, as the clock passes it
		open("10.1.1.3", 3306),
		closeCmd("10.1.1.1", 22), // the second knock's, due at 70 s
		open("10.1.1.4", 443), open("10.1.1.4", 443),
		open("10.1.1.5", 25),
		open("10.1.1.6", 110),
	}
	got := replayRun(t, ini, capture)
	if !slices.Equal(got, want) {
		t.Errorf("commands:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestMigratedFileModeBehaves: the file-mode fixture, migrated, replayed
// from a firewall log holding the knock's lines as the kernel's LOG target
// prints them (with the legacy Required text as the log prefix): the
// built-in format reads them into the port-span detector.
func TestMigratedFileModeBehaves(t *testing.T) {
	dir := t.TempDir()
	res := migrateFixture(t, "filemode.conf")
	ini := filepath.Join(dir, "knockd.conf")
	if err := os.WriteFile(ini, []byte(res.INI), 0o644); err != nil {
		t.Fatal(err)
	}
	settings := wire.Settings{Portspan: "1024-1279", Knock: "IP,PORT,FLAG0,CHECKSUM", Encrypt: "yes", Key: "my_secret_phrase", IV: "yes"}
	hits := encode(t, settings, []knock{{0, "198.51.100.7", "198.51.100.7", 22, 1}, {5, "198.51.100.8", "198.51.100.8", 80, 1}})
	var log strings.Builder
	log.WriteString("Nov 25 09:00:00 gw kernel: [  100.000000] e1000e: eth0 NIC Link is Up\n")
	for i, h := range hits {
		ts := behaveT0.Add(time.Duration(h.at * float64(time.Second)))
		fmt.Fprintf(&log, "%s gw kernel: [  %d.%06d] KNOCK: IN=eth0 OUT= MAC=52:54:00:12:34:56:52:54:00:ab:cd:ef:08:00 SRC=%s DST=192.0.2.1 LEN=60 TOS=0x00 PREC=0x00 TTL=64 ID=%d DF PROTO=TCP SPT=%d DPT=%d WINDOW=64240 RES=0x00 SYN URGP=0 \n",
			ts.Format(time.StampMicro), 100+int(h.at), i, h.from, 1000+i, 40000+i, h.port)
	}
	file := filepath.Join(dir, "firewall")
	if err := os.WriteFile(file, []byte(log.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	mtime := behaveT0.Add(time.Hour)
	os.Chtimes(file, mtime, mtime)
	want := []string{
		"/sbin/iptables -I INPUT -p tcp -s 198.51.100.7/32 --dport 22 --syn -j ACCEPT",
		"logger -t knockdaemon opened 22 for 198.51.100.7, knocked from 198.51.100.7",
	}
	if got := replayRun(t, ini, file); !slices.Equal(got, want) {
		t.Errorf("commands:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
