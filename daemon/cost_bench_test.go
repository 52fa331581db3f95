package daemon

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/doorward/doorward/actions/redisstore/redistest"
	"github.com/doorward/doorward/internal/latency"
)

// costLines is how many one-time sequences the benchmark's file holds:
// one is spent per knock, so -benchtime must stay below it.
const costLines = 5000

// BenchmarkKnockCost is the cost a shared-state knock adds, through the
// whole daemon (Live in file mode: the firewall log followed, the
// one-time sequence detector, the Store, the engine, the start command):
// one op is one knock, the next one waiting for the previous door to
// open. knock-to-open is from the knock's log timestamp (µs) to its start
// command's start, in internal/latency's histogram (p50-µs, p99-µs);
// with Redis, roundtrips/knock is the commands the daemon sent Redis
// (seen by MONITOR, which costs Redis a little) per knock, the daemon's
// own background pings included. Redis is on loopback TCP, as a fleet's would be on a LAN.
//
//	go test -run '^$' -bench KnockCost -benchtime 300x ./daemon/
func BenchmarkKnockCost(b *testing.B) {
	b.Run("file", func(b *testing.B) { benchKnockCost(b, nil) })
	b.Run("redis-tcp", func(b *testing.B) { benchKnockCost(b, redistest.StartTCP(b)) })
}

func benchKnockCost(b *testing.B, srv *redistest.Server) {
	if b.N > costLines {
		b.Fatalf("-benchtime %dx: at most %d knocks (one-time sequences in the file)", b.N, costLines)
	}
	dir := b.TempDir()
	logPath, otp := filepath.Join(dir, "firewall.log"), filepath.Join(dir, "otp")
	var lines strings.Builder
	for i := range costLines {
		fmt.Fprintf(&lines, "%d,%d\n", 10000+i, 30000+i)
	}
	for path, text := range map[string]string{logPath: "", otp: lines.String()} {
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			b.Fatal(err)
		}
	}
	state := ""
	if srv != nil {
		state = "\tState = " + srv.URL() + "\n"
	}
	conf := filepath.Join(dir, "knockd.conf")
	text := fmt.Sprintf("[options]\n\tLogTail = %s\n\tStateDir = %s\n%s\n[fw]\n\tType = logformat\n\tFormat = iptables\n\tPrefix = DOORWARD:\n\n"+
		"[openSSH]\n\tone_time_sequences = %s\n\tseq_timeout = 5\n\ttcpflags = syn\n\tstart_command = open %%IP%%\n\tcmd_timeout = 3600\n",
		logPath, filepath.Join(dir, "state"), state, otp)
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		b.Fatal(err)
	}
	var out, errOut syncBuffer
	started := make(chan time.Time, 1)
	o := Options{Config: conf, Stdout: &out, Stderr: &errOut, Verbose: true,
		Runner: func(ctx context.Context, line string) (int, error) {
			if strings.HasPrefix(line, "open ") {
				started <- time.Now()
			}
			return 0, nil
		}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() { done <- Live(ctx, o, nil) }()
	defer func() {
		cancel()
		if code := <-done; code != 0 {
			b.Errorf("exit %d: %s", code, errOut.String())
		}
	}()
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(out.String(), "starting up, following "+logPath); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatalf("Live did not start:\n%s%s", out.String(), errOut.String())
		}
	}
	time.Sleep(300 * time.Millisecond) // tail reaches the end of the file
	f, err := os.OpenFile(logPath, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()

	var stopMonitor func() map[string]int
	if srv != nil {
		stopMonitor = monitor(b, srv.Addr())
	}
	var h latency.Histogram
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		at := time.Now()
		src := fmt.Sprintf("192.0.%d.%d", 2+i/250, 1+i%250)
		ts := at.UTC().Format("2006-01-02T15:04:05.000000-07:00")
		var knock strings.Builder
		for j, port := range []int{10000 + i, 30000 + i} {
			fmt.Fprintf(&knock, "%s gw kernel: DOORWARD: IN=eth0 OUT= SRC=%s DST=198.51.100.1 LEN=60 TOS=0x00 PREC=0x00 TTL=64 ID=%d DF PROTO=TCP SPT=%d DPT=%d WINDOW=64240 RES=0x00 SYN URGP=0 \n",
				ts, src, i, 40000+j, port)
		}
		if _, err := f.WriteString(knock.String()); err != nil {
			b.Fatal(err)
		}
		select {
		case t := <-started:
			h.Record(t.Sub(at.Truncate(time.Microsecond)))
		case <-time.After(5 * time.Second):
			b.Fatalf("knock %d did not open:\n%.5000s", i, out.String())
		}
	}
	b.StopTimer()
	s := h.Summary()
	b.ReportMetric(float64(s.P50.Microseconds()), "p50-µs")
	b.ReportMetric(float64(s.P99.Microseconds()), "p99-µs")
	if srv != nil {
		var total int
		var by []string
		for cmd, n := range stopMonitor() {
			total += n
			by = append(by, fmt.Sprintf("%s %d", cmd, n))
		}
		slices.Sort(by)
		b.ReportMetric(float64(total)/float64(b.N), "roundtrips/knock")
		b.Logf("%d knocks: Redis commands %s", b.N, strings.Join(by, ", "))
	}
}

// monitor counts the commands clients send Redis at addr (MONITOR),
// each a round trip; the commands a Lua script runs inside Redis
// (MONITOR marks them "lua") are not. stop ends it and returns the counts
// by command name.
func monitor(b *testing.B, addr string) (stop func() map[string]int) {
	b.Helper()
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		b.Fatal(err)
	}
	fmt.Fprint(c, "MONITOR\r\n")
	r := bufio.NewReader(c)
	if line, err := r.ReadString('\n'); err != nil || line != "+OK\r\n" {
		b.Fatalf("MONITOR: %q, %v", line, err)
	}
	counts := map[string]int{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			// +1733400000.123456 [0 127.0.0.1:40000] "evalsha" "..." ...
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			_, rest, ok := strings.Cut(line, "] \"")
			if !ok || strings.Contains(line, " lua] ") {
				continue
			}
			name, _, _ := strings.Cut(rest, "\"")
			counts[strings.ToLower(name)]++
		}
	}()
	return func() map[string]int {
		time.Sleep(100 * time.Millisecond) // the last commands reach the monitor
		c.Close()
		<-done
		return counts
	}
}
