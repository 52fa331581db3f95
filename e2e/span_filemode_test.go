package e2e

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/doorward/doorward/e2e/netns"
)

// File mode end to end. The kernel logs nothing from a network namespace
// other than the first unless the host's net.netfilter.nf_log_all_netns is
// set, and the host's settings are not ours to change. So the test is the
// kernel's logger: a tcpdump in the server namespace sees every SYN that
// reaches the server's veth (where an INPUT rule
// `-p tcp --syn -j LOG --log-prefix "DOORWARD: "` would see it), and for
// each one the test appends to kern.log the line nf_log_syslog would print
// for it, built from the packet's own bytes (MAC header, IP ID, TTL, window,
// options…), behind a syslog header. knockd follows kern.log (LogTail) and
// captures nothing.

// spanFileConf is spanConf's door and opening action in file mode, with a
// log format for the kernel's lines and a delayed action that closes the
// door again.
const spanFileConf = `[options]
	LogTail = %s

[kernel]
	Type   = logformat
	Format = %s
	Prefix = %s

[span]
	Type     = knockdaemon
	Portspan = ` + fileSpan + `
	Knock    = IP,PORT,FLAG0,CHECKSUM
	Key      = ` + fileKey + `
	IV       = yes

[open]
	Type      = action
	Condition = PORT == %d
	System    = iptables -w -I INPUT -p tcp -s IP/32 --dport PORT -j ACCEPT

[close]
	Type      = action
	Condition = PORT == %d
	Delay     = %d
	System    = iptables -w -D INPUT -p tcp -s IP/32 --dport PORT -j ACCEPT
`

const (
	fileSpan    = "20000-20255"
	fileSpanLo  = 20000
	fileSpanHi  = 20255
	fileKey     = "e2e secret phrase"
	fileDelayMS = "30" // between hits: the knock takes about a second
)

// kernFormat is how the kernel prints a logged packet: an iptables LOG
// target (`-j LOG --log-prefix "DOORWARD: "`, no log flags) behind a
// traditional syslog header with the kernel's own [uptime], or an nftables
// log statement (`log prefix "doorward: " flags ether,tcp sequence,tcp
// options`) as journalctl -o short prints it. The two are the
// formats/fwlog/testdata fixtures iptables-syslog.log and nftables.log.
type kernFormat struct {
	format string // the logformat section's Format
	prefix string // the rule's log prefix, trailing space included
	nft    bool
}

var (
	iptablesLOG = kernFormat{"iptables", "DOORWARD: ", false}
	nftablesLog = kernFormat{"nftables", "doorward: ", true}
)

// line renders frame, an Ethernet frame with an IPv4 TCP segment received
// on ifname at ts, as one kernel log line (newline included), token for
// token as nf_log_syslog.c prints it: nf_log_dump_packet_common,
// dump_mac_header, dump_ipv4_packet, nf_log_dump_tcp_header; every token
// is followed by a space, the last one too. UID=/GID= are not printed: the
// kernel prints them only for a packet with a local socket, and a SYN to a
// closed port has none at INPUT.
func (f kernFormat) line(ifname string, ts time.Time, uptime time.Duration, frame []byte) (string, error) {
	if len(frame) < 14+20 || binary.BigEndian.Uint16(frame[12:14]) != 0x0800 {
		return "", fmt.Errorf("not an IPv4 frame: %x", frame)
	}
	ip := frame[14:]
	ihl := int(ip[0]&0x0f) * 4
	if ip[9] != 6 || ihl < 20 || len(ip) < ihl+20 {
		return "", fmt.Errorf("not a TCP segment: %x", frame)
	}
	tcp := ip[ihl:]
	var b strings.Builder
	if f.nft {
		fmt.Fprintf(&b, "%s %s kernel: ", ts.Format(time.Stamp), kernHost)
	} else {
		fmt.Fprintf(&b, "%s %s kernel: [%5d.%06d] ", ts.Format(time.Stamp), kernHost,
			uptime/time.Second, (uptime%time.Second)/time.Microsecond)
	}
	fmt.Fprintf(&b, "%sIN=%s OUT= ", f.prefix, ifname)
	if f.nft {
		fmt.Fprintf(&b, "MACSRC=%s MACDST=%s MACPROTO=%04x ", net.HardwareAddr(frame[6:12]),
			net.HardwareAddr(frame[0:6]), binary.BigEndian.Uint16(frame[12:14]))
	} else {
		b.WriteString("MAC=")
		for i, c := range frame[:14] {
			if i > 0 {
				b.WriteByte(':')
			}
			fmt.Fprintf(&b, "%02x", c)
		}
		b.WriteByte(' ')
	}
	src, _ := netip.AddrFromSlice(ip[12:16])
	dst, _ := netip.AddrFromSlice(ip[16:20])
	frag := binary.BigEndian.Uint16(ip[6:8])
	fmt.Fprintf(&b, "SRC=%s DST=%s LEN=%d TOS=0x%02X PREC=0x%02X TTL=%d ID=%d ", src, dst,
		binary.BigEndian.Uint16(ip[2:4]), ip[1]&0x1e, ip[1]&0xe0, ip[8], binary.BigEndian.Uint16(ip[4:6]))
	for _, fl := range []struct {
		bit  uint16
		name string
	}{{0x8000, "CE"}, {0x4000, "DF"}, {0x2000, "MF"}} {
		if frag&fl.bit != 0 {
			b.WriteString(fl.name + " ")
		}
	}
	if frag&0x1fff != 0 {
		fmt.Fprintf(&b, "FRAG:%d ", frag&0x1fff)
	}
	b.WriteString("PROTO=TCP ")
	fmt.Fprintf(&b, "SPT=%d DPT=%d ", binary.BigEndian.Uint16(tcp[0:2]), binary.BigEndian.Uint16(tcp[2:4]))
	if f.nft {
		fmt.Fprintf(&b, "SEQ=%d ACK=%d ", binary.BigEndian.Uint32(tcp[4:8]), binary.BigEndian.Uint32(tcp[8:12]))
	}
	fmt.Fprintf(&b, "WINDOW=%d RES=0x%02x ", binary.BigEndian.Uint16(tcp[14:16]),
		(binary.BigEndian.Uint32(tcp[12:16])&0x0f000000)>>22)
	flags := tcp[13]
	for i, name := range []string{"CWR", "ECE", "URG", "ACK", "PSH", "RST", "SYN", "FIN"} {
		if flags&(0x80>>i) != 0 {
			b.WriteString(name + " ")
		}
	}
	fmt.Fprintf(&b, "URGP=%d ", binary.BigEndian.Uint16(tcp[18:20]))
	if doff := int(tcp[12]>>4) * 4; f.nft && doff > 20 && len(tcp) >= doff {
		fmt.Fprintf(&b, "OPT (%s) ", strings.ToUpper(hex.EncodeToString(tcp[20:doff])))
	}
	b.WriteByte('\n')
	return b.String(), nil
}

// kernHost is the host name in the syslog header.
const kernHost = "gw"

// rotation is what the log's rotator does in the middle of a knock.
type rotation int

const (
	noRotation rotation = iota
	// rename: logrotate's default (create). kern.log becomes kern.log.1;
	// the writer, like rsyslog before postrotate's HUP, writes one more
	// line to the renamed file, then a new kern.log is created and used.
	rename
	// copytruncate: kern.log is copied to kern.log.1 and truncated; the
	// writer goes on appending to it.
	copytruncate
)

func (r rotation) String() string {
	return [...]string{"none", "rename", "copytruncate"}[r]
}

// kernLog is the test's kernel logger: it turns the SYNs a tcpdump in the
// server namespace sees into lines of kern.log, as they arrive, and rotates
// the log when told.
type kernLog struct {
	path   string
	format kernFormat
	ifname string
	k      *knockd // for copytruncate: wait until knockd has read the lines

	mu         sync.Mutex
	f          *os.File
	err        error
	written    []string // "sport->dport" of each line, in order
	hits       int      // lines for span ports
	rotateAt   int      // rotate after this many span-port lines (0: never)
	rotateHow  rotation
	rotatedAt  int  // the span-port line count when rotated, -1 before
	lateToOld  bool // rename: the next line goes to the renamed file
	readyCh    chan struct{}
	done, stop chan struct{}
}

// startKernLog creates path and starts the tcpdump that feeds it.
func startKernLog(t *testing.T, p *netns.Pair, k *knockd, path string, format kernFormat) *kernLog {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		t.Fatal(err)
	}
	w := &kernLog{path: path, format: format, ifname: p.ServerIf, k: k, f: f,
		rotatedAt: -1, readyCh: make(chan struct{}), done: make(chan struct{}), stop: make(chan struct{})}
	r, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	// Registered before Start, so it runs after cleanup killed tcpdump.
	t.Cleanup(func() {
		close(w.stop)
		pw.Close()
		select {
		case <-w.done:
		case <-time.After(10 * time.Second):
			t.Error("kernel log writer did not stop")
		}
		r.Close()
		w.mu.Lock()
		w.f.Close()
		w.mu.Unlock()
	})
	// Incoming SYNs, as a LOG rule with --syn sees them (SYN set; ACK, RST,
	// FIN clear); -xx prints the whole frame, -l line by line, at once.
	p.Start(t, p.Server, pw, "tcpdump", "-l", "-n", "-tt", "-xx", "--immediate-mode", "-Q", "in",
		"-i", p.ServerIf, "ip and tcp[tcpflags] & (tcp-syn|tcp-ack|tcp-rst|tcp-fin) == tcp-syn")
	pw.Close()
	go w.run(r)
	select {
	case <-w.readyCh:
	case <-w.done:
		t.Fatalf("tcpdump ended before listening: %v", w.failed())
	case <-time.After(10 * time.Second):
		t.Fatal("tcpdump did not start listening within 10 s")
	}
	return w
}

// run reads tcpdump's output: a header line per packet ("1732525201.123456
// IP …") and its bytes as "\t0x0000:  4500 003c …" lines.
func (w *kernLog) run(r io.Reader) {
	defer close(w.done)
	sc := bufio.NewScanner(r)
	var (
		ts    time.Time
		frame []byte
		in    bool // reading a packet's hex lines
	)
	ready := false
	for sc.Scan() {
		l := sc.Text()
		switch {
		case strings.HasPrefix(l, "\t0x") && in:
			fields := strings.Fields(l)
			for _, g := range fields[1:] {
				b, err := hex.DecodeString(g)
				if err != nil || (len(g) != 2 && len(g) != 4) {
					break
				}
				frame = append(frame, b...)
			}
			if len(frame) >= 14+20 && len(frame) >= 14+int(binary.BigEndian.Uint16(frame[16:18])) {
				in = false
				if err := w.packet(ts, frame); err != nil {
					w.fail(err)
				}
			}
		case l != "" && l[0] >= '0' && l[0] <= '9':
			sec, _, _ := strings.Cut(l, " ")
			f, err := strconv.ParseFloat(sec, 64)
			if err != nil {
				w.fail(fmt.Errorf("tcpdump: bad line %q", l))
				continue
			}
			ts = time.Unix(0, int64(f*1e9))
			frame, in = frame[:0], true
		case strings.Contains(l, "listening on"):
			if !ready {
				ready = true
				close(w.readyCh)
			}
		}
	}
}

// packet writes the line for one SYN and rotates if it is time to.
func (w *kernLog) packet(ts time.Time, frame []byte) error {
	var mono unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &mono); err != nil {
		return err
	}
	line, err := w.format.line(w.ifname, ts, time.Duration(mono.Nano()), frame)
	if err != nil {
		return err
	}
	ip := frame[14:]
	tcp := ip[int(ip[0]&0x0f)*4:]
	sport, dport := binary.BigEndian.Uint16(tcp[0:2]), binary.BigEndian.Uint16(tcp[2:4])

	w.mu.Lock()
	defer w.mu.Unlock()
	if _, err := w.f.WriteString(line); err != nil {
		return err
	}
	w.written = append(w.written, fmt.Sprintf("%d->%d", sport, dport))
	if w.lateToOld {
		// rename, continued: the line after the rename went to the old
		// file; now the new one is created (logrotate's create) and used.
		w.lateToOld = false
		nf, err := os.OpenFile(w.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|os.O_EXCL, 0o640)
		if err != nil {
			return fmt.Errorf("rename rotation: create new log: %w", err)
		}
		w.f.Close()
		w.f = nf
	}
	if dport < fileSpanLo || dport > fileSpanHi {
		return nil
	}
	w.hits++
	if w.rotateAt == 0 || w.hits != w.rotateAt {
		return nil
	}
	w.rotatedAt = w.hits
	switch w.rotateHow {
	case rename:
		if err := os.Rename(w.path, w.path+".1"); err != nil {
			return err
		}
		w.lateToOld = true
	case copytruncate:
		// Lines written between the daemon's last read and the truncation
		// are in the copy only: logrotate's documentation warns of this
		// for every reader. So, as in a log written at a human pace, the
		// daemon has read what is there before the rotation, and has seen
		// the truncation before the next line comes (else a file that
		// grows past its old size unseen cannot be told from one that
		// grew: docs/knockdaemon-file-mode.md).
		if !waitUntil(5*time.Second, w.stop, func() bool { return w.k.spanPackets() >= w.hits }) {
			return fmt.Errorf("copytruncate: knockd read %d of the %d knock lines before the rotation within 5 s", w.k.spanPackets(), w.hits)
		}
		old, err := os.ReadFile(w.path)
		if err != nil {
			return err
		}
		if err := os.WriteFile(w.path+".1", old, 0o640); err != nil {
			return err
		}
		if err := os.Truncate(w.path, 0); err != nil {
			return err
		}
		if !waitUntil(5*time.Second, w.stop, func() bool { return strings.Contains(w.k.output(), "file truncated; reading it from the start") }) {
			return errors.New("copytruncate: knockd did not log that it followed the truncation within 5 s")
		}
	}
	return nil
}

func waitUntil(d time.Duration, stop <-chan struct{}, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		select {
		case <-stop:
			return false
		case <-time.After(20 * time.Millisecond):
		}
	}
	return true
}

func (w *kernLog) fail(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err == nil {
		w.err = err
	}
}

func (w *kernLog) failed() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// rotateAfter makes the log rotate after n more span-port lines.
func (w *kernLog) rotateAfter(n int, how rotation) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.rotateAt, w.rotateHow = w.hits+n, how
}

// lines returns what was written so far ("sport->dport" per line) and how
// many of them hit the span.
func (w *kernLog) lines() (written []string, hits int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.written), w.hits
}

// waitHits waits until n span-port lines in all are written.
func (w *kernLog) waitHits(t *testing.T, n int, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		if err := w.failed(); err != nil {
			t.Fatalf("kernel log writer: %v", err)
		}
		if _, hits := w.lines(); hits >= n {
			return
		}
		if time.Now().After(deadline) {
			_, hits := w.lines()
			t.Fatalf("tcpdump saw %d knock SYNs within %v, want %d", hits, d, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// debugPacketRE reads knockd's -D packet line.
var debugPacketRE = regexp.MustCompile(`: tcp: [0-9.]+:(\d+) -> ([0-9.]+):(\d+) \d+ bytes$`)

// packets lists the packets knockd read (-D lines) as "sport->dport".
func (k *knockd) packets() []string {
	var out []string
	for _, l := range k.lines(" bytes") {
		if m := debugPacketRE.FindStringSubmatch(l); m != nil {
			out = append(out, m[1]+"->"+m[3])
		}
	}
	return out
}

// spanPackets counts the packets knockd read that hit the span.
func (k *knockd) spanPackets() int {
	n := 0
	for _, pk := range k.packets() {
		_, d, _ := strings.Cut(pk, "->")
		if port, _ := strconv.Atoi(d); port >= fileSpanLo && port <= fileSpanHi {
			n++
		}
	}
	return n
}

// caughtUp waits until knockd has read every line written, and checks it
// read each exactly once, in the order written. The SYN of a probe just
// made may still be on its way through tcpdump, so the two must agree and
// stay unchanged for a moment.
func (w *kernLog) caughtUp(t *testing.T, k *knockd) []string {
	t.Helper()
	var got, written []string
	var same time.Time
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if err := w.failed(); err != nil {
			t.Fatalf("kernel log writer: %v", err)
		}
		w2, _ := w.lines()
		g2 := k.packets()
		switch {
		case !slices.Equal(g2, w2):
			same = time.Time{}
		case same.IsZero() || len(w2) != len(written):
			same = time.Now()
		case time.Since(same) >= 300*time.Millisecond:
			return w2
		}
		got, written = g2, w2
	}
	i := 0
	for i < len(got) && i < len(written) && got[i] == written[i] {
		i++
	}
	at := func(l []string) string {
		if i < len(l) {
			return l[i]
		}
		return "nothing"
	}
	w.mu.Lock()
	rotated := "not rotated"
	if w.rotatedAt >= 0 {
		rotated = fmt.Sprintf("%s after knock line %d of %d", w.rotateHow, w.rotatedAt, w.hits)
	}
	w.mu.Unlock()
	t.Fatalf("knockd read %d packets from the log, want the %d lines written (%s), each once, in order; "+
		"first difference at line %d: read %s, written %s (sport->dport)\nread    %q\nwritten %q",
		len(got), len(written), rotated, i+1, at(got), at(written), got, written)
	return nil
}

// startFileKnockd runs knockd -v -D in file mode in the server namespace:
// no -i, so it captures nothing and reads only the log.
func startFileKnockd(t *testing.T, p *netns.Pair, conf, logPath string) *knockd {
	t.Helper()
	path := filepath.Join(t.TempDir(), "knockd.out")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	k := &knockd{t: t, p: p, path: path}
	t.Cleanup(func() {
		f.Close()
		if t.Failed() {
			t.Logf("knockd output (%s):\n%s", path, k.summary())
		}
	})
	k.cmd = p.Start(t, p.Server, f, knockdBin, "-c", conf, "-v", "-D", "--state-dir", filepath.Join(t.TempDir(), "state"))
	k.waitLog("starting up, following "+logPath, 10*time.Second)
	if strings.Contains(k.output(), "listening on") {
		t.Fatalf("knockd captures in file mode without -i:\n%s", k.output())
	}
	return k
}

// fileServer is the server side of a file-mode test.
type fileServer struct {
	p       *netns.Pair
	k       *knockd
	w       *kernLog
	logPath string
	other   netip.Addr // a second client address, never knocked for
}

func fileModeSetup(t *testing.T, format kernFormat, delay int) *fileServer {
	t.Helper()
	netns.Require(t, "ip", "nc", "iptables", "tcpdump")
	p := netns.NewPair(t)
	// A second address on the client: the door must open for the knocking
	// address only.
	other := p.ClientAddr.Next()
	p.MustExec(t, p.Client, "ip", "addr", "add", other.String()+"/24", "dev", p.ClientIf)
	p.Firewall(t, netns.IPTables)
	service(t, p, servicePort)
	logPath := filepath.Join(t.TempDir(), "kern.log")
	if err := os.WriteFile(logPath, nil, 0o640); err != nil {
		t.Fatal(err)
	}
	conf := confFile(t, fmt.Sprintf(spanFileConf, logPath, format.format, strings.TrimSpace(format.prefix),
		servicePort, servicePort, delay))
	k := startFileKnockd(t, p, conf, logPath)
	w := startKernLog(t, p, k, logPath, format)
	return &fileServer{p: p, k: k, w: w, logPath: logPath, other: other}
}

// knock sends a span knock for the service port with key from the client
// and waits until every hit is in the log. It returns the number of hits.
func (s *fileServer) knock(t *testing.T, key string, rotate rotation) int {
	t.Helper()
	args := []string{knockBin, "span", "-remote", s.p.ServerAddr.String(), "-port", strconv.Itoa(servicePort),
		"-flag0", "1", "-knock", "IP,PORT,FLAG0,CHECKSUM", "-portspan", fileSpan, "-key", key, "-iv", "yes"}
	ports := strings.Split(strings.TrimSpace(s.p.MustExec(t, s.p.Client, append(args, "-test")...)), ",")
	n := len(ports)
	if n < 8 {
		t.Fatalf("knock span -test: %d hits: %q", n, ports)
	}
	_, before := s.w.lines()
	if rotate != noRotation {
		s.w.rotateAfter(n/2, rotate)
	}
	out := s.p.MustExec(t, s.p.Client, append(args, "-v", "-delay", fileDelayMS)...)
	if got := strings.Count(out, "hitting tcp "); got != n {
		t.Fatalf("client sent %d hits, want %d:\n%s", got, n, out)
	}
	s.w.waitHits(t, before+n, 5*time.Second)
	return n
}

// checkRotated checks that the rotation fell in the middle of the knock:
// the knock's lines are split between kern.log.1 and kern.log.
func (s *fileServer) checkRotated(t *testing.T, how rotation, n int) {
	t.Helper()
	count := func(path string) int {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		c := 0
		for _, l := range strings.Split(string(b), "\n") {
			if i := strings.Index(l, " DPT="); i >= 0 {
				d, _, _ := strings.Cut(l[i+5:], " ")
				if port, _ := strconv.Atoi(d); port >= fileSpanLo && port <= fileSpanHi {
					c++
				}
			}
		}
		return c
	}
	old, cur := count(s.logPath+".1"), count(s.logPath)
	want := n / 2
	if how == rename {
		want++ // the line written to the renamed file before the writer reopened
	}
	if old != want || cur != n-want {
		t.Fatalf("%s: knock lines in kern.log.1: %d, in kern.log: %d; want %d and %d", how, old, cur, want, n-want)
	}
}

// checkStats checks knockd's shutdown line: every line read, as a packet.
func (s *fileServer) checkStats(t *testing.T, lines int) {
	t.Helper()
	want := fmt.Sprintf("log %s: %d lines, %d packets, 0 other, 0 malformed, 0 too long", s.logPath, lines, lines)
	if l := s.k.lines("log " + s.logPath + ": "); len(l) != 1 || !strings.Contains(l[0], want) {
		t.Errorf("knockd's log statistics %q, want %q", l, want)
	}
}

// reachableFrom reports whether the service answers a connection from
// source address src of the client namespace.
func (s *fileServer) reachableFrom(t *testing.T, src netip.Addr) bool {
	_, err := s.p.Exec(t, s.p.Client, "nc", "-z", "-w1", "-s", src.String(), s.p.ServerAddr.String(), strconv.Itoa(servicePort))
	return err == nil
}

// TestSpanFileMode: our client's span knock opens the iptables door with
// knockd in file mode, reading kernel log lines (iptables LOG format, or
// nftables log format) that the test appends as the SYNs arrive, while the
// log is rotated half-way through the knock (logrotate's rename and create,
// or copytruncate). The door opens for the client's address only and
// closes again, by the delayed action or at SIGTERM; every line is read
// once, in order, and none is malformed. A knock encrypted with another key
// opens nothing.
func TestSpanFileMode(t *testing.T) {
	for _, tc := range []struct {
		format  kernFormat
		rotate  rotation
		sigterm bool // close at SIGTERM instead of by the delayed action
	}{
		{iptablesLOG, rename, false},
		{nftablesLog, rename, true},
		{iptablesLOG, copytruncate, true},
		{nftablesLog, copytruncate, false},
	} {
		t.Run(tc.format.format+"-"+tc.rotate.String(), func(t *testing.T) {
			t.Parallel()
			delay := 3
			if tc.sigterm {
				delay = 600
			}
			s := fileModeSetup(t, tc.format, delay)
			p, k := s.p, s.k
			dst, src := p.ServerAddr, p.ClientAddr.String()
			if p.Reachable(t, dst, servicePort) {
				t.Fatalf("service %s reachable before the knock", dst)
			}

			n := s.knock(t, fileKey, tc.rotate)
			s.w.caughtUp(t, k) // every line read once, in order, across the rotation
			k.waitLog(src+": span: port-span knock: IP="+src+" PORT=2222 FLAG0=1", 5*time.Second)
			s.checkRotated(t, tc.rotate, n)
			iptablesGuard.waitAllowed(t, p, false, []string{src}, 5*time.Second)
			if got := p.IPTablesSources(t, true, servicePort); len(got) != 0 {
				t.Errorf("ip6tables rules for the service: %q, want none", got)
			}
			if err := p.WaitTCP(t, dst, servicePort, true, 3*time.Second); err != nil {
				t.Fatalf("after the knock: %v", err)
			}
			if s.reachableFrom(t, s.other) {
				t.Errorf("service reachable from %s, which did not knock", s.other)
			}

			if !tc.sigterm {
				iptablesGuard.waitAllowed(t, p, false, nil, time.Duration(delay+3)*time.Second)
				if err := p.WaitTCP(t, dst, servicePort, false, 3*time.Second); err != nil {
					t.Fatalf("after the delayed close: %v", err)
				}
				if len(k.lines(": action close: running delayed command: iptables -w -D INPUT -p tcp -s "+src+"/32")) != 1 {
					t.Error("delayed close command not logged once")
				}
			}
			written := s.w.caughtUp(t, k)
			k.terminate()
			if got := iptablesGuard.allowed(t, p, false); len(got) != 0 {
				t.Errorf("after knockd exited, allowed sources %q, want none", got)
			}
			if tc.sigterm && p.Reachable(t, dst, servicePort) {
				t.Error("service reachable after knockd closed the door at SIGTERM")
			}
			if n := len(k.lines("port-span knock:")); n != 1 {
				t.Errorf("%d knocks decoded, want 1", n)
			}
			s.checkStats(t, len(written))
			checkCommandsOK(t, k)
			noPanic(t, k)
		})
	}

	// The same lines for a knock encrypted with another key: read, and
	// nothing opens. The right key afterwards opens the door, so the log
	// and the door did work.
	t.Run("wrong-key", func(t *testing.T) {
		t.Parallel()
		s := fileModeSetup(t, iptablesLOG, 600)
		p, k := s.p, s.k
		dst, src := p.ServerAddr, p.ClientAddr.String()

		n := s.knock(t, "not the "+fileKey, noRotation)
		s.w.caughtUp(t, k)
		if got := k.spanPackets(); got != n {
			t.Fatalf("knockd read %d knock lines, want %d", got, n)
		}
		time.Sleep(300 * time.Millisecond) // let a (wrong) decode and its action happen
		if l := k.lines("port-span knock:"); len(l) > 0 {
			t.Fatalf("a knock with the wrong key decoded: %q", l)
		}
		if got := iptablesGuard.allowed(t, p, false); len(got) != 0 {
			t.Fatalf("wrong key: allowed sources %q, want none", got)
		}
		if p.Reachable(t, dst, servicePort) {
			t.Fatal("service reachable after a knock with the wrong key")
		}

		s.knock(t, fileKey, noRotation)
		k.waitLog(src+": span: port-span knock: IP="+src+" PORT=2222 FLAG0=1", 5*time.Second)
		iptablesGuard.waitAllowed(t, p, false, []string{src}, 5*time.Second)
		if err := p.WaitTCP(t, dst, servicePort, true, 3*time.Second); err != nil {
			t.Fatalf("right key after the wrong one: %v", err)
		}
		written := s.w.caughtUp(t, k)
		k.terminate()
		if got := iptablesGuard.allowed(t, p, false); len(got) != 0 {
			t.Errorf("after knockd exited, allowed sources %q, want none", got)
		}
		s.checkStats(t, len(written))
		checkCommandsOK(t, k)
		noPanic(t, k)
	})
}
