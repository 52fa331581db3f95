package logtail

import (
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/doorward/doorward/detectors"
)

// hit is a knock packet as a test sees it come out of a Source.
type hit struct {
	src  netip.Addr
	port uint16
	seq  int // our own serial, in the source port: 40000+seq
}

// kernLine is what the kernel prints for a SYN from src to port, through
// rsyslog's traditional file format, with an iptables --log-prefix.
func kernLine(t time.Time, src string, sport, dport int) string {
	return fmt.Sprintf("%s gw kernel: [%5d.%06d] DOORWARD: IN=eth0 OUT= MAC=52:54:00:12:34:56:52:54:00:ab:cd:ef:08:00 SRC=%s DST=198.51.100.1 LEN=60 TOS=0x00 PREC=0x00 TTL=64 ID=%d DF PROTO=TCP SPT=%d DPT=%d WINDOW=64240 RES=0x00 SYN URGP=0 \n",
		t.Format(time.Stamp), 12000+sport%1000, sport*7%1000000, src, sport*13%65536, sport, dport)
}

// nftLine is the same packet from an nftables log statement with "log
// flags all" (sequence numbers, MAC decode, options), as journalctl prints it.
func nftLine(t time.Time, src string, sport, dport int) string {
	return fmt.Sprintf("%s gw kernel: doorward: IN=eth0 OUT= MACSRC=52:54:00:ab:cd:ef MACDST=52:54:00:12:34:56 MACPROTO=0800 SRC=%s DST=198.51.100.1 LEN=60 TOS=0x00 PREC=0x00 TTL=64 ID=%d DF PROTO=TCP SPT=%d DPT=%d SEQ=%d ACK=0 WINDOW=64240 RES=0x00 SYN URGP=0 OPT (020405B40402080A0A1B2C3D0000000001030307) \n",
		t.Format(time.Stamp), src, sport*13%65536, sport, dport, uint32(sport*1000003))
}

// ipv6Line is an ip6tables LOG line (SRC/DST as %pI6 prints them).
func ipv6Line(t time.Time, sport, dport int) string {
	return fmt.Sprintf("%s gw kernel: DOORWARD: IN=eth0 OUT= MAC=52:54:00:12:34:56:52:54:00:ab:cd:ef:86:dd SRC=2001:0db8:0000:0000:0000:0000:0000:000a DST=2001:0db8:0000:0000:0000:0000:0000:0001 LEN=80 TC=0 HOPLIMIT=64 FLOWLBL=327371 PROTO=TCP SPT=%d DPT=%d WINDOW=64800 RES=0x00 SYN URGP=0 \n",
		t.Format(time.Stamp), sport, dport)
}

const noise = "Nov 25 08:00:00 gw kernel: [11999.000000] e1000e 0000:00:19.0 eth0: NIC Link is Up 1000 Mbps Full Duplex, Flow Control: None\n"

func appendFile(t *testing.T, path, text string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(text); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// collector reads a Source on its own goroutine, as the daemon does.
type collector struct {
	ch   chan hit
	done chan error
}

func collect(src detectors.Source) *collector {
	c := &collector{ch: make(chan hit, 100), done: make(chan error, 2)}
	go func() {
		var p detectors.Packet
		for {
			if err := src.ReadPacket(&p); err != nil {
				close(c.ch)
				c.done <- err
				return
			}
			c.ch <- hit{src: p.Src, port: p.DstPort, seq: int(p.SrcPort) - 40000}
		}
	}()
	return c
}

// want waits for exactly these hits, in order.
func (c *collector) want(t *testing.T, want ...hit) {
	t.Helper()
	deadline := time.After(15 * time.Second)
	for i, w := range want {
		select {
		case h, ok := <-c.ch:
			if !ok {
				t.Fatalf("source ended after %d of %d hits: %v", i, len(want), <-c.done)
			}
			if h != w {
				t.Fatalf("hit %d = %+v, want %+v", i, h, w)
			}
		case <-deadline:
			t.Fatalf("timed out after %d of %d hits (want %+v next)", i, len(want), w)
		}
	}
}

// none checks that nothing more comes for a moment (a duplicate would).
func (c *collector) none(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case h := <-c.ch:
		t.Fatalf("unexpected hit %+v", h)
	case <-time.After(d):
	}
}

var (
	client  = netip.MustParseAddr("192.0.2.10")
	client6 = netip.MustParseAddr("2001:db8::a")
	t0      = time.Date(2026, 11, 25, 8, 1, 2, 0, time.Local)
)

func knock(n int) hit { return hit{src: client, port: uint16(7000 + 1000*n), seq: n} }

// history is what a log holds before the test starts: more than the lines
// appended after a truncation, so the truncation shows as a smaller file.
func history(t *testing.T, path string) {
	var b strings.Builder
	for range 40 {
		b.WriteString(noise)
	}
	// An old knock: it must not be read again on start.
	b.WriteString(kernLine(t0.Add(-time.Hour), "192.0.2.99", 40000, 7000))
	appendFile(t, path, b.String())
}

// TestFollowRotation knocks three ports while the log is rotated after the
// second hit, in each way logrotate rotates, with inotify and with polling.
// Every hit must come out once, in order.
func TestFollowRotation(t *testing.T) {
	type step func(t *testing.T, path string, c *collector)
	line := func(n int) string {
		return kernLine(t0.Add(time.Duration(n)*time.Second), "192.0.2.10", 40000+n, 7000+1000*n)
	}
	write := func(ns ...int) step {
		return func(t *testing.T, path string, c *collector) {
			var b strings.Builder
			for _, n := range ns {
				b.WriteString(line(n))
			}
			appendFile(t, path, b.String())
		}
	}
	seen := func(ns ...int) step {
		return func(t *testing.T, path string, c *collector) {
			var hs []hit
			for _, n := range ns {
				hs = append(hs, knock(n))
			}
			c.want(t, hs...)
		}
	}
	rename := func(t *testing.T, path string, c *collector) {
		if err := os.Rename(path, path+".1"); err != nil {
			t.Fatal(err)
		}
	}
	create := func(t *testing.T, path string, c *collector) { appendFile(t, path, "") }
	copytruncate := func(t *testing.T, path string, c *collector) {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path+".1", b, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(path, 0); err != nil {
			t.Fatal(err)
		}
	}
	// oldWrite is the daemon still writing to the renamed file until
	// logrotate's postrotate signals it (rsyslog's HUP).
	oldWrite := func(n int) step {
		return func(t *testing.T, path string, c *collector) { appendFile(t, path+".1", line(n)) }
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"rename and create", []step{write(0, 1), rename, create, write(2), seen(0, 1, 2)}},
		{"rename, create later", []step{write(0), seen(0), write(1), rename, write(2) /* creates */, seen(1, 2)}},
		{"rename, writer keeps the old file a while", []step{write(0, 1), rename, create, oldWrite(2), seen(0, 1, 2), write(3), seen(3)}},
		// copytruncate loses what was not read before the truncation (as
		// for any reader, logrotate says so), so the test lets the first
		// hits be read, as a knock's pace does.
		{"copytruncate", []step{write(0), seen(0), write(1), seen(1), copytruncate, write(2), seen(2)}},
		{"two rotations", []step{write(0), rename, create, write(1), seen(0, 1), rename, create, write(2), seen(2)}},
	}
	for _, poll := range []bool{false, true} {
		for _, tt := range tests {
			name := tt.name
			if poll {
				name += "/poll"
			}
			t.Run(name, func(t *testing.T) {
				path := filepath.Join(t.TempDir(), "firewall.log")
				history(t, path)
				var mu sync.Mutex
				var notes []string
				src, err := Open(path, Options{Poll: poll, Logf: func(f string, a ...any) {
					mu.Lock()
					notes = append(notes, fmt.Sprintf(f, a...))
					mu.Unlock()
				}})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() {
					if t.Failed() {
						mu.Lock()
						t.Logf("notices: %q", notes)
						mu.Unlock()
					}
				})
				c := collect(src)
				// Let tail reach the end before the knock starts, as a
				// daemon is up before anyone knocks.
				time.Sleep(200 * time.Millisecond)
				for _, s := range tt.steps {
					s(t, path, c)
				}
				c.none(t, 300*time.Millisecond)
				src.Close()
				if err := <-c.done; !errors.Is(err, detectors.ErrClosed) {
					t.Errorf("after Close: %v, want ErrClosed", err)
				}
				st := src.Stats()
				if st.Malformed != 0 || st.TooLong != 0 {
					t.Errorf("stats %+v", st)
				}
			})
		}
	}
}

// TestFollowFormats: nftables and IPv6 lines, other lines skipped,
// malformed lines counted and logged, too long lines dropped.
func TestFollowFormats(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kern.log")
	appendFile(t, path, "")
	var mu sync.Mutex
	var notes []string
	src, err := Open(path, Options{MaxLineSize: 1024, Logf: func(f string, a ...any) {
		mu.Lock()
		notes = append(notes, fmt.Sprintf(f, a...))
		mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	c := collect(src)
	time.Sleep(200 * time.Millisecond)
	bad := strings.Replace(kernLine(t0, "192.0.2.10", 40001, 7000), "SRC=192.0.2.10", "SRC=192.0.2.300", 1)
	appendFile(t, path, noise+
		nftLine(t0, "192.0.2.10", 40000, 7000)+
		bad+
		strings.Repeat("x", 3000)+"\n"+
		"Nov 25 08:01:02 gw kernel: DOORWARD: IN=eth0 OUT= SRC=192.0.2.10 DST=198.51.100.1 LEN=84 PROTO=ICMP TYPE=8 CODE=0 ID=1 SEQ=1 \n"+
		ipv6Line(t0, 40001, 8000))
	c.want(t, hit{src: client, port: 7000, seq: 0}, hit{src: client6, port: 8000, seq: 1})
	c.none(t, 200*time.Millisecond)
	want := Stats{Lines: 6, Packets: 2, Other: 2, Malformed: 1, TooLong: 1}
	if got := src.Stats(); got != want {
		t.Errorf("stats %+v, want %+v", got, want)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(notes) != 2 || !strings.Contains(notes[0], "malformed packet log line: no valid SRC= (1 so far)") || !strings.Contains(notes[1], "line of 1024 bytes or more dropped") {
		t.Errorf("notices: %q", notes)
	}
}

// TestFollowFromStart and a file that appears only after Open.
func TestFollowStart(t *testing.T) {
	t.Run("from start", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "fw.log")
		appendFile(t, path, kernLine(t0, "192.0.2.10", 40000, 7000))
		src, err := Open(path, Options{FromStart: true})
		if err != nil {
			t.Fatal(err)
		}
		defer src.Close()
		c := collect(src)
		c.want(t, knock(0))
	})
	t.Run("created later", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "fw.log")
		src, err := Open(path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer src.Close()
		c := collect(src)
		time.Sleep(100 * time.Millisecond)
		appendFile(t, path, kernLine(t0, "192.0.2.10", 40000, 7000)+kernLine(t0, "192.0.2.10", 40001, 8000))
		c.want(t, knock(0), knock(1))
	})
	t.Run("not a file", func(t *testing.T) {
		if _, err := Open(t.TempDir(), Options{}); err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Fatalf("Open(dir) = %v", err)
		}
	})
}

// TestLineTime: packets carry the read time unless the format asks for the
// line's own.
func TestFollowTimes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fw.log")
	appendFile(t, path, "")
	readAt := time.Date(2026, 11, 25, 8, 1, 30, 0, time.Local)
	fs, err := formatsOf(t, "[fw]\nType = logformat\nFormat = iptables\nPrefix = DOORWARD:\nTimestamp = line\n")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		opt  Options
		want time.Time
	}{
		{"read time", Options{Now: func() time.Time { return readAt }}, readAt},
		{"line time", Options{Formats: fs, Now: func() time.Time { return readAt }}, t0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src, err := Open(path, tc.opt)
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			got := make(chan time.Time, 1)
			go func() {
				var p detectors.Packet
				if src.ReadPacket(&p) == nil {
					got <- p.Time
				}
			}()
			time.Sleep(100 * time.Millisecond)
			appendFile(t, path, kernLine(t0, "192.0.2.10", 40000, 7000))
			select {
			case tm := <-got:
				if !tm.Equal(tc.want) {
					t.Fatalf("time %v, want %v", tm, tc.want)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("no packet")
			}
		})
	}
}

func TestCloseUnblocks(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fw.log")
	appendFile(t, path, "")
	src, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	c := collect(src)
	time.Sleep(50 * time.Millisecond)
	src.Close()
	src.Close()
	select {
	case err := <-c.done:
		if !errors.Is(err, detectors.ErrClosed) {
			t.Fatalf("ReadPacket after Close = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not unblock ReadPacket")
	}
}

// TestOpenFile reads a whole log once, with the lines' times as the clock.
func TestOpenFile(t *testing.T) {
	dir := t.TempDir()
	text := noise +
		kernLine(t0, "192.0.2.10", 40000, 7000) +
		"[12346.100200] DOORWARD: IN=eth0 OUT= SRC=192.0.2.10 DST=198.51.100.1 LEN=60 PROTO=TCP SPT=40001 DPT=8000 SYN URGP=0 \n" +
		strings.Replace(kernLine(t0, "192.0.2.10", 40001, 7000), "DPT=7000", "DPT=", 1) +
		kernLine(t0.Add(-time.Minute), "192.0.2.10", 40002, 9000) +
		ipv6Line(t0.Add(2*time.Second), 40003, 7000) +
		strings.TrimSuffix(kernLine(t0.Add(3*time.Second), "192.0.2.10", 40004, 7000), "\n")
	plain := filepath.Join(dir, "kern.log")
	if err := os.WriteFile(plain, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	// The file was last written after its last line, on the same day.
	mtime := t0.Add(time.Hour)
	if err := os.Chtimes(plain, mtime, mtime); err != nil {
		t.Fatal(err)
	}
	gz := filepath.Join(dir, "kern.log.2.gz")
	f, err := os.Create(gz)
	if err != nil {
		t.Fatal(err)
	}
	zw := gzip.NewWriter(f)
	zw.Write([]byte(text))
	zw.Close()
	f.Close()
	os.Chtimes(gz, mtime, mtime)

	type got struct {
		t    time.Time
		src  netip.Addr
		port uint16
	}
	want := []got{
		{t0, client, 7000},
		{t0, client, 8000},                       // no time of its own: the line before's
		{t0, client, 9000},                       // older than the line before: not back in time
		{t0.Add(2 * time.Second), client6, 7000}, //
		{t0.Add(3 * time.Second), client, 7000},  // last line without a newline
	}
	for _, path := range []string{plain, gz} {
		t.Run(filepath.Base(path), func(t *testing.T) {
			src, err := OpenFile(path, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			var all []got
			var p detectors.Packet
			for {
				err := src.ReadPacket(&p)
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				all = append(all, got{p.Time, p.Src, p.DstPort})
			}
			if fmt.Sprint(all) != fmt.Sprint(want) {
				t.Errorf("packets\n%v\nwant\n%v", all, want)
			}
			if st, want := src.Stats(), (Stats{Lines: 7, Packets: 5, Other: 1, Malformed: 1}); st != want {
				t.Errorf("stats %+v, want %+v", st, want)
			}
			if !strings.HasPrefix(src.String(), "log:") {
				t.Errorf("String() = %q", src.String())
			}
		})
	}
}

// TestRotationRightAfterEnd: the writer adds a line and the log is rotated
// in the moment between a read finding the end of the file and the look
// for a new one. The line in the old file must come out before the new
// file's (it was lost: the follower switched to the new file unread).
func TestRotationRightAfterEnd(t *testing.T) {
	rotateDuring(t, func(s *Source, f func()) { s.atEOF = f })
}

// TestRotationBetweenLooks: the same, one step later: the line and the
// rotation land after atEnd has looked at the old file's size and before
// it looks at the path (the flake TestFollowRotation's "rename, create
// later" showed under load). Seeing a new file at the path proves the
// rename, so everything written to the old file before it must be read
// before the switch.
func TestRotationBetweenLooks(t *testing.T) {
	rotateDuring(t, func(s *Source, f func()) { s.betweenLooks = f })
}

// rotateDuring follows a log whose writer adds a line and rotates it (with
// the next line in a new file) once, from the test hook that set installs;
// both lines must come out, in order.
func rotateDuring(t *testing.T, set func(*Source, func())) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "firewall.log")
	history(t, path)
	src, err := Open(path, Options{Poll: true})
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	set(src, func() {
		once.Do(func() {
			appendFile(t, path, kernLine(t0.Add(time.Second), "192.0.2.10", 40001, 8000))
			if err := os.Rename(path, path+".1"); err != nil {
				t.Error(err)
			}
			appendFile(t, path, kernLine(t0.Add(2*time.Second), "192.0.2.10", 40002, 9000))
		})
	})
	c := collect(src)
	c.want(t, knock(1), knock(2))
	src.Close()
	<-c.done
}
