package doorman

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/doorward/doorward/actions"
	"github.com/doorward/doorward/actions/journal"
)

var (
	client = netip.MustParseAddr("10.0.0.2")
	server = netip.MustParseAddr("10.0.0.1")
)

// world fakes everything the Action touches: the scripts (answers by
// substring of the line), the socket table, the journal, and the clock
// (synctest's).
type world struct {
	t       *testing.T
	start   time.Time
	calls   []string
	answers map[string][]string // substring → answers, consumed in order; the last one repeats
	mu      sync.Mutex          // socks is changed by the test while the Action runs
	socks   map[Conn]Socket
	open    map[uint64]journal.Entry
	nextID  uint64
	log     []string
	jerr    error
}

func newWorld(t *testing.T) *world {
	return &world{t: t, start: time.Now(), answers: map[string][]string{}, socks: map[Conn]Socket{}, open: map[uint64]journal.Entry{}}
}

func (w *world) script(ctx context.Context, line string) (string, bool, error) {
	w.calls = append(w.calls, fmt.Sprintf("+%v %s", time.Since(w.start), line))
	for sub, ans := range w.answers {
		if strings.Contains(line, sub) {
			a := ans[0]
			if len(ans) > 1 {
				w.answers[sub] = ans[1:]
			}
			if a == "<none>" {
				return "", false, nil
			}
			return a, true, nil
		}
	}
	return "0", true, nil
}

func (w *world) setSock(c Conn, s *Socket) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if s == nil {
		delete(w.socks, c)
		return
	}
	w.socks[c] = *s
}

func (w *world) Lookup(conns []Conn) (map[Conn]Socket, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := map[Conn]Socket{}
	for _, c := range conns {
		if s, ok := w.socks[c]; ok {
			out[c] = s
		}
	}
	return out, nil
}

func (w *world) Owner(inode uint64) (string, int, bool) { return "sshd", int(inode), inode != 0 }

func (w *world) OpenDoor(e journal.Entry) (journal.Entry, error) {
	if w.jerr != nil {
		return journal.Entry{}, w.jerr
	}
	w.nextID++
	e.ID = w.nextID
	w.open[e.ID] = e
	return e, nil
}

func (w *world) UpdateDoor(e journal.Entry) error { w.open[e.ID] = e; return nil }

func (w *world) CloseDoor(id uint64) error {
	if _, ok := w.open[id]; !ok {
		w.t.Errorf("journal: close of %d, not open", id)
	}
	delete(w.open, id)
	return nil
}

func (w *world) logf(format string, args ...any) {
	w.log = append(w.log, fmt.Sprintf("+%v ", time.Since(w.start))+fmt.Sprintf(format, args...))
}

// journaled lists the delete lines still recorded.
func (w *world) journaled() []string {
	var out []string
	for _, e := range w.open {
		out = append(out, e.Stop)
	}
	slices.Sort(out)
	return out
}

var door = Door{
	Key: "ssh", Name: "ssh", Add: "/fw/add", Del: "/fw/del", Interface: "eth0",
	Waitfor: 10 * time.Second, Delay1: 500 * time.Millisecond, Delay2: 5 * time.Second, LogLevel: 7,
}

// run drives an Action as the daemon's runner does: events, and Advance
// at Next (at least every second), until ctx ends; then Close.
func (w *world) run(ctx context.Context, a *Action, events <-chan actions.Event) {
	for {
		d := time.Second
		if next, ok := a.Next(); ok {
			d = min(d, max(time.Until(next), 0))
		}
		timer := time.NewTimer(d)
		select {
		case ev := <-events:
			a.Handle(context.Background(), ev)
		case now := <-timer.C:
			a.Advance(context.Background(), now)
		case <-ctx.Done():
			timer.Stop()
			a.Close(context.Background())
			return
		}
		timer.Stop()
	}
}

func knockEv(port uint16) actions.Event {
	return actions.Event{Kind: actions.Knock, Door: "ssh", Addr: client, Port: port, Time: time.Now(),
		Sender: client, Guest: "martink", Dst: server}
}

func synEv(port, sport uint16) actions.Event {
	return actions.Event{Kind: actions.Connect, Door: "ssh", Addr: client, Port: port, SrcPort: sport, Time: time.Now()}
}

// scenario runs steps in a synctest bubble against a live-mode Action
// and returns the world afterwards.
func scenario(t *testing.T, setup func(w *world), steps func(w *world, send func(actions.Event))) *world {
	var w *world
	synctest.Test(t, func(t *testing.T) {
		w = newWorld(t)
		if setup != nil {
			setup(w)
		}
		a := New([]Door{door}, Options{Script: w.script, Sockets: w, Store: w, Logf: w.logf, Now: time.Now})
		events := make(chan actions.Event)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); w.run(ctx, a, events) }()
		steps(w, func(ev actions.Event) { events <- ev; synctest.Wait() })
		cancel()
		<-done
	})
	return w
}

func check(t *testing.T, what string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s:\n%s\nwant:\n%s", what, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

const (
	broadArgs  = " eth0 10.0.0.2 0 10.0.0.1 22"
	narrowArgs = " eth0 10.0.0.2 50000 10.0.0.1 22"
)

// TestLifecycle: knock, SYN at 1 s, connection established at 1.15 s (the
// check at 1.2 s sees it) and closed at 7.15 s (the check at 11.2 s sees
// that); each rule added once and deleted once, in doormand's
// order, and nothing left in the journal.
func TestLifecycle(t *testing.T) {
	conn := Conn{Local: netip.AddrPortFrom(server, 22), Remote: netip.AddrPortFrom(client, 50000)}
	w := scenario(t, nil, func(w *world, send func(actions.Event)) {
		send(knockEv(22))
		time.Sleep(time.Second)
		send(synEv(22, 50000))
		time.Sleep(150 * time.Millisecond) // the check at +1.2s sees it
		w.setSock(conn, &Socket{Established: true, Inode: 4242})
		time.Sleep(6 * time.Second)
		w.setSock(conn, nil)
		time.Sleep(10 * time.Second)
	})
	check(t, "scripts", w.calls, []string{
		"+0s /fw/add" + broadArgs,
		"+1s /fw/add" + narrowArgs,
		"+1s /fw/del" + broadArgs,
		"+11.2s /fw/del" + narrowArgs,
	})
	check(t, "log", w.log, []string{
		"+0s ssh: debug: run script: '/fw/add" + broadArgs + "'",
		"+0s ssh: debug: output from script: '0'",
		"+1s ssh: debug: Initial SYN packet detected, martink@10.0.0.2:50000 -> 22",
		"+1s ssh: debug: run script: '/fw/add" + narrowArgs + "'",
		"+1s ssh: debug: output from script: '0'",
		"+1s ssh: debug: run script: '/fw/del" + broadArgs + "'",
		"+1s ssh: debug: output from script: '0'",
		"+1.2s ssh: info: connection established,  martink@10.0.0.2:50000 -> sshd(pid 4242)",
		"+11.2s ssh: info: sshd(pid 4242) (martink@10.0.0.2:50000) has stopped running.",
		"+11.2s ssh: debug: run script: '/fw/del" + narrowArgs + "'",
		"+11.2s ssh: debug: output from script: '0'",
	})
	check(t, "journal", w.journaled(), nil)
}

// TestJournalForStatus: each rule is journaled with the knocked port and
// when it was added, which knockd --status shows.
func TestJournalForStatus(t *testing.T) {
	var rules []journal.Entry
	scenario(t, nil, func(w *world, send func(actions.Event)) {
		send(knockEv(22))
		time.Sleep(2 * time.Second)
		send(synEv(22, 50000))
		rules = w.OpenDoors()
	})
	if len(rules) != 1 {
		t.Fatalf("journaled %+v, want the narrow rule", rules)
	}
	// The narrow rule: added at the SYN, +2 s in the bubble's clock.
	if e := rules[0]; e.Port != 22 || !e.Opened.Equal(synctestEpoch.Add(2*time.Second)) {
		t.Errorf("narrow rule journaled with port %d, opened %v", e.Port, e.Opened)
	}
}

// synctestEpoch is the time a synctest bubble starts at.
var synctestEpoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// TestSYNTimeout: no SYN within Waitfor: the broad rule goes.
func TestSYNTimeout(t *testing.T) {
	w := scenario(t, nil, func(w *world, send func(actions.Event)) {
		send(knockEv(22))
		time.Sleep(4 * time.Second)
		send(knockEv(22)) // again: one rule, waited for from now
		time.Sleep(20 * time.Second)
		send(synEv(22, 50000)) // too late: ignored
	})
	check(t, "scripts", w.calls, []string{"+0s /fw/add" + broadArgs, "+14s /fw/del" + broadArgs})
	if !slices.ContainsFunc(w.log, func(l string) bool { return l == "+14s ssh: warn: Timed out waiting for SYN packet. Exiting." }) {
		t.Errorf("no timeout line in\n%s", strings.Join(w.log, "\n"))
	}
	check(t, "journal", w.journaled(), nil)
}

// TestSecondGuest: a second guest knocks from the same address for the
// same port while the first one's broad rule waits. One rule, as before,
// but the lines name the guest who knocked: the second knock is logged
// under its own name, and the SYN it is now waited for under it too
// (issue 12: both were logged under the first guest's name).
func TestSecondGuest(t *testing.T) {
	w := scenario(t, nil, func(w *world, send func(actions.Event)) {
		send(knockEv(22))
		time.Sleep(time.Second)
		ev := knockEv(22)
		ev.Guest = "jbward"
		send(ev)
		send(synEv(22, 50000))
		time.Sleep(time.Second)
	})
	check(t, "scripts", w.calls, []string{
		"+0s /fw/add" + broadArgs, "+1s /fw/add" + narrowArgs, "+1s /fw/del" + broadArgs, "+1.5s /fw/del" + narrowArgs,
	})
	for _, want := range []string{
		"+1s ssh: debug: jbward@10.0.0.2 knocked for port 22 while the rule added for martink waits; one rule, now waiting for jbward's SYN",
		"+1s ssh: debug: Initial SYN packet detected, jbward@10.0.0.2:50000 -> 22",
		"+1.5s ssh: warn: connection attempt time-out,  jbward@10.0.0.2 -> 22",
	} {
		if !slices.Contains(w.log, want) {
			t.Errorf("no line %q in\n%s", want, strings.Join(w.log, "\n"))
		}
	}
	check(t, "journal", w.journaled(), nil)
}

// TestNeverEstablished: the SYN came but the handshake did not complete
// within Connection_Delay_1: six checks (0 … 500 ms), then the narrow rule
// goes.
func TestNeverEstablished(t *testing.T) {
	w := scenario(t, nil, func(w *world, send func(actions.Event)) {
		send(knockEv(22))
		send(synEv(22, 50000))
		time.Sleep(2 * time.Second)
	})
	check(t, "scripts", w.calls, []string{
		"+0s /fw/add" + broadArgs, "+0s /fw/add" + narrowArgs, "+0s /fw/del" + broadArgs, "+500ms /fw/del" + narrowArgs,
	})
	if !slices.Contains(w.log, "+500ms ssh: warn: connection attempt time-out,  martink@10.0.0.2 -> 22") {
		t.Errorf("no time-out line in\n%s", strings.Join(w.log, "\n"))
	}
	check(t, "journal", w.journaled(), nil)
}

// TestFailures: every way a script can fail, and what is cleaned up.
func TestFailures(t *testing.T) {
	tests := []struct {
		name    string
		answers map[string][]string
		jerr    error
		calls   []string
		logHas  []string
	}{
		{
			name:    "broad add fatal",
			answers: map[string][]string{"/fw/add": {"-1 3 iptables: Bad rule"}},
			calls:   []string{"+0s /fw/add" + broadArgs, "+0s /fw/del" + broadArgs},
			logHas: []string{
				`+0s ssh: error: script'/fw/add` + broadArgs + `' returned "-1 3 iptables: Bad rule"; Exiting.`,
				"+0s ssh: warn: removing the firewall rules added for martink@10.0.0.2 -> 22",
			},
		},
		{
			name:    "broad add with a warning goes on",
			answers: map[string][]string{"/fw/add" + broadArgs: {"17 4 rule exists"}},
			calls:   []string{"+0s /fw/add" + broadArgs, "+0s /fw/add" + narrowArgs, "+0s /fw/del" + broadArgs, "+500ms /fw/del" + narrowArgs},
			logHas:  []string{`+0s ssh: warn: script'/fw/add` + broadArgs + `' returned "17 4 rule exists"; Exiting.`},
		},
		{
			name:    "no output",
			answers: map[string][]string{"/fw/add": {"<none>"}},
			calls:   []string{"+0s /fw/add" + broadArgs, "+0s /fw/del" + broadArgs},
			logHas:  []string{"+0s ssh: emerg: Bad (or no) output from script /fw/add" + broadArgs},
		},
		{
			name:    "one field",
			answers: map[string][]string{"/fw/add": {"oops"}},
			calls:   []string{"+0s /fw/add" + broadArgs, "+0s /fw/del" + broadArgs},
			logHas:  []string{`+0s ssh: emerg: Bad output from script /fw/add` + broadArgs + ` : "oops"`},
		},
		{
			name:    "narrow add fatal: broad deleted too",
			answers: map[string][]string{"/fw/add" + narrowArgs: {"-1 2 no"}},
			calls:   []string{"+0s /fw/add" + broadArgs, "+0s /fw/add" + narrowArgs, "+0s /fw/del" + narrowArgs, "+0s /fw/del" + broadArgs},
		},
		{
			name:    "broad delete fails: retried with backoff",
			answers: map[string][]string{"/fw/del" + broadArgs: {"-1 3 busy", "-1 3 busy", "0"}},
			calls: []string{"+0s /fw/add" + broadArgs, "+0s /fw/add" + narrowArgs, "+0s /fw/del" + broadArgs,
				"+500ms /fw/del" + narrowArgs, "+1s /fw/del" + broadArgs, "+3s /fw/del" + broadArgs},
			logHas: []string{"+1s ssh: warn: firewall rule" + broadArgs + " could not be deleted (2 times); retrying in 2s"},
		},
		{
			name:  "journal cannot be written: nothing added",
			jerr:  errors.New("disk full"),
			calls: nil,
			logHas: []string{
				"+0s ssh: error: cannot record the rule in the journal, not adding it: disk full",
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := scenario(t, func(w *world) {
				for k, v := range tc.answers {
					w.answers[k] = v
				}
				w.jerr = tc.jerr
			}, func(w *world, send func(actions.Event)) {
				send(knockEv(22))
				send(synEv(22, 50000))
				time.Sleep(30 * time.Second)
			})
			check(t, "scripts", w.calls, tc.calls)
			for _, l := range tc.logHas {
				if !slices.Contains(w.log, l) {
					t.Errorf("log lacks %q:\n%s", l, strings.Join(w.log, "\n"))
				}
			}
			check(t, "journal", w.journaled(), nil)
		})
	}
}

// TestClose: SIGTERM deletes every rule; one that cannot be deleted stays
// in the journal for the next start.
func TestClose(t *testing.T) {
	conn := Conn{Local: netip.AddrPortFrom(server, 22), Remote: netip.AddrPortFrom(client, 50000)}
	w := scenario(t, func(w *world) {
		w.answers["/fw/del eth0 10.0.0.2 0 10.0.0.1 23"] = []string{"-1 3 stuck"}
	}, func(w *world, send func(actions.Event)) {
		w.setSock(conn, &Socket{Established: true, Inode: 7})
		send(knockEv(22))
		send(synEv(22, 50000))
		send(knockEv(23)) // waits for its SYN when the daemon stops
		time.Sleep(2 * time.Second)
	})
	check(t, "scripts", w.calls, []string{
		"+0s /fw/add" + broadArgs, "+0s /fw/add" + narrowArgs, "+0s /fw/del" + broadArgs,
		"+0s /fw/add eth0 10.0.0.2 0 10.0.0.1 23",
		"+2s /fw/del" + narrowArgs, "+2s /fw/del eth0 10.0.0.2 0 10.0.0.1 23",
	})
	if !slices.Contains(w.log, "+2s ssh: warn: Quitting because the daemon is shutting down. Connection: 'sshd(pid 7) (martink@10.0.0.2:50000)' is cut off.") {
		t.Errorf("no cut-off line:\n%s", strings.Join(w.log, "\n"))
	}
	check(t, "journal", w.journaled(), []string{"/fw/del eth0 10.0.0.2 0 10.0.0.1 23"})
}

// TestReplayMode: no socket table and the events' clock: the narrow rule
// is deleted as soon as it is in place.
func TestReplayMode(t *testing.T) {
	w := newWorld(t)
	a := New([]Door{door}, Options{Script: w.script, Logf: w.logf})
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ctx := context.Background()
	ev := knockEv(22)
	ev.Time = t0
	a.Handle(ctx, ev)
	syn := synEv(22, 50000)
	syn.Time = t0.Add(time.Second)
	a.Handle(ctx, syn)
	ev.Time = t0.Add(2 * time.Second) // a second knock, never followed by a SYN
	a.Handle(ctx, ev)
	next, ok := a.Next()
	if !ok || !next.Equal(t0.Add(12*time.Second)) {
		t.Errorf("Next = %v, %v; want Waitfor after the second knock", next, ok)
	}
	a.Advance(ctx, next)
	var lines []string
	for _, c := range w.calls {
		_, l, _ := strings.Cut(c, " ")
		lines = append(lines, l)
	}
	check(t, "scripts", lines, []string{"/fw/add" + broadArgs, "/fw/add" + narrowArgs, "/fw/del" + broadArgs, "/fw/del" + narrowArgs,
		"/fw/add" + broadArgs, "/fw/del" + broadArgs})
	if k, r := a.Open(); k != 0 || r != 0 {
		t.Errorf("open %d, %d", k, r)
	}
}

// TestInterface: $1 is the door's Interface, else the interface holding
// the knocked address, else "any"; a name unfit for a shell line is not
// used.
func TestInterface(t *testing.T) {
	for _, tc := range []struct {
		door, found, want string
	}{{"eth0", "x", "eth0"}, {"", "veth1", "veth1"}, {"", "", "any"}, {"", "a;b", "any"}} {
		d := door
		d.Interface = tc.door
		a := New([]Door{d}, Options{IfaceOf: func(netip.Addr) string { return tc.found }})
		if got := a.iface(d, server); got != tc.want {
			t.Errorf("iface(%q, found %q) = %q, want %q", tc.door, tc.found, got, tc.want)
		}
	}
}

func TestInterpret(t *testing.T) {
	for _, tc := range []struct {
		line string
		got  bool
		want Outcome
	}{
		{"0", true, Outcome{OK: true, Line: "0"}},
		{"0 ok", true, Outcome{OK: true, Line: "0 ok"}},
		{"01", true, Outcome{OK: true, Line: "01"}},
		{"-1 3 iptables: No chain", true, Outcome{Fatal: true, Level: 3, Line: "-1 3 iptables: No chain"}},
		{"2\t4\tno such rule", true, Outcome{Level: 4, Line: "2\t4\tno such rule"}},
		{"1 7", true, Outcome{Level: 7, Line: "1 7"}},
		{"1 9", true, Outcome{Level: 1, Line: "1 9"}},
		{"1 -1", true, Outcome{Fatal: true, Level: 7, Line: "1 -1"}},
		{"1 x", true, Outcome{Fatal: true, Level: 0, Line: "1 x"}},
		{"oops", true, Outcome{Fatal: true, Bad: true, Line: "oops"}},
		{"", true, Outcome{Fatal: true, Bad: true}},
		{"", false, Outcome{Fatal: true, Bad: true}},
		{" 0", true, Outcome{Fatal: true, Bad: true, Line: " 0"}},
	} {
		if got := Interpret(tc.line, tc.got); got != tc.want {
			t.Errorf("Interpret(%q, %v) = %+v, want %+v", tc.line, tc.got, got, tc.want)
		}
	}
}

func TestShell(t *testing.T) {
	sh := Shell(2 * time.Second)
	ctx := context.Background()
	for _, tc := range []struct {
		line  string
		first string
		got   bool
	}{
		{"echo 0; echo more", "0", true},
		{"echo '-1 3 failed'; exit 1", "-1 3 failed", true},
		{"true", "", false},
		{"printf 'no newline'", "no newline", true},
	} {
		first, got, err := sh(ctx, tc.line)
		if err != nil || first != tc.first || got != tc.got {
			t.Errorf("%q: %q, %v, %v", tc.line, first, got, err)
		}
	}
	start := time.Now()
	if _, _, err := Shell(200*time.Millisecond)(ctx, "sleep 10 | cat"); err == nil || time.Since(start) > 5*time.Second {
		t.Errorf("timeout: err %v after %v", err, time.Since(start))
	}
}

func (w *world) OpenDoors() []journal.Entry {
	var out []journal.Entry
	for _, e := range w.open {
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b journal.Entry) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// TestTally: what the action tells actions.Tally of each knock: accepted
// once the broad rule is in place (and again for a knock that prolongs
// the wait), refused with the reason the rule could not be added for. A
// SYN is no knock: nothing is told.
func TestTally(t *testing.T) {
	noDst := knockEv(22)
	noDst.Dst = netip.Addr{}
	for _, tc := range []struct {
		name   string
		setup  func(w *world, o *Options)
		events []actions.Event
		want   []string
	}{
		{"accepted, then the SYN", nil, []actions.Event{knockEv(22), synEv(22, 50000)}, []string{"ssh 0 "}},
		{"a second knock prolongs the wait", nil, []actions.Event{knockEv(22), knockEv(22)}, []string{"ssh 0 ", "ssh 0 "}},
		{"too many knocks in progress", func(_ *world, o *Options) { o.MaxOpen = 1 },
			[]actions.Event{knockEv(22), knockEv(23)}, []string{"ssh 0 ", "ssh 1 too_many_knocks"}},
		{"no IPv4 destination", nil, []actions.Event{noDst}, []string{"ssh 1 no_ipv4_destination"}},
		{"journal refuses the rule", func(w *world, _ *Options) { w.jerr = errors.New("disk full") },
			[]actions.Event{knockEv(22)}, []string{"ssh 1 journal_error"}},
		{"firewall-add fails", func(w *world, _ *Options) { w.answers["/fw/add"] = []string{"<none>"} },
			[]actions.Event{knockEv(22)}, []string{"ssh 1 script_failed"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			var told []string
			o := Options{Script: w.script, Store: w, Logf: w.logf, Tally: func(door string, oc actions.Outcome, reason string) {
				told = append(told, fmt.Sprintf("%s %d %s", door, oc, reason))
			}}
			if tc.setup != nil {
				tc.setup(w, &o)
			}
			a := New([]Door{door}, o)
			for _, ev := range tc.events {
				a.Handle(context.Background(), ev)
			}
			check(t, "told", told, tc.want)
		})
	}
}
