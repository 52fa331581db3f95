package doorman

import (
	"bufio"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/doorward/doorward/actions"
	"github.com/doorward/doorward/actions/filestore"
	cfg "github.com/doorward/doorward/config/doorman"
	"github.com/doorward/doorward/config/knockd"
	"github.com/doorward/doorward/detectors"
	"github.com/doorward/doorward/formats/doorman"
	"github.com/doorward/doorward/internal/srctable"

	"github.com/doorward/doorward/internal/ratelimit"
)

const guestlist = `# every guest of the spec's vectors
martink   hushhush     22 10.0.0.0/24
user4     qwertyuiop4  ssh 10.0.0.2
grp187    Big%sEcReT   1001 0.0.0.0/0
abcdefghijklm x        65534 0.0.0.0/0
`

var (
	t0     = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	server = netip.MustParseAddr("10.0.0.1")
	client = netip.MustParseAddr("10.0.0.2")
)

func resolver() cfg.Resolver {
	return cfg.Resolver{Service: func(name string) (int, error) {
		if name == "ssh" {
			return 22, nil
		}
		return 0, errors.New("unknown")
	}}
}

// harness is a detector over one door (knock port 1001) with a hash
// archive file in dir, recording log lines and events.
type harness struct {
	t      testing.TB
	det    *Detector
	log    []string
	events []actions.Event
	tally  []string // "door outcome reason" as the detector tells actions.Tally
}

func newHarness(t testing.TB, dir string) *harness {
	t.Helper()
	return newHarnessStore(t, dir, nil)
}

// newHarnessStore is newHarness over store (nil: the detector's own).
func newHarnessStore(t testing.TB, dir string, store actions.Store) *harness {
	t.Helper()
	gl := filepath.Join(dir, "guestlist")
	if err := os.WriteFile(gl, []byte(guestlist), 0o600); err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf("[dm]\n\tType = doorman\n\tGuestlist = %s\n\tFirewall_Add = /bin/true\n\tFirewall_Del = /bin/true\n\tHash_Archive = %s\n\tHash_Archive_Size = 1000\n\tWaitfor = 3\n",
		gl, filepath.Join(dir, "archive"))
	kc, err := knockd.Parse("knockd.conf", []byte(conf))
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t}
	doors, err := FromDoors(kc.Doors, func(d *knockd.Door) string { return d.Name }, SetupOptions{
		Resolver: resolver(), NoPermissionChecks: true,
		Logf: func(f string, a ...any) { h.log = append(h.log, fmt.Sprintf(f, a...)) },
	})
	if err != nil {
		t.Fatal(err)
	}
	h.det = New(doors, Options{Logf: func(f string, a ...any) { h.log = append(h.log, fmt.Sprintf(f, a...)) }, Store: store,
		Tally: func(door string, o actions.Outcome, reason string) {
			h.tally = append(h.tally, fmt.Sprintf("%s %d %s", door, o, reason))
		}})
	if err := h.det.Commit(); err != nil {
		t.Fatal(err)
	}
	return h
}

func (h *harness) udp(at time.Duration, src netip.Addr, port uint16, payload string) {
	h.det.Observe(&detectors.Packet{Time: t0.Add(at), Src: src, Dst: server, SrcPort: 40000, DstPort: port, Proto: detectors.UDP, Payload: []byte(payload)}, h.emit)
}

func (h *harness) syn(at time.Duration, src netip.Addr, sport, port uint16, flags detectors.TCPFlags) {
	h.det.Observe(&detectors.Packet{Time: t0.Add(at), Src: src, Dst: server, SrcPort: sport, DstPort: port, Proto: detectors.TCP, Flags: flags}, h.emit)
}

func (h *harness) emit(ev actions.Event) { h.events = append(h.events, ev) }

// takeLog returns and clears the log.
func (h *harness) takeLog() []string {
	l := h.log
	h.log = nil
	return l
}

func (h *harness) takeEvents() []string {
	var out []string
	for _, ev := range h.events {
		kind := "knock"
		if ev.Kind == actions.Connect {
			kind = "connect"
		}
		line := fmt.Sprintf("%s %s %s port=%d sport=%d", kind, ev.Door, ev.Addr, ev.Port, ev.SrcPort)
		if ev.Guest != "" || ev.Dst.IsValid() {
			line += fmt.Sprintf(" guest=%s dst=%s", ev.Guest, ev.Dst)
		}
		out = append(out, line)
	}
	h.events = nil
	return out
}

func (h *harness) check(what string, wantLog, wantEvents []string) {
	h.t.Helper()
	if got := h.takeLog(); !slices.Equal(got, wantLog) {
		h.t.Errorf("%s: log\n%s\nwant\n%s", what, strings.Join(got, "\n"), strings.Join(wantLog, "\n"))
	}
	if got := h.takeEvents(); !slices.Equal(got, wantEvents) {
		h.t.Errorf("%s: events\n%s\nwant\n%s", what, strings.Join(got, "\n"), strings.Join(wantEvents, "\n"))
	}
}

// TestVectors sends every vector of the spec as a knock: each is valid
// once, then a replay.
func TestVectors(t *testing.T) {
	f, err := os.Open("../../formats/doorman/testdata/vectors.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := newHarness(t, t.TempDir())
	h.takeLog()
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		n++
		_, payload, _ := strings.Cut(line, "\t")
		fs := strings.Fields(payload)
		at := time.Duration(n) * time.Second
		h.udp(at, client, 1001, payload)
		h.check(payload, []string{
			fmt.Sprintf("dm: info: knock from 10.0.0.2 : %s", payload),
			"dm: debug: knock from 10.0.0.2 was valid.",
		}, []string{fmt.Sprintf("knock dm 10.0.0.2 port=%s sport=0 guest=%s dst=10.0.0.1", fs[0], fs[1])})
		h.udp(at+time.Second/2, client, 1001, payload+"\n")
		h.check(payload+" again", []string{
			fmt.Sprintf("dm: info: knock from 10.0.0.2 : %s", payload),
			fmt.Sprintf("dm: warn: PROBABLE REPLAY ATTEMPT from 10.0.0.2: port=%s guest=%s tag=%s hash=%s; original timestamp=%s",
				fs[0], fs[1], fs[2], fs[3], t0.Add(at).Format("2006-01-02 15:04:05 GMT")),
		}, nil)
	}
	if n != 5 {
		t.Fatalf("%d vectors", n)
	}
}

// TestRefusals: each check in doormand's order, with its log line.
func TestRefusals(t *testing.T) {
	const valid = "22 martink 1519966632 4270a3248a23c209b37d35bb060e1cd6"
	other := netip.MustParseAddr("10.9.9.9")
	wrongSecret := string(doorman.Format(22, "martink", 7, []byte("nothush")))
	port23 := string(doorman.Format(23, "martink", 8, []byte("hushhush")))
	tests := []struct {
		name    string
		src     netip.Addr
		port    uint16
		payload string
		log     []string
		reason  string // told actions.Tally for door dm; "": nothing told
	}{
		{"three fields: silent", client, 1001, "22 martink 4270a3248a23c209b37d35bb060e1cd6", nil, "bad_packet"},
		{"empty: silent", client, 1001, "", nil, "bad_packet"},
		{"short hash", client, 1001, "22 martink 1 4270", []string{`dm: warn: Bad packet from 10.0.0.2 "32 32 20 6d 61 72 74 69 6e 6b 20 31 20 34 32 37 .."`}, "bad_packet"},
		{"service too long", client, 1001, "000022 martink 1519966632 4270a3248a23c209b37d35bb060e1cd6", []string{`dm: warn: Bad packet from 10.0.0.2 "30 30 30 30 32 32 20 6d 61 72 74 69 6e 6b 20 31 .."`}, "bad_packet"},
		{"short bad packet", client, 1001, "a b c d", []string{`dm: warn: Bad packet from 10.0.0.2 "61 20 62 20 63 20 64 .."`}, "bad_packet"},
		{"unknown guest", client, 1001, "22 nobody 1 4270a3248a23c209b37d35bb060e1cd6", []string{
			"dm: info: knock from 10.0.0.2 : 22 nobody 1 4270a3248a23c209b37d35bb060e1cd6",
			"dm: warn: Unknown guest 'nobody'"}, "unknown_guest"},
		{"guest names are case-sensitive", client, 1001, "22 Martink 1 4270a3248a23c209b37d35bb060e1cd6", []string{
			"dm: info: knock from 10.0.0.2 : 22 Martink 1 4270a3248a23c209b37d35bb060e1cd6",
			"dm: warn: Unknown guest 'Martink'"}, "unknown_guest"},
		{"port not registered", client, 1001, port23, []string{
			"dm: info: knock from 10.0.0.2 : " + port23,
			"dm: warn: Guest martink at 10.0.0.2 not registered for port 23."}, "port_not_allowed"},
		{"address not registered", other, 1001, valid, []string{
			"dm: info: knock from 10.9.9.9 : " + valid,
			"dm: warn: Guest martink is not registered for address 10.9.9.9."}, "address_not_allowed"},
		{"wrong secret", client, 1001, wrongSecret, []string{
			"dm: info: knock from 10.0.0.2 : " + wrongSecret,
			"dm: warn: Guest martink at 10.0.0.2 used incorrect secret."}, "bad_hmac"},
		{"log injection escaped", client, 1001, "22 x\nFAKE 1 4270a3248a23c209b37d35bb060e1cd6", []string{
			`dm: info: knock from 10.0.0.2 : 22 x\x0aFAKE 1 4270a3248a23c209b37d35bb060e1cd6`,
			`dm: warn: Unknown guest 'x\x0aFAKE'`}, "unknown_guest"},
		{"other UDP port: not ours", client, 1002, valid, nil, ""},
		{"IPv6: ignored", netip.MustParseAddr("fd00::2"), 1001, valid, nil, ""},
	}
	h := newHarness(t, t.TempDir())
	h.takeLog()
	for i, tc := range tests {
		h.udp(time.Duration(i)*time.Second, tc.src, tc.port, tc.payload)
		h.check(tc.name, tc.log, nil)
		var want []string
		if tc.reason != "" {
			want = []string{"dm 1 " + tc.reason}
		}
		if !slices.Equal(h.tally, want) {
			t.Errorf("%s: told %q, want %q", tc.name, h.tally, want)
		}
		h.tally = nil
	}
}

// TestTallyReplay: a valid knock is not told (the action tells whether it
// opened the door); its replay is refused as "replay", and a knock the
// hash archive cannot remember (a detector never committed) as
// "hash_archive_closed".
func TestTallyReplay(t *testing.T) {
	const valid = "22 martink 1519966632 4270a3248a23c209b37d35bb060e1cd6"
	h := newHarness(t, t.TempDir())
	h.udp(0, client, 1001, valid)
	h.udp(time.Second, client, 1001, valid)
	h.det.Close()
	h.udp(2*time.Second, client, 1001, string(doorman.Format(22, "martink", 9, []byte("hushhush"))))
	if want := []string{"dm 1 replay", "dm 1 hash_archive_closed"}; !slices.Equal(h.tally, want) {
		t.Errorf("told %q, want %q", h.tally, want)
	}
}

// TestSYN: after a valid knock, the client's first SYN to the port it
// opened is a Connect event; nothing else is.
func TestSYN(t *testing.T) {
	const valid = "22 martink 1519966632 4270a3248a23c209b37d35bb060e1cd6"
	h := newHarness(t, t.TempDir())
	other := netip.MustParseAddr("10.0.0.3")
	h.syn(0, client, 50000, 22, detectors.SYN) // before any knock
	h.udp(time.Second, client, 1001, valid)
	h.takeLog()
	h.takeEvents()
	h.syn(2*time.Second, other, 50000, 22, detectors.SYN)                // another address
	h.syn(2*time.Second, client, 50000, 23, detectors.SYN)               // another port
	h.syn(2*time.Second, client, 50000, 22, detectors.SYN|detectors.ACK) // not an initial SYN
	h.check("strays", nil, nil)
	h.syn(3*time.Second, client, 50001, 22, detectors.SYN)
	h.check("first SYN", nil, []string{"connect dm 10.0.0.2 port=22 sport=50001"})
	h.syn(4*time.Second, client, 50001, 22, detectors.SYN) // retransmission: the action has it
	h.check("second SYN", nil, nil)
	if h.det.Pending() != 0 {
		t.Errorf("%d pending", h.det.Pending())
	}
}

// TestSYNTimeout: a SYN after Waitfor (plus slack) is not reported, and
// Expire forgets the knock.
func TestSYNTimeout(t *testing.T) {
	h := newHarness(t, t.TempDir())
	h.udp(0, client, 1001, "22 martink 1519966632 4270a3248a23c209b37d35bb060e1cd6")
	h.takeEvents()
	h.takeLog()
	h.syn(3*time.Second+synSlack+time.Millisecond, client, 50000, 22, detectors.SYN)
	h.check("late SYN", nil, nil)
	h.udp(time.Second, client, 1001, string(doorman.Format(22, "martink", 5, []byte("hushhush"))))
	h.det.Expire(t0.Add(time.Hour))
	if h.det.Pending() != 0 {
		t.Errorf("%d pending after Expire", h.det.Pending())
	}
}

// TestReplayAcrossRestart: the archive file outlives the detector: a new
// detector (a restarted daemon) still refuses the knock.
func TestReplayAcrossRestart(t *testing.T) {
	const valid = "22 martink 1519966632 4270a3248a23c209b37d35bb060e1cd6"
	dir := t.TempDir()
	h := newHarness(t, dir)
	h.udp(0, client, 1001, valid)
	if len(h.takeEvents()) != 1 {
		t.Fatal("first knock not accepted")
	}
	h.det.Close()
	h2 := newHarness(t, dir)
	h2.takeLog()
	h2.udp(time.Hour, client, 1001, valid)
	h2.check("after restart", []string{
		"dm: info: knock from 10.0.0.2 : " + valid,
		"dm: warn: PROBABLE REPLAY ATTEMPT from 10.0.0.2: port=22 guest=martink tag=1519966632 hash=4270a3248a23c209b37d35bb060e1cd6; original timestamp=2026-03-01 12:00:00 GMT",
	}, nil)
}

// TestAdopt: a reload keeps knocks waiting for their SYN, and a knock the
// old detector accepted after the new one opened the archive is refused:
// both hold the archive's space in the daemon's one Store.
func TestAdopt(t *testing.T) {
	const valid = "22 martink 1519966632 4270a3248a23c209b37d35bb060e1cd6"
	dir := t.TempDir()
	store := filestore.New(filestore.Options{})
	old := newHarnessStore(t, dir, store)
	nw := newHarnessStore(t, dir, store) // committed before old accepts the knock
	old.udp(0, client, 1001, valid)
	old.takeEvents()
	nw.det.Adopt(old.det)
	nw.takeLog()
	nw.syn(time.Second, client, 50000, 22, detectors.SYN)
	nw.check("SYN after reload", nil, []string{"connect dm 10.0.0.2 port=22 sport=50000"})
	nw.udp(2*time.Second, client, 1001, valid)
	if got := nw.takeLog(); len(got) != 2 || !strings.Contains(got[1], "PROBABLE REPLAY") {
		t.Errorf("replay after reload: %q", got)
	}
}

// TestRateLimit: a flood of bad knocks logs a burst, then a line per
// 1/rate, and says how many it suppressed.
func TestRateLimit(t *testing.T) {
	h := newHarness(t, t.TempDir())
	h.det.lim = ratelimit.New(2, 3)
	h.takeLog()
	for i := range 10 {
		h.udp(time.Duration(i)*time.Millisecond, client, 1001, "a b c d")
	}
	if got := len(h.takeLog()); got != 3 {
		t.Errorf("%d lines in the burst, want 3", got)
	}
	h.udp(time.Second, client, 1001, "a b c d")
	got := h.takeLog()
	if len(got) != 2 || got[0] != "dm: warn: 7 log lines about knocks suppressed (more than 2 a second)" {
		t.Errorf("after the burst: %q", got)
	}
}

// TestObserveAllocs: rejected packets cost no allocation once the limiter
// stops their log lines.
func TestObserveAllocs(t *testing.T) {
	h := newHarness(t, t.TempDir())
	h.det.lim = ratelimit.New(1e-9, 1)
	var told int
	h.det.tally = func(string, actions.Outcome, string) { told++ }
	for _, payload := range []string{
		"a b c d",
		"22 nobody 1 4270a3248a23c209b37d35bb060e1cd6",
		"22 martink 1 4270a3248a23c209b37d35bb060e1cd6", // wrong secret
	} {
		p := &detectors.Packet{Time: t0, Src: client, Dst: server, DstPort: 1001, Proto: detectors.UDP, Payload: []byte(payload)}
		syn := &detectors.Packet{Time: t0, Src: client, Dst: server, DstPort: 22, Proto: detectors.TCP, Flags: detectors.SYN}
		n := testing.AllocsPerRun(100, func() {
			h.det.Observe(p, h.emit)
			h.det.Observe(syn, h.emit)
		})
		if n != 0 {
			t.Errorf("%q: %v allocations per packet", payload, n)
		}
	}
}

func TestRules(t *testing.T) {
	h := newHarness(t, t.TempDir())
	got := fmt.Sprint(h.det.Rules())
	want := fmt.Sprint([]detectors.Rule{
		{Proto: detectors.UDP, Ports: []uint16{1001}},
		{Proto: detectors.TCP, Ports: []uint16{22, 1001, 65534}, FlagMask: detectors.SYN | detectors.ACK, FlagWant: detectors.SYN},
	})
	if got != want {
		t.Errorf("Rules = %s, want %s", got, want)
	}
}

// TestSetupErrors: door errors carry file:line, guest list errors both
// the door's line and the list's.
func TestSetupErrors(t *testing.T) {
	dir := t.TempDir()
	gl := filepath.Join(dir, "gl")
	os.WriteFile(gl, []byte("g s 22\n"), 0o644)
	conf := fmt.Sprintf(`[a]
	Type = doorman
	Guestlist = %s
	Firewall_Add = /bin/true
	Firewall_Del = /bin/true
	Hash_Archive = %s/h
[b]
	Type = doorman
	Guestlist = %s
	Firewall_Add = /bin/true
	Firewall_Del = /bin/true
	Hash_Archive = %s/h
	Port = 1001
`, gl, dir, gl, dir)
	kc, err := knockd.Parse("k.conf", []byte(conf))
	if err != nil {
		t.Fatal(err)
	}
	_, err = FromDoors(kc.Doors, func(d *knockd.Door) string { return d.Name }, SetupOptions{Resolver: resolver()})
	got := err.Error()
	for _, want := range []string{
		"k.conf:3: Guestlist: " + gl + " must be ", // owned by root, or readable only by root
		"k.conf:3: Guestlist: " + gl + ":2: unexpected end-of-file in guest list",
		"k.conf:13: Port: UDP port 1001 is already the knock port of door \"a\"",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("errors:\n%s\nmissing %q", got, want)
		}
	}
}

// TestPendingBound: the table of knocks waiting for a SYN is bounded; a
// knock past the bound still opens (the event is emitted) and its SYN is
// watched in place of the oldest knock's, and that is logged.
func TestPendingBound(t *testing.T) {
	h := newHarness(t, t.TempDir())
	h.det.pending = srctable.New[pending, struct{}](2, 0)
	h.takeLog()
	srcs := []netip.Addr{netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("10.0.0.3"), netip.MustParseAddr("10.0.0.4")}
	for i, src := range srcs {
		payload := string(doorman.Format(22, "martink", uint32(i), []byte("hushhush")))
		h.udp(time.Duration(i)*time.Millisecond, src, 1001, payload)
	}
	if n := len(h.takeEvents()); n != 3 {
		t.Errorf("%d knocks accepted, want 3", n)
	}
	if h.det.Pending() != 2 {
		t.Errorf("%d pending, want 2", h.det.Pending())
	}
	if !slices.Contains(h.takeLog(), "dm: error: 2 valid knocks are waiting for their SYN; stopped watching for the oldest to watch for 10.0.0.4's (1 times so far)") {
		t.Error("overflow not logged")
	}
	for _, src := range srcs {
		h.syn(time.Second, src, 50000, 22, detectors.SYN)
	}
	h.check("SYNs", nil, []string{"connect dm 10.0.0.3 port=22 sport=50000", "connect dm 10.0.0.4 port=22 sport=50000"})
}

// downStore is a shared store that cannot be reached: every Spend fails
// with actions.ErrUnavailable and knows nothing (Fresh false).
type downStore struct{ actions.Store }

func (s downStore) Tokens(sp actions.Space) (actions.Tokens, actions.SpaceInfo, error) {
	t, info, err := s.Store.Tokens(sp)
	return downTokens{t}, info, err
}

type downTokens struct{ actions.Tokens }

func (downTokens) Spend(time.Time, ...[]byte) (actions.Spent, error) {
	return actions.Spent{}, fmt.Errorf("redis: %w", actions.ErrUnavailable)
}

// TestTallyUnavailable: a valid knock refused because the shared hash
// archive cannot be reached is told as "state_unavailable", not as a
// replay (the metrics would show an attack that is an outage), and logs
// no replay or error line per knock (the store logged the outage once).
func TestTallyUnavailable(t *testing.T) {
	const valid = "22 martink 1519966632 4270a3248a23c209b37d35bb060e1cd6"
	h := newHarnessStore(t, t.TempDir(), downStore{filestore.New(filestore.Options{})})
	h.takeLog()
	h.udp(0, client, 1001, valid)
	if want := []string{"dm 1 state_unavailable"}; !slices.Equal(h.tally, want) {
		t.Errorf("told %q, want %q", h.tally, want)
	}
	for _, l := range h.takeLog() {
		if strings.Contains(l, "REPLAY") || strings.Contains(l, "unavailable") {
			t.Errorf("logged %q: the outage is the store's to log, once", l)
		}
	}
	if len(h.events) != 0 {
		t.Errorf("emitted %v: a knock nothing can remember must be refused", h.events)
	}
}
