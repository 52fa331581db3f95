package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/doorward/doorward/actions/filestore"
	"github.com/doorward/doorward/actions/redisstore"
	"github.com/doorward/doorward/actions/redisstore/redistest"
)

const fleetConf = `[options]
	LogTail = %s
	StateDir = %s
	State = %s

[fw]
	Type   = logformat
	Format = iptables
	Prefix = DOORWARD:

[openSSH]
	one_time_sequences = %s
	seq_timeout   = 5
	tcpflags      = syn
	start_command = open %%IP%%
	start_command_6 = open %%IP%%
	cmd_timeout   = 2
	stop_command  = close %%IP%%
	stop_command_6  = close %%IP%%
`

// fleetHost is one daemon of a fleet in file mode (no capture, no
// privileges): its own firewall log, state directory and copy of the
// one-time sequence file, the fleet's Redis.
type fleetHost struct {
	log string
	out syncBuffer
	ran chan string
}

func startFleetHost(t *testing.T, url string) *fleetHost {
	t.Helper()
	dir := t.TempDir()
	h := &fleetHost{log: filepath.Join(dir, "firewall.log"), ran: make(chan string, 10)}
	otp := filepath.Join(dir, "otp")
	for path, text := range map[string]string{h.log: "", otp: "7001,8001\n7002,8002\n7003,8003\n"} {
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	conf := filepath.Join(dir, "knockd.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(fleetConf, h.log, filepath.Join(dir, "state"), url, otp)), 0o600); err != nil {
		t.Fatal(err)
	}
	var errOut syncBuffer
	o := Options{Config: conf, LogFile: filepath.Join(dir, "knockd.log"), Stdout: &h.out, Stderr: &errOut, Verbose: true,
		Runner: func(ctx context.Context, line string) (int, error) { h.ran <- line; return 0, nil }}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() { done <- Live(ctx, o, nil) }()
	t.Cleanup(func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("exit %d: %s", code, errOut.String())
		}
	})
	waitFor(t, &h.out, "starting up, following "+h.log)
	time.Sleep(300 * time.Millisecond) // tail reaches the end of the file
	return h
}

// knock appends a two-hit knock from src to the host's firewall log.
func (h *fleetHost) knock(t *testing.T, src string, ports ...int) {
	t.Helper()
	f, err := os.OpenFile(h.log, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	now := time.Now()
	for i, p := range ports {
		f.WriteString(kernLine(now, src, 40000+i, p))
	}
}

// expect waits for the command want, or fails if another runs or none
// does within d; want "" expects none.
func (h *fleetHost) expect(t *testing.T, want string, d time.Duration) {
	t.Helper()
	select {
	case got := <-h.ran:
		if got != want {
			t.Fatalf("ran %q, want %q; log:\n%s", got, want, h.out.String())
		}
	case <-time.After(d):
		if want != "" {
			t.Fatalf("%q did not run; log:\n%s", want, h.out.String())
		}
	}
}

// Two daemons share one redis-server: a one-time sequence used on A no
// longer opens B, which moves on to the next line; with Redis killed, a
// knock fails closed (logged once) while the open door still closes on
// time; after redis-server restarts knocks work again without restarting
// the daemons.
func TestFleetOneTimeSequences(t *testing.T) {
	srv := redistest.Start(t)
	a, b := startFleetHost(t, srv.URL()), startFleetHost(t, srv.URL())

	a.knock(t, "192.0.2.10", 7001, 8001)
	a.expect(t, "open 192.0.2.10", 10*time.Second)
	b.knock(t, "192.0.2.10", 7001, 8001)
	b.expect(t, "", 2*time.Second)
	waitFor(t, &b.out, "now expecting 7002:tcp,8002:tcp")

	srv.Kill()
	a.expect(t, "close 192.0.2.10", 10*time.Second) // the door closes on time
	b.knock(t, "192.0.2.11", 7002, 8002)
	b.expect(t, "", 2*time.Second) // fail closed
	b.knock(t, "192.0.2.11", 7002, 8002)
	b.expect(t, "", time.Second)
	if n := strings.Count(b.out.String(), "unreachable"); n != 1 {
		t.Errorf("%d unreachable lines on B, want 1:\n%s", n, b.out.String())
	}

	srv.Restart()
	waitFor(t, &b.out, "answers again")
	b.knock(t, "192.0.2.11", 7002, 8002)
	b.expect(t, "open 192.0.2.11", 10*time.Second)
	b.expect(t, "close 192.0.2.11", 10*time.Second)
}

// TestStatusSharedState: --status says whether the shared state answers.
func TestStatusSharedState(t *testing.T) {
	srv := redistest.Start(t)
	dir := t.TempDir()
	conf := filepath.Join(dir, "knockd.conf")
	if err := os.WriteFile(conf, []byte("[options]\n\tStateDir = "+filepath.Join(dir, "state")+"\n\tState = "+srv.URL()+"\n"+
		"[ssh]\n\tsequence = 7000,8000,9000\n\tstart_command = /bin/true\n\tGroup = bastions\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	status := func(asJSON bool) string {
		var out, errOut strings.Builder
		if code := Status(Options{Config: conf, Stdout: &out, Stderr: &errOut}, asJSON); code != 0 {
			t.Fatalf("--status: exit %d: %s", code, errOut.String())
		}
		return out.String()
	}
	shared := func() sharedStateJSON {
		var v struct {
			SharedState *sharedStateJSON `json:"shared_state"`
		}
		if err := json.Unmarshal([]byte(status(true)), &v); err != nil || v.SharedState == nil {
			t.Fatalf("--status --json: %v, no shared_state in:\n%s", err, status(true))
		}
		return *v.SharedState
	}
	// Another host of the group opened ssh for a knocker.
	other, err := redisstore.New(redisstore.Options{URL: srv.URL()}, filestore.Memory().Doors, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	pub := other.Groups([]string{"bastions"}, func(redisstore.Opening) {})
	defer pub.Close()
	pub.Publish(redisstore.Opening{Group: "bastions", Door: "ssh", Addr: netip.MustParseAddr("192.0.2.7"), Expires: time.Now().Add(time.Hour)})
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if open, _ := other.GroupOpenings("bastions", time.Now()); len(open) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the opening was not published in 5 s")
		}
	}
	if got, want := status(false), "Shared state: redis "+srv.URL()+" answers.\nDoor group bastions (ssh): 1 open on the hosts of the group.\n"; !strings.HasSuffix(got, want) {
		t.Errorf("--status:\n%s\nwant it to end in %q", got, want)
	}
	if got, want := shared(), (sharedStateJSON{Kind: "redis", Address: srv.URL(), Up: true,
		Groups: []groupJSON{{Name: "bastions", Doors: []string{"ssh"}, Open: 1}}}); !reflect.DeepEqual(got, want) {
		t.Errorf("--status --json: shared_state %+v, want %+v", got, want)
	}
	srv.Kill()
	if got := status(false); !strings.Contains(got, "Shared state: redis "+srv.URL()+" does not answer (") {
		t.Errorf("--status with Redis killed:\n%s", got)
	}
	got := shared()
	if want := (sharedStateJSON{Kind: "redis", Address: srv.URL(), Error: got.Error}); !reflect.DeepEqual(got, want) || !strings.Contains(got.Error, srv.Socket()) {
		t.Errorf("--status --json with Redis killed: shared_state %+v, want %+v with an error naming the socket", got, want)
	}
}
