package daemon

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/doorward/doorward/actions/journal"
)

var updateStatus = flag.Bool("update-status", false, "rewrite testdata/status/*.golden from --status's output")

// TestStatusOutput: knockd --status's table and JSON for the states a
// state directory can be in, against goldens (go test -run
// TestStatusOutput -update-status rewrites them; review the diff).
func TestStatusOutput(t *testing.T) {
	now := time.Date(2026, 12, 4, 18, 0, 0, 0, time.UTC)
	ssh := journal.Entry{ID: 7, Door: "openSSH", Name: "openSSH", Addr: "192.0.2.10",
		Stop: "/sbin/iptables -D INPUT -s 192.0.2.10 -p tcp --dport 22 -j ACCEPT",
		Due:  now.Add(4*time.Minute + 11*time.Second + 300*time.Millisecond), Opened: now.Add(-time.Minute)}
	dm := journal.Entry{ID: 9, Door: "doorman/ssh", Name: "ssh", Addr: "2001:db8::7", Port: 22,
		Stop: "/etc/doorman/del eth0 2001:db8::7 0 2001:db8::1 22 && logger \"closed\" > /dev/null",
		Due:  now.Add(20 * time.Second), Opened: now.Add(-10 * time.Second)}
	kd := journal.Entry{ID: 3, Door: "span", Name: "span: action close", Addr: "198.51.100.3",
		Stop: "iptables -D INPUT -s 198.51.100.3 -j ACCEPT", Due: now.Add(time.Hour + 2*time.Second), Opened: now.Add(-time.Minute)}
	// Journaled by a knockd before "opened": no opening time; its stop
	// command failed twice and is retried in 2 s.
	old := journal.Entry{ID: 2, Door: "openHTTP", Name: "openHTTP", Addr: "203.0.113.5",
		Stop: "/sbin/iptables -D INPUT -s 203.0.113.5 -p tcp --dport 80 -j ACCEPT", Due: now.Add(2 * time.Second), Failures: 2}
	// Opened through an nftables set: the set names the port (a set of
	// address . port) where the journal does not.
	nft := journal.Entry{ID: 11, Door: "nftSSH", Name: "nftSSH", Addr: "192.0.2.20", Set: "inet filter doorward4 22",
		Due: now.Add(30 * time.Second), Opened: now.Add(-30 * time.Second)}
	nft6 := journal.Entry{ID: 12, Door: "nftWeb", Name: "nftWeb", Addr: "2001:db8::20", Set: "ip6 filter doorward6", Port: 443,
		Due: now.Add(40 * time.Second), Opened: now.Add(-20 * time.Second)}
	overdue := ssh
	overdue.ID, overdue.Due = 1, now.Add(-3*time.Second)
	running := journal.Snapshot{Dir: "/var/lib/doorward", DaemonKnown: true, DaemonPID: 4242}
	with := func(s journal.Snapshot, f func(*journal.Snapshot)) journal.Snapshot { f(&s); return s }
	// With [options] State: the shared state's answer to --status's ping.
	up := &sharedStatus{Kind: "redis", Addr: "redis://10.0.0.5:6379/0"}
	down := &sharedStatus{Kind: "redis", Addr: "sentinel 10.0.0.5:26379,10.0.0.6:26379 master bastions",
		Err: errors.New("redis: all sentinels specified in configuration are unreachable")}
	for _, tc := range []struct {
		name string
		s    journal.Snapshot
		sh   *sharedStatus
	}{
		{"never-ran", journal.Snapshot{Dir: "/var/lib/doorward", NoDir: true, DaemonKnown: true}, nil},
		{"no-journal", journal.Snapshot{Dir: "/var/lib/doorward", NoFile: true, DaemonKnown: true}, nil},
		{"none-open", running, nil},
		{"open", with(running, func(s *journal.Snapshot) { s.Doors = []journal.Entry{old, ssh, dm, kd} }), nil},
		{"nft-set", with(running, func(s *journal.Snapshot) { s.Doors = []journal.Entry{nft6, ssh, nft} }), nil},
		{"closing", with(running, func(s *journal.Snapshot) { s.Doors = []journal.Entry{ssh, overdue} }), nil},
		{"stopped", with(running, func(s *journal.Snapshot) { s.DaemonPID = 0; s.Doors = []journal.Entry{overdue, old} }), nil},
		{"unknown-damaged", with(running, func(s *journal.Snapshot) {
			s.DaemonKnown, s.DaemonPID, s.Damaged = false, 0, 2
			s.Doors = []journal.Entry{ssh}
		}), nil},
		{"shared-up", with(running, func(s *journal.Snapshot) { s.Doors = []journal.Entry{ssh} }), up},
		{"shared-groups", with(running, func(s *journal.Snapshot) { s.Doors = []journal.Entry{ssh} }), &sharedStatus{Kind: "redis", Addr: "redis://10.0.0.5:6379/0",
			Groups: []groupStatus{{Name: "bastions", Doors: []string{"openSSH", "nftSSH"}, Open: 3},
				{Name: "web", Doors: []string{"openHTTP"}, Err: errors.New("redis: i/o timeout")}}}},
		{"shared-down", running, down},
		{"shared-never-ran", journal.Snapshot{Dir: "/var/lib/doorward", NoDir: true, DaemonKnown: true}, down},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var text, js bytes.Buffer
			if err := writeStatus(&text, tc.s, tc.sh, now, time.UTC); err != nil {
				t.Fatal(err)
			}
			if err := writeStatusJSON(&js, tc.s, tc.sh, now); err != nil {
				t.Fatal(err)
			}
			var v map[string]any
			if err := json.Unmarshal(js.Bytes(), &v); err != nil {
				t.Fatalf("not JSON: %v\n%s", err, js.String())
			}
			golden(t, filepath.Join("testdata", "status", tc.name+".txt"), text.Bytes())
			golden(t, filepath.Join("testdata", "status", tc.name+".json"), js.Bytes())
		})
	}
}

func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *updateStatus {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update-status to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs:\n--- got\n%s--- want\n%s", path, got, want)
	}
}

// TestStatusWhileRunning: --status while Live holds the state directory
// (file mode) shows the door a knock opened, its knocker, when it opened,
// its remaining time and the daemon's pid; once the daemon has stopped
// and closed it, no door.
func TestStatusWhileRunning(t *testing.T) {
	var out syncBuffer
	r := startFileMode(t, "", Options{Stdout: &out, Verbose: true})
	knocked := time.Now()
	r.knock("192.0.2.44")
	if line := r.command(5*time.Second, "knock"); line != "open 192.0.2.44" {
		t.Fatalf("ran %q", line)
	}
	state := filepath.Join(filepath.Dir(r.conf), "state")

	status := func(asJSON bool) string {
		t.Helper()
		var stdout, stderr bytes.Buffer
		// Through the config, as an admin types it: its StateDir.
		if rc := Status(Options{Config: r.conf, Stdout: &stdout, Stderr: &stderr}, asJSON); rc != 0 {
			t.Fatalf("--status exit %d: %s", rc, stderr.String())
		}
		return stdout.String()
	}
	text := status(false)
	for _, re := range []string{
		`(?m)^State directory ` + regexp.QuoteMeta(state) + `: knockd is running \(pid ` + strconv.Itoa(os.Getpid()) + `\)\.$`,
		`(?m)^DOOR +ADDRESS +PORT +OPENED AT +CLOSES IN +DUE AT +FAILURES$`,
		`(?m)^1 open\.$`,
	} {
		if !regexp.MustCompile(re).MatchString(text) {
			t.Errorf("no %s in:\n%s", re, text)
		}
	}
	// The door, its knocker, no port (a sequence door's start command
	// says which), when it opened, most of Cmd_Timeout = 10 left (the
	// log line's time has whole seconds; a busy machine is slow), no
	// failure.
	row := regexp.MustCompile(`(?m)^openSSH +192\.0\.2\.44 +- +(\S+ \S+) +([5-9]|10)s +\S+ \S+ +0$`).FindStringSubmatch(text)
	if row == nil {
		t.Fatalf("no row for the door in:\n%s", text)
	}
	if at, err := time.ParseInLocation(statusTime, row[1], time.Local); err != nil || at.Sub(knocked).Abs() > 3*time.Second {
		t.Errorf("opened at %q (%v), knocked at %v", row[1], err, knocked)
	}
	var v struct {
		DaemonRunning *bool `json:"daemon_running"`
		DaemonPID     int   `json:"daemon_pid"`
		Doors         []struct {
			Door             string `json:"door"`
			Address          string `json:"address"`
			OpenedAt         string `json:"opened_at"`
			RemainingSeconds int    `json:"remaining_seconds"`
		} `json:"doors"`
	}
	if err := json.Unmarshal([]byte(status(true)), &v); err != nil {
		t.Fatal(err)
	}
	if v.DaemonRunning == nil || !*v.DaemonRunning || v.DaemonPID != os.Getpid() || len(v.Doors) != 1 ||
		v.Doors[0].Door != "openSSH" || v.Doors[0].Address != "192.0.2.44" ||
		v.Doors[0].RemainingSeconds < 5 || v.Doors[0].RemainingSeconds > 10 {
		t.Errorf("JSON: %+v", v)
	}
	if at, err := time.Parse(time.RFC3339, v.Doors[0].OpenedAt); err != nil || at.Sub(knocked).Abs() > 3*time.Second {
		t.Errorf("opened_at %q (%v), knocked at %v", v.Doors[0].OpenedAt, err, knocked)
	}

	r.cancel() // SIGTERM: the stop command runs, the journal is released
	<-r.ended
	text = status(false)
	if !strings.Contains(text, "knockd is not running.\nNo doors open.\n") {
		t.Errorf("after shutdown:\n%s", text)
	}
}
