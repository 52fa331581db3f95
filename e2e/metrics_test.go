package e2e

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/doorward/doorward/e2e/netns"
)

// TestMetrics: a real knock over the veth, then a scrape of the metrics
// socket: the door's knock accepted, its command run, the door open, and
// the capture's packets counted by the kernel. The socket goes at exit.
func TestMetrics(t *testing.T) {
	netns.Require(t, "ip", "nc", "iptables")
	p := netns.NewPair(t)
	p.Firewall(t, netns.IPTables)
	service(t, p, servicePort)
	conf, err := os.ReadFile(example(iptablesGuard.conf))
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(t.TempDir(), "metrics.sock")
	path := filepath.Join(t.TempDir(), "knockd.conf")
	conf = append(conf, "\n[options]\n\tMetrics = unix:"+sock+"\n"...)
	if err := os.WriteFile(path, conf, 0o600); err != nil {
		t.Fatal(err)
	}
	k := startKnockd(t, p, path)
	src := p.ClientAddr
	ourKnock(nil, "7000", "8000", "9000")(t, p, p.ServerAddr)
	k.waitLog(src.String()+": door2222: OPEN SESAME", 5*time.Second)
	iptablesGuard.waitAllowed(t, p, false, []string{src.String()}, 2*time.Second)

	body := scrapeSocket(t, sock)
	value := func(series string) int { return seriesValue(t, body, series) }
	iface := `{interface="` + p.ServerIf + `"}`
	if n := value(`doorward_knocks_accepted_total{door="door2222"}`); n != 1 {
		t.Errorf("knocks accepted %d, want 1", n)
	}
	if n := value(`doorward_doors_open{door="door2222"}`); n != 1 {
		t.Errorf("doors open %d, want 1", n)
	}
	if n := value(`doorward_commands_run_total`); n != 1 {
		t.Errorf("commands run %d, want 1 (the start command)", n)
	}
	if n := value(`doorward_packets_processed_total`); n < 3 {
		t.Errorf("packets processed %d, want at least the 3 knocks", n)
	}
	if n := value(`doorward_capture_packets_total` + iface); n < 3 {
		t.Errorf("capture packets %d, want at least the 3 knocks", n)
	}
	if n := value(`doorward_kernel_drops_total` + iface); n != 0 {
		t.Errorf("kernel drops %d, want 0", n)
	}
	if t.Failed() {
		t.Logf("scrape:\n%s", grepLines(string(body), "doorward_"))
	}

	if err := k.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if _, ok := p.Wait(k.cmd, 10*time.Second); !ok {
		t.Fatal("knockd still running 10 s after SIGTERM")
	}
	if _, err := os.Lstat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("metrics socket left behind: %v", err)
	}
}

// scrapeSocket is a scrape of the metrics endpoint on the unix socket sock.
func scrapeSocket(t *testing.T, sock string) []byte {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		},
	}}
	resp, err := c.Get("http://knockd/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return body
}

// seriesValue is series' value in a scrape; -1, and the test failed, if
// the scrape has no such series.
func seriesValue(t *testing.T, body []byte, series string) int {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\d+)$`).FindSubmatch(body)
	if m == nil {
		t.Errorf("no %s in the scrape", series)
		return -1
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}

// TestDoormanMetrics: a doorman door's knocks as the metrics count them,
// by door and reason: a knock with a wrong secret and a replay refused by
// the detector's checks, the valid knock accepted once its broad rule is
// in place, and its client's SYN (the narrow step) no second knock seen.
func TestDoormanMetrics(t *testing.T) {
	t.Parallel()
	s := dmSetup(t, netns.NFTables)
	s.stop(t)
	sock := filepath.Join(t.TempDir(), "metrics.sock")
	f, err := os.OpenFile(s.conf, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.WriteString("\n[options]\n\tMetrics = unix:" + sock + "\n")
	if err := errors.Join(err, f.Close()); err != nil {
		t.Fatal(err)
	}
	s.start(t)
	cli := s.p.ClientAddr.String()
	valid := dmPayload(servicePort, "martink", "4242424242", dmSecret)
	s.sendip(t, cli, dmPayload(servicePort, "martink", "1", "wrong"))
	s.k.waitLog("doorman2222: warn: Guest martink at "+cli+" used incorrect secret.", 3*time.Second)
	s.sendip(t, cli, valid)
	s.waitRules(t, []string{"broad " + cli}, 3*time.Second)
	s.sendip(t, cli, valid)
	s.k.waitLog("doorman2222: warn: PROBABLE REPLAY ATTEMPT from "+cli, 3*time.Second)
	s.p.Start(t, s.p.Client, nil, "timeout", "2", "nc", s.p.ServerAddr.String(), strconv.Itoa(servicePort))
	s.k.waitLog("Initial SYN packet detected, martink@"+cli+":", 3*time.Second)

	body := scrapeSocket(t, sock)
	for series, want := range map[string]int{
		`doorward_knocks_seen_total{door="doorman2222"}`:                           1,
		`doorward_knocks_accepted_total{door="doorman2222"}`:                       1,
		`doorward_knocks_refused_total{door="doorman2222",reason="bad_hmac"}`:      1,
		`doorward_knocks_refused_total{door="doorman2222",reason="replay"}`:        1,
		`doorward_knocks_refused_total{door="doorman2222",reason="unknown_guest"}`: 0,
	} {
		if got := seriesValue(t, body, series); got != want {
			t.Errorf("%s = %d, want %d", series, got, want)
		}
	}
	if t.Failed() {
		t.Logf("scrape:\n%s", grepLines(string(body), "doorward_knocks"))
	}
}

// grepLines is the lines of s that start with prefix.
func grepLines(s, prefix string) string {
	var out []string
	for line := range strings.Lines(s) {
		if strings.HasPrefix(line, prefix) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "")
}
