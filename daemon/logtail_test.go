package daemon

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/doorward/doorward/config/knockd"
	"github.com/doorward/doorward/detectors/decode"
	"github.com/doorward/doorward/detectors/pcaptest"
)

const fileModeConf = `[options]
	LogTail = %s
	StateDir = %s

[fw]
	Type   = logformat
	Format = iptables
	Prefix = DOORWARD:

[openSSH]
	sequence      = 7000,8000,9000
	seq_timeout   = 5
	tcpflags      = syn
	start_command = open %%IP%%
	start_command_6 = open %%IP%%
	cmd_timeout   = 10
	stop_command  = close %%IP%%
	stop_command_6  = close %%IP%%
`

// kernLine is an iptables LOG line for a SYN, as rsyslog writes it.
func kernLine(t time.Time, src string, sport, dport int) string {
	return fmt.Sprintf("%s gw kernel: [%5d.%06d] DOORWARD: IN=eth0 OUT= MAC=52:54:00:12:34:56:52:54:00:ab:cd:ef:08:00 SRC=%s DST=198.51.100.1 LEN=60 TOS=0x00 PREC=0x00 TTL=64 ID=%d DF PROTO=TCP SPT=%d DPT=%d WINDOW=64240 RES=0x00 SYN URGP=0 \n",
		t.Format(time.Stamp), 12000+sport%1000, sport%1000000, src, sport*13%65536, sport, dport)
}

// nft6Line is an nftables log line for a SYN over IPv6, as journalctl
// -o short-iso prints it.
func nft6Line(t time.Time, sport, dport int) string {
	return fmt.Sprintf("%s gw kernel: DOORWARD: IN=eth0 OUT= MACSRC=52:54:00:ab:cd:ef MACDST=52:54:00:12:34:56 MACPROTO=86dd SRC=2001:0db8:0000:0000:0000:0000:0000:000a DST=2001:0db8:0000:0000:0000:0000:0000:0001 LEN=80 TC=0 HOPLIMIT=64 FLOWLBL=327371 PROTO=TCP SPT=%d DPT=%d SEQ=%d ACK=0 WINDOW=64800 RES=0x00 SYN URGP=0 OPT (020405A00402080A0001E2400000000001030307) \n",
		t.UTC().Format("2006-01-02T15:04:05.000000-07:00"), sport, dport, sport*7919)
}

// TestReplayLog: knockd --replay on a firewall log instead of a capture,
// plain and gzipped (a rotated kern.log.2.gz), with the lines' times as the
// clock: the IPv4 knock opens and closes after Cmd_Timeout in log time, the
// slow one times out, the IPv6 knock (nftables lines) opens too, and the
// malformed line is counted and logged.
func TestReplayLog(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Date(2026, 11, 25, 8, 1, 2, 0, time.Local)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	text := "Nov 25 08:00:00 gw kernel: [11999.000000] e1000e 0000:00:19.0 eth0: NIC Link is Up\n" +
		kernLine(at(0), "192.0.2.10", 40000, 7000) +
		kernLine(at(0.5), "192.0.2.10", 40001, 8000) +
		kernLine(at(1), "192.0.2.10", 40002, 9000) +
		kernLine(at(2), "192.0.2.11", 40003, 7000) +
		kernLine(at(9), "192.0.2.11", 40004, 8000) + // past seq_timeout
		"Nov 25 08:01:12 gw kernel: DOORWARD: IN=eth0 OUT= SRC=192.0.2.300 DST=198.51.100.1 LEN=60 PROTO=TCP SPT=1 DPT=7000 SYN URGP=0 \n" +
		nft6Line(at(20), 40005, 7000) +
		nft6Line(at(20.1), 40006, 8000) +
		nft6Line(at(20.2), 40007, 9000)
	plain := filepath.Join(dir, "kern.log")
	if err := os.WriteFile(plain, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	var zbuf bytes.Buffer
	zw := gzip.NewWriter(&zbuf)
	zw.Write([]byte(text))
	zw.Close()
	gz := filepath.Join(dir, "kern.log.2.gz")
	if err := os.WriteFile(gz, zbuf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{plain, gz} {
		mtime := t0.Add(time.Hour)
		os.Chtimes(f, mtime, mtime)
	}
	conf := filepath.Join(dir, "knockd.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(fileModeConf, plain, dir)), 0o644); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"+1s open 192.0.2.10",
		"+20s close 192.0.2.10", // due at +11s, run at the next line's time, as with a capture
		"+20.2s open 2001:db8::a",
		"+30.2s close 2001:db8::a",
	}
	for _, file := range []string{plain, gz} {
		t.Run(filepath.Base(file), func(t *testing.T) {
			var got []string
			var now time.Time
			var out, errOut bytes.Buffer
			o := Options{Config: conf, LogFile: filepath.Join(dir, "knockd.log"), Stdout: &out, Stderr: &errOut, Verbose: true,
				Runner: func(ctx context.Context, line string) (int, error) {
					got = append(got, fmt.Sprintf("+%v %s", now.Sub(t0), line))
					return 0, nil
				}}
			if code := replay(context.Background(), o, file, &now); code != 0 {
				t.Fatalf("exit %d: %s", code, errOut.String())
			}
			if !slices.Equal(got, want) {
				t.Errorf("commands:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			for _, line := range []string{
				"192.0.2.11: openSSH: sequence timeout (stage 1)",
				"malformed packet log line: no valid SRC= (1 so far)",
			} {
				if !strings.Contains(out.String(), line) {
					t.Errorf("log lacks %q:\n%s", line, out.String())
				}
			}
		})
	}
}

// TestReplayStillReadsCaptures: openReplay tells a capture by its magic.
func TestReplayChoosesByContent(t *testing.T) {
	dir := t.TempDir()
	frames, err := pcaptest.ParseScript(strings.NewReader("0.0 10.0.0.2 10.0.0.1 7000/tcp\n"), replayT0)
	if err != nil {
		t.Fatal(err)
	}
	var pcap, ng bytes.Buffer
	if err := pcaptest.WritePcap(&pcap, decode.Ethernet, frames); err != nil {
		t.Fatal(err)
	}
	if err := pcaptest.WritePcapNG(&ng, decode.Ethernet, frames); err != nil {
		t.Fatal(err)
	}
	var zpcap bytes.Buffer
	zw := gzip.NewWriter(&zpcap)
	zw.Write(pcap.Bytes())
	zw.Close()
	var zlog bytes.Buffer
	zw = gzip.NewWriter(&zlog)
	zw.Write([]byte("Nov 25 08:00:00 gw kernel: hello\n"))
	zw.Close()
	for _, tc := range []struct {
		name    string
		content []byte
		want    bool
	}{
		{"k.pcap", pcap.Bytes(), true},
		{"k.pcapng", ng.Bytes(), true},
		{"k.pcap.gz", zpcap.Bytes(), true},
		{"kern.log", []byte("Nov 25 08:00:00 gw kernel: hello\n"), false},
		{"kern.log.2.gz", zlog.Bytes(), false},
		{"empty", nil, false},
	} {
		path := filepath.Join(dir, tc.name)
		if err := os.WriteFile(path, tc.content, 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := isCapture(path)
		if err != nil || got != tc.want {
			t.Errorf("isCapture(%s) = %v, %v; want %v", tc.name, got, err, tc.want)
		}
	}
	if _, err := isCapture(filepath.Join(dir, "missing")); err == nil {
		t.Error("isCapture(missing) = nil error")
	}
}

// TestLiveFileMode runs the daemon on a log alone (no capture, so no
// privileges): a knock whose lines are appended as its packets would be
// logged, with the log rotated (renamed, recreated) between the second and
// third hit, opens the door; shutdown closes it.
func TestLiveFileMode(t *testing.T) {
	dir := t.TempDir()
	logPath := filepath.Join(dir, "firewall.log")
	if err := os.WriteFile(logPath, []byte(kernLine(time.Now().Add(-time.Hour), "192.0.2.99", 39999, 7000)), 0o644); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "knockd.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(fileModeConf, logPath, filepath.Join(dir, "state"))), 0o644); err != nil {
		t.Fatal(err)
	}
	ran := make(chan string, 10)
	var out, errOut syncBuffer
	o := Options{Config: conf, LogFile: filepath.Join(dir, "knockd.log"), Stdout: &out, Stderr: &errOut, Verbose: true,
		Runner: func(ctx context.Context, line string) (int, error) { ran <- line; return 0, nil }}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() { done <- Live(ctx, o, nil) }()
	waitFor(t, &out, "starting up, following "+logPath)
	time.Sleep(300 * time.Millisecond) // tail reaches the end of the file

	appendTo := func(path, text string) {
		f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString(text)
		f.Close()
	}
	now := time.Now()
	appendTo(logPath, kernLine(now, "192.0.2.10", 40000, 7000)+kernLine(now, "192.0.2.10", 40001, 8000))
	if err := os.Rename(logPath, logPath+".1"); err != nil {
		t.Fatal(err)
	}
	appendTo(logPath, kernLine(now, "192.0.2.10", 40002, 9000))
	select {
	case line := <-ran:
		if line != "open 192.0.2.10" {
			t.Fatalf("ran %q", line)
		}
	case code := <-done:
		t.Fatalf("Live exited %d: %s", code, errOut.String())
	case <-time.After(15 * time.Second):
		t.Fatalf("the knock did not open; log:\n%s", out.String())
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	select {
	case line := <-ran:
		if line != "close 192.0.2.10" {
			t.Fatalf("ran %q at shutdown", line)
		}
	default:
		t.Fatalf("the door was not closed at shutdown; log:\n%s", out.String())
	}
	if s := out.String(); !strings.Contains(s, "log "+logPath+": ") || strings.Contains(s, "192.0.2.99") {
		t.Errorf("log:\n%s", s)
	}
}

// TestCaptureIfaces: file mode captures only where told to.
func TestCaptureIfaces(t *testing.T) {
	for _, tc := range []struct {
		name    string
		flag    []string
		option  []string
		logTail string
		want    []string
	}{
		{"default", nil, nil, "", []string{"eth0"}},
		{"option", nil, []string{"wlan0"}, "", []string{"wlan0"}},
		{"flag wins", []string{"eth1"}, []string{"wlan0"}, "", []string{"eth1"}},
		{"file mode alone", nil, nil, "/var/log/kern.log", nil},
		{"file mode and option", nil, []string{"eth0"}, "/var/log/kern.log", []string{"eth0"}},
		{"file mode and flag", []string{"any"}, nil, "/var/log/kern.log", []string{"any"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := mustParse(t, "[options]\n")
			cfg.Options.Interfaces, cfg.Options.LogTail = tc.option, tc.logTail
			if got := captureIfaces(Options{Interfaces: tc.flag}, cfg); !slices.Equal(got, tc.want) {
				t.Errorf("captureIfaces = %q, want %q", got, tc.want)
			}
		})
	}
}

// syncBuffer is a bytes.Buffer the daemon's goroutines may write while
// the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func waitFor(t *testing.T, b *syncBuffer, text string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(b.String(), text) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q in:\n%s", text, b.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func mustParse(t *testing.T, ini string) *knockd.Config {
	t.Helper()
	cfg, err := knockd.Parse("test.conf", []byte(ini))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}
