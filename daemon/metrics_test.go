package daemon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/doorward/doorward/actions"
	"github.com/doorward/doorward/actions/engine"
	"github.com/doorward/doorward/actions/redisstore"
)

// samples returns the doorward_ samples of a text exposition, sorted.
func samples(t *testing.T, body string) []string {
	t.Helper()
	var out []string
	for line := range strings.Lines(body) {
		if strings.HasPrefix(line, "doorward_") {
			out = append(out, strings.TrimSpace(line))
		}
	}
	slices.Sort(out)
	return out
}

// refused is every refusal reason of a command-engine door with its
// count in counts (0 if absent).
func refused(door string, counts map[string]int) []string {
	return refusedFor(door, engineReasons(), counts)
}

// refusedFor is every one of reasons, and queue_full, of door with its
// count in counts (0 if absent).
func refusedFor(door string, reasons []string, counts map[string]int) []string {
	var out []string
	for _, r := range append(slices.Clip(reasons), queueFullReason) {
		out = append(out, fmt.Sprintf(`doorward_knocks_refused_total{door=%q,reason=%q} %d`, door, r, counts[r]))
	}
	return out
}

func scrapeHandler(t *testing.T, m *metrics) []string {
	t.Helper()
	rec := httptest.NewRecorder()
	promhttp.HandlerFor(m.registry(), promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("scrape: %d %s", rec.Code, rec.Body)
	}
	return samples(t, rec.Body.String())
}

// TestMetricsCollector: the counters as a scrape shows them, and a reload
// that keeps a door keeps its counts while one that drops a door drops
// its series (its open entries still show until they close). ssh and web
// are command-engine doors, dm a door of a protocol with reasons of its
// own, told through Tally.
func TestMetricsCollector(t *testing.T) {
	m := newMetrics()
	dmReasons := []string{"bad_hmac", "replay"}
	m.setDoors(map[string][]string{"ssh": engineReasons(), "web": engineReasons(), "dm": dmReasons})
	open := []actions.DoorEntry{{Door: "ssh"}, {Door: "ssh"}, {Door: "gone"}}
	m.open = func() []actions.DoorEntry { return open }
	m.captures = func(yield func(string, uint64, uint64)) { yield("eth0", 1000, 7) }
	m.packets.Add(1234)
	for range 3 {
		m.seen("ssh")
	}
	m.knock("ssh", engine.Accepted)
	m.knock("ssh", engine.Accepted)
	m.knock("ssh", engine.RefusedCooldown)
	m.seen("web")
	m.queueFull("web")
	m.seen("unknown") // a queued event of a door a reload removed: not counted
	m.knock("unknown", engine.Accepted)
	m.tally("unknown", actions.Refused, "replay")
	m.seen("dm")
	m.tally("dm", actions.Accepted, "")
	m.tally("dm", actions.Refused, "bad_hmac")
	m.tally("dm", actions.Refused, "bad_hmac")
	m.tally("dm", actions.Refused, "replay")
	m.tally("dm", actions.Refused, "not_declared") // a protocol's bug: shown, not lost
	run := m.counting(func(_ context.Context, line string) (int, error) {
		switch line {
		case "fail":
			return 1, nil
		case "error":
			return -1, errors.New("timed out")
		}
		return 0, nil
	})
	for _, line := range []string{"ok", "fail", "error", "ok"} {
		run(context.Background(), line)
	}

	want := []string{
		`doorward_capture_packets_total{interface="eth0"} 1000`,
		`doorward_commands_failed_total 2`,
		`doorward_commands_run_total 4`,
		`doorward_doors_open{door="dm"} 0`,
		`doorward_doors_open{door="gone"} 1`,
		`doorward_doors_open{door="ssh"} 2`,
		`doorward_doors_open{door="web"} 0`,
		`doorward_kernel_drops_total{interface="eth0"} 7`,
		`doorward_knocks_accepted_total{door="dm"} 1`,
		`doorward_knocks_accepted_total{door="ssh"} 2`,
		`doorward_knocks_accepted_total{door="web"} 0`,
		`doorward_knocks_refused_total{door="dm",reason="unlisted"} 1`,
		`doorward_knocks_seen_total{door="dm"} 1`,
		`doorward_knocks_seen_total{door="ssh"} 3`,
		`doorward_knocks_seen_total{door="web"} 1`,
		`doorward_log_lines_suppressed_total 0`,
		`doorward_packets_processed_total 1234`,
	}
	want = append(want, refused("ssh", map[string]int{"cooldown": 1})...)
	want = append(want, refused("web", map[string]int{queueFullReason: 1})...)
	want = append(want, refusedFor("dm", dmReasons, map[string]int{"bad_hmac": 2, "replay": 1})...)
	slices.Sort(want)
	if got := scrapeHandler(t, m); !slices.Equal(got, want) {
		t.Errorf("scrape:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// Reload: ssh stays, web goes, new comes, dm stays with a reason
	// less and one more.
	m.setDoors(map[string][]string{"ssh": engineReasons(), "new": engineReasons(), "dm": {"replay", "unknown_guest"}})
	m.seen("ssh")
	got := scrapeHandler(t, m)
	for _, line := range []string{`doorward_knocks_seen_total{door="ssh"} 4`, `doorward_knocks_seen_total{door="new"} 0`,
		`doorward_knocks_accepted_total{door="dm"} 1`,
		`doorward_knocks_refused_total{door="dm",reason="replay"} 1`,
		`doorward_knocks_refused_total{door="dm",reason="unknown_guest"} 0`,
		`doorward_knocks_refused_total{door="dm",reason="unlisted"} 1`} {
		if !slices.Contains(got, line) {
			t.Errorf("after reload: no %s in\n%s", line, strings.Join(got, "\n"))
		}
	}
	for _, line := range got {
		if strings.Contains(line, `door="web"`) || strings.Contains(line, `reason="bad_hmac"`) {
			t.Errorf("after reload: the removed door or reason still has %s", line)
		}
	}
}

// TestMetricsTallyAllocs: telling the metrics of a refused knock, as a
// detector does for every forged packet, allocates nothing.
func TestMetricsTallyAllocs(t *testing.T) {
	m := newMetrics()
	m.setDoors(map[string][]string{"dm": {"bad_hmac"}})
	var tally actions.Tally = m.tally
	if n := testing.AllocsPerRun(100, func() { tally.Knock("dm", actions.Refused, "bad_hmac") }); n != 0 {
		t.Errorf("%v allocations per refused knock", n)
	}
}

// unixClient talks HTTP over the unix socket at path.
func unixClient(path string) *http.Client {
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", path)
		},
	}}
}

func scrape(t *testing.T, c *http.Client, url string) []string {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape %s: %d %v\n%s", url, resp.StatusCode, err, body)
	}
	return samples(t, string(body))
}

// TestMetricsEndpoint: a knock through the whole daemon (file mode), then
// a scrape of [options] Metrics on a unix socket: the knock is seen and
// accepted for its door, its start command counted, the door open. The
// socket has mode 0660 and is gone once the daemon exits.
func TestMetricsEndpoint(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "metrics.sock")
	var out syncBuffer
	r := startFileMode(t, "\n[options]\n\tMetrics = unix:"+sock+"\n", Options{Stdout: &out, Verbose: true})
	fi, err := os.Stat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if mode := fi.Mode(); mode.Type() != os.ModeSocket || mode.Perm() != metricsSocketMode {
		t.Errorf("socket mode %v, want a socket with %v", mode, os.FileMode(metricsSocketMode))
	}
	r.knock("192.0.2.10")
	if got := r.command(5*time.Second, "knock"); got != "open 192.0.2.10" {
		t.Fatalf("ran %q", got)
	}
	c := unixClient(sock)
	got := scrape(t, c, "http://doorward/metrics")
	want := []string{
		`doorward_commands_failed_total 0`,
		`doorward_commands_run_total 1`,
		`doorward_doors_open{door="openSSH"} 1`,
		`doorward_knocks_accepted_total{door="openSSH"} 1`,
		`doorward_knocks_seen_total{door="openSSH"} 1`,
		`doorward_log_lines_suppressed_total 0`,
		`doorward_packets_processed_total 3`,
	}
	want = append(want, refused("openSSH", nil)...)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("scrape:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// A reload that keeps the door and adds one keeps the door's counts.
	conf, err := os.ReadFile(r.conf)
	if err != nil {
		t.Fatal(err)
	}
	conf = append(conf, "\n[web]\n\tsequence = 7100,7200\n\tstart_command = web %IP%\n"...)
	if err := os.WriteFile(r.conf, conf, 0o644); err != nil {
		t.Fatal(err)
	}
	r.hup <- syscall.SIGHUP
	web := `doorward_knocks_seen_total{door="web"} 0`
	for deadline := time.Now().Add(5 * time.Second); !slices.Contains(got, web); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the reload's door never showed:\n%s", strings.Join(got, "\n"))
		}
		got = scrape(t, c, "http://doorward/metrics")
	}
	r.knock("192.0.2.11")
	if got := r.command(5*time.Second, "knock after reload"); got != "open 192.0.2.11" {
		t.Fatalf("ran %q", got)
	}
	got = scrape(t, c, "http://doorward/metrics")
	for _, line := range []string{
		`doorward_knocks_seen_total{door="openSSH"} 2`,
		`doorward_knocks_accepted_total{door="openSSH"} 2`,
		`doorward_doors_open{door="openSSH"} 2`,
		`doorward_commands_run_total 2`,
		web,
	} {
		if !slices.Contains(got, line) {
			t.Errorf("after the reload: no %s in\n%s", line, strings.Join(got, "\n"))
		}
	}
	if resp, err := c.Get("http://doorward/"); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /: %v %v, want 404", resp, err)
	}

	r.cancel()
	<-r.ended
	if _, err := os.Lstat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket left behind at exit: %v", err)
	}
}

// TestMetricsListenFails: an address the daemon cannot listen on stops
// the start with the reason, before anything serves.
func TestMetricsListenFails(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	dir := t.TempDir()
	conf := filepath.Join(dir, "knockd.conf")
	text := fmt.Sprintf(fileModeConf, filepath.Join(dir, "fw.log"), filepath.Join(dir, "state")) +
		"\n[options]\n\tMetrics = " + busy.Addr().String() + "\n"
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	code := Live(context.Background(), Options{Config: conf, Stdout: &stdout, Stderr: &stderr}, nil)
	if want := "knockd: metrics: listen tcp " + busy.Addr().String() + ": bind: address already in use\n"; code != 1 || stderr.String() != want {
		t.Errorf("Live = %d, stderr %q; want 1, %q", code, stderr.String(), want)
	}
}

// TestMetricsReadme: README's table of metrics names exactly the metrics
// the collector describes.
func TestMetricsReadme(t *testing.T) {
	doc, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, sec, ok := strings.Cut(string(doc), "\n### Metrics\n")
	if !ok {
		t.Fatal(`README.md has no "### Metrics" section`)
	}
	sec, _, _ = strings.Cut(sec, "\n#")
	var listed []string
	for _, m := range regexp.MustCompile("(?m)^\\| `(doorward_[a-z_]+)` \\|").FindAllStringSubmatch(sec, -1) {
		listed = append(listed, m[1])
	}
	ch := make(chan *prometheus.Desc, 32)
	collector{}.Describe(ch)
	close(ch)
	var described []string
	for d := range ch {
		name, _, _ := strings.Cut(strings.TrimPrefix(d.String(), `Desc{fqName: "`), `"`)
		described = append(described, name)
	}
	slices.Sort(listed)
	slices.Sort(described)
	if !slices.Equal(listed, described) {
		t.Errorf("README's metrics %q; the collector's %q", listed, described)
	}
}

// TestMetricsSuppressed: the lines a detector's rate limit leaves out
// under a burst of knocks reach doorward_log_lines_suppressed_total.
func TestMetricsSuppressed(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "metrics.sock")
	var out syncBuffer
	r := startFileMode(t, "\n[options]\n\tLogRate = 1\n\tMetrics = unix:"+sock+"\n", Options{Stdout: &out, Verbose: true})
	now := time.Now()
	var b strings.Builder
	for i := range 40 { // 40 first hits, 40 "Stage 1" lines; the burst is 10
		b.WriteString(kernLine(now, fmt.Sprintf("192.0.2.%d", 100+i), 40000, 7000))
	}
	r.append(b.String())
	want := `doorward_packets_processed_total 40`
	c := unixClient(sock)
	var got []string
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if got = scrape(t, c, "http://doorward/metrics"); slices.Contains(got, want) {
			break
		}
	}
	var n int
	for _, line := range got {
		if _, err := fmt.Sscanf(line, "doorward_log_lines_suppressed_total %d", &n); err == nil {
			break
		}
	}
	if !slices.Contains(got, want) || n < 20 {
		t.Errorf("want %s and at least 20 lines suppressed (burst 10 of 40), got %d in\n%s", want, n, strings.Join(got, "\n"))
	}
}

// TestMetricsProtocolReasons: a protocol with its own action (a port-span
// door) reports its outcomes through Tally: a knock its action accepts,
// and its replay, which the detector refuses, each counted for the door
// with the protocol's reasons, created at start (0 until one happens); the
// command engine's reasons are the sequence door's only.
func TestMetricsProtocolReasons(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "metrics.sock")
	var out syncBuffer
	span := "\n[span]\n\tType = knockdaemon\n\t" + strings.ReplaceAll(spanDoor, "\n", "\n\t") +
		"\n\n[open]\n\tType = action\n\tSystem = open IP\n"
	r := startFileMode(t, span+"\n[options]\n\tMetrics = unix:"+sock+"\n", Options{Stdout: &out, Verbose: true})
	now := time.Now()
	var b strings.Builder
	for i, sport := range []uint16{41000, 42000} { // the knock, then its replay
		for _, p := range spanKnock(t, now.Add(time.Duration(i)*time.Second), sport) {
			b.WriteString(kernLine(now, p.Src.String(), int(p.SrcPort), int(p.DstPort)))
		}
	}
	r.append(b.String())
	if got := r.command(5*time.Second, "port-span knock"); got != "open 10.0.0.2" {
		t.Fatalf("ran %q", got)
	}
	r.waitFor("reuses the ciphertext of a knock already accepted")
	got := scrape(t, unixClient(sock), "http://doorward/metrics")
	for _, line := range []string{
		`doorward_knocks_seen_total{door="span"} 1`,
		`doorward_knocks_accepted_total{door="span"} 1`,
		`doorward_knocks_refused_total{door="span",reason="replay"} 1`,
		`doorward_knocks_refused_total{door="span",reason="condition_false"} 0`,
		`doorward_knocks_refused_total{door="span",reason="queue_full"} 0`,
		`doorward_knocks_refused_total{door="openSSH",reason="cooldown"} 0`,
	} {
		if !slices.Contains(got, line) {
			t.Errorf("no %s in\n%s", line, strings.Join(got, "\n"))
		}
	}
	for _, line := range got {
		if strings.Contains(line, `door="span",reason="cooldown"`) || strings.Contains(line, `door="openSSH",reason="replay"`) {
			t.Errorf("a reason of another protocol: %s", line)
		}
	}
}

// TestMetricsTCP: the endpoint on host:port, scraped over TCP.
func TestMetricsTCP(t *testing.T) {
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := free.Addr().String()
	free.Close() // a port that was free a moment ago
	var out syncBuffer
	r := startFileMode(t, "\n[options]\n\tMetrics = "+addr+"\n", Options{Stdout: &out, Verbose: true})
	r.knock("192.0.2.10")
	r.command(5*time.Second, "knock")
	got := scrape(t, &http.Client{Timeout: 5 * time.Second}, "http://"+addr+"/metrics")
	if want := `doorward_knocks_accepted_total{door="openSSH"} 1`; !slices.Contains(got, want) {
		t.Errorf("no %s in\n%s", want, strings.Join(got, "\n"))
	}

	// A reload that moves the endpoint is told it stays until a restart,
	// and the endpoint goes on serving where it was.
	conf, err := os.ReadFile(r.conf)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(r.conf, append(conf, "\tMetrics = 127.0.0.1:1\n"...), 0o644); err != nil {
		t.Fatal(err)
	}
	r.hup <- syscall.SIGHUP
	r.waitFor(fmt.Sprintf("config: Metrics changed; the endpoint keeps %q until a restart", addr))
	scrape(t, &http.Client{Timeout: 5 * time.Second}, "http://"+addr+"/metrics")
}

// TestMetricsState: with a shared state backend, its state, refusals and
// the door group openings it could not publish are scraped; without one,
// none of these series exists.
func TestMetricsState(t *testing.T) {
	m := newMetrics()
	shared := func(s string) bool {
		return strings.HasPrefix(s, "doorward_state_") || strings.HasPrefix(s, "doorward_group_")
	}
	for _, s := range scrapeHandler(t, m) {
		if shared(s) {
			t.Fatalf("without a shared backend: %s", s)
		}
	}
	h := redisstore.Health{Backend: "redis", Addr: "unix:///run/redis.sock", Up: false, Refused: 3}
	m.state = func() redisstore.Health { return h }
	m.groupsDropped = func() uint64 { return 2 }
	var got []string
	for _, s := range scrapeHandler(t, m) {
		if shared(s) {
			got = append(got, s)
		}
	}
	want := []string{`doorward_group_openings_dropped_total{backend="redis"} 2`,
		`doorward_state_refused_total{backend="redis"} 3`, `doorward_state_up{backend="redis"} 0`}
	if !slices.Equal(got, want) {
		t.Errorf("down: %q, want %q", got, want)
	}
}
