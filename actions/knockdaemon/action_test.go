package knockdaemon

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/doorward/doorward/actions"
	"github.com/doorward/doorward/actions/filestore"
	"github.com/doorward/doorward/actions/journal"
	"github.com/doorward/doorward/actions/state"
)

const openClose = spanDoor + `
[open]
	Type = action
	Condition = ! state(IP,uniqueval,FLAG0)
	State = state(IP,uniqueval,FLAG0)++
	System = open IP
[close]
	Type = action
	Condition = ! state(IP,uniqueval,FLAG0)
	Delay = 30
	System = close IP
`

func knockEv(ip string, flag0 int, at time.Time) actions.Event {
	a := netip.MustParseAddr(ip)
	r := &actions.Record{Has: actions.HasIP | actions.HasPort | actions.HasFlag(0) | actions.HasChecksum, IP: a, Port: 22, Checksum: 1}
	r.Flags[0] = uint8(flag0)
	return actions.Event{Kind: actions.Knock, Door: "ssh", Addr: a, Time: at, Sender: a, Record: r}
}

// recorder is a Runner that records what ran, safe across goroutines.
type recorder struct {
	mu   sync.Mutex
	ran  []string
	t0   time.Time
	gate chan struct{} // if set, every command waits for it
}

func (r *recorder) run(_ context.Context, line string) (int, error) {
	if r.gate != nil {
		<-r.gate
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ran = append(r.ran, fmt.Sprintf("%v %s", time.Since(r.t0).Round(time.Second), line))
	return 0, nil
}

func (r *recorder) got() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.ran)
}

// TestLive drives the action as the daemon's live runner does: commands
// run on worker goroutines, Handle does not wait for them, Advance runs
// delayed commands at real time, Close waits for everything.
func TestLive(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		t0 := time.Now()
		r := &recorder{t0: t0}
		a, err := New(parseConf(t, openClose), Options{Run: r.run})
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		a.Handle(ctx, knockEv("10.1.1.1", 1, time.Now()))
		a.Handle(ctx, knockEv("10.1.1.1", 1, time.Now())) // replayed: nothing
		synctest.Wait()
		for time.Since(t0) < 40*time.Second {
			time.Sleep(time.Second)
			a.Advance(ctx, time.Now())
			synctest.Wait()
		}
		a.Close(ctx)
		want := []string{"0s open 10.1.1.1", "30s close 10.1.1.1"}
		if got := r.got(); !slices.Equal(got, want) {
			t.Errorf("ran %q, want %q", got, want)
		}
	})
}

// TestLiveBounded: with MaxInFlight commands stuck, further knocks are
// dropped before they change any state, and Close waits for the stuck ones.
func TestLiveBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := &recorder{t0: time.Now(), gate: make(chan struct{})}
		var logs []string
		var mu sync.Mutex
		logf := func(f string, args ...any) {
			mu.Lock()
			defer mu.Unlock()
			logs = append(logs, fmt.Sprintf(f, args...))
		}
		st, _ := state.Open("", state.Options{})
		ts := &tallies{}
		a, err := New(parseConf(t, openClose), Options{Run: r.run, Logf: logf, State: filestore.StateCache(st), Tally: ts.tally})
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		for i := range MaxInFlight + 3 {
			a.Handle(ctx, knockEv("10.1.1.1", i+1, time.Now()))
		}
		synctest.Wait()
		if st.Len() != MaxInFlight {
			t.Errorf("%d knocks changed state, want %d", st.Len(), MaxInFlight)
		}
		mu.Lock()
		dropped := slices.ContainsFunc(logs, func(l string) bool { return strings.Contains(l, "too many commands running, dropped 2 knocks") })
		mu.Unlock()
		if !dropped {
			t.Errorf("no drop logged: %q", logs)
		}
		if acc, ref := ts.count("ssh 0 "), ts.count("ssh 1 too_many_commands"); acc != MaxInFlight || ref != 3 {
			t.Errorf("told %d accepted and %d too_many_commands, want %d and 3", acc, ref, MaxInFlight)
		}
		close(r.gate)
		a.Close(ctx)
		// Close ran the MaxInFlight delayed closes early.
		if got := len(r.got()); got != 2*MaxInFlight {
			t.Errorf("%d commands ran, want %d", got, 2*MaxInFlight)
		}
	})
}

// failingJournal fails Open after n successes.
type failingJournal struct {
	n      int
	open   map[uint64]journal.Entry
	nextID uint64
}

func (j *failingJournal) OpenDoor(e journal.Entry) (journal.Entry, error) {
	if j.n == 0 {
		return e, errors.New("disk full")
	}
	j.n--
	j.nextID++
	e.ID = j.nextID
	j.open[e.ID] = e
	return e, nil
}
func (j *failingJournal) UpdateDoor(journal.Entry) error { return nil }
func (j *failingJournal) CloseDoor(id uint64) error      { delete(j.open, id); return nil }

// TestJournalFailure: when a delayed command cannot be journaled, no
// command of the knock runs, and the delayed commands journaled before it
// are withdrawn.
func TestJournalFailure(t *testing.T) {
	conf := spanDoor + `
[open]
	Type = action
	System = open IP
[close]
	Type = action
	Delay = 30
	System = close IP
	System = log IP
`
	r := &recorder{t0: time.Now()}
	jr := &failingJournal{n: 1, open: map[uint64]journal.Entry{}}
	var logs []string
	a, err := New(parseConf(t, conf), Options{Run: r.run, Journal: jr, Replay: true,
		Logf: func(f string, args ...any) { logs = append(logs, fmt.Sprintf(f, args...)) }})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	a.Handle(ctx, knockEv("10.1.1.1", 1, r.t0))
	a.Close(ctx)
	if got := r.got(); len(got) != 0 {
		t.Errorf("commands ran: %q", got)
	}
	if len(jr.open) != 0 || a.Pending() != 0 {
		t.Errorf("journal entries left: %v, pending %d", jr.open, a.Pending())
	}
	want := "10.1.1.1: ssh: action close: cannot record the delayed command in the journal, not running this knock's commands: disk full"
	if !slices.Contains(logs, want) {
		t.Errorf("logs %q lack %q", logs, want)
	}
}

// TestStateFlushFailure: when the state cannot be saved, the knock's
// commands do not run (a one-time knock must not be honoured twice).
func TestStateFlushFailure(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cache")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	st, err := state.Open(filepath.Join(dir, "state.json"), state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	r := &recorder{t0: time.Now()}
	var logs []string
	a, err := New(parseConf(t, openClose), Options{Run: r.run, State: filestore.StateCache(st), Replay: true,
		Logf: func(f string, args ...any) { logs = append(logs, fmt.Sprintf(f, args...)) }})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(dir); err != nil { // the cache's directory goes away
		t.Fatal(err)
	}
	ctx := context.Background()
	a.Handle(ctx, knockEv("10.1.1.1", 1, r.t0))
	if got := r.got(); len(got) != 0 || a.Pending() != 0 {
		t.Errorf("commands ran: %q, pending %d", got, a.Pending())
	}
	if !slices.ContainsFunc(logs, func(l string) bool {
		return strings.HasPrefix(l, "10.1.1.1: ssh: could not save the state, not running this knock's commands: state cache")
	}) {
		t.Errorf("logs %q", logs)
	}
	a.Close(ctx)
}

// TestReconfigure: a bad config keeps the running actions; a good one
// replaces them; a delayed command keeps what it was rendered with.
func TestReconfigure(t *testing.T) {
	r := &recorder{t0: time.Now()}
	a, err := New(parseConf(t, openClose), Options{Run: r.run, Replay: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	a.Handle(ctx, knockEv("10.1.1.1", 1, r.t0))
	if err := a.Reconfigure(parseConf(t, spanDoor+"[x]\n\tType = action\n\tCondition = (\n\tSystem = y\n")); err == nil {
		t.Fatal("bad config accepted")
	}
	a.Handle(ctx, knockEv("10.1.1.1", 2, r.t0))
	if err := a.Reconfigure(parseConf(t, spanDoor+"[x]\n\tType = action\n\tSystem = new IP FLAG0\n")); err != nil {
		t.Fatal(err)
	}
	a.Handle(ctx, knockEv("10.1.1.1", 3, r.t0))
	a.Advance(ctx, r.t0.Add(time.Minute))
	a.Close(ctx)
	want := []string{"0s open 10.1.1.1", "0s open 10.1.1.1", "0s new 10.1.1.1 3", "0s close 10.1.1.1", "0s close 10.1.1.1"}
	if got := r.got(); !slices.Equal(got, want) {
		t.Errorf("ran %q, want %q", got, want)
	}
}

// TestPendingBound: a knock that would queue more delayed commands than
// MaxPending is refused before it changes state.
func TestPendingBound(t *testing.T) {
	r := &recorder{t0: time.Now()}
	st, _ := state.Open("", state.Options{})
	ts := &tallies{}
	a, err := New(parseConf(t, openClose), Options{Run: r.run, Replay: true, State: filestore.StateCache(st), Tally: ts.tally})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// FLAG0 is one byte: the knocks differ in their address.
	for i := range MaxPending + 1 {
		a.Handle(ctx, knockEv(fmt.Sprintf("10.1.%d.%d", i>>8, i&0xff), 1, r.t0))
	}
	if a.Pending() != MaxPending || st.Len() != MaxPending {
		t.Errorf("pending %d, state %d, want %d", a.Pending(), st.Len(), MaxPending)
	}
	if n := ts.count("ssh 1 too_many_delayed"); n != 1 {
		t.Errorf("told too_many_delayed %d times, want 1", n)
	}
}

func TestOtherEventsIgnored(t *testing.T) {
	r := &recorder{t0: time.Now()}
	a, err := New(parseConf(t, openClose), Options{Run: r.run, Replay: true})
	if err != nil {
		t.Fatal(err)
	}
	ev := knockEv("10.1.1.1", 1, r.t0)
	ev.Kind = actions.Connect
	a.Handle(context.Background(), ev)
	ev = knockEv("10.1.1.1", 1, r.t0)
	ev.Door = "gone"
	a.Handle(context.Background(), ev)
	if len(r.got()) != 0 {
		t.Errorf("ran %q", r.got())
	}
}

// TestKnockFloodLogLines: 5,000 knocks in a second (a leaked key, or
// forged knocks) cause at most the limiter's burst of lines, plus one
// counting the rest, whatever the actions log per knock.
func TestKnockFloodLogLines(t *testing.T) {
	var lines []string
	a, err := New(parseConf(t, openClose), Options{Replay: true, Run: func(context.Context, string) (int, error) { return 0, nil },
		Logf: func(f string, args ...any) { lines = append(lines, fmt.Sprintf(f, args...)) }})
	if err != nil {
		t.Fatal(err)
	}
	lines = nil // the config's own lines
	t0 := time.Unix(1000, 0)
	const n = 5000
	for i := range n {
		a.Handle(context.Background(), knockEv(fmt.Sprintf("10.3.%d.%d", i>>8, i&255), 1, t0.Add(time.Duration(i)*time.Second/n)))
	}
	a.Advance(context.Background(), t0.Add(2*time.Second))
	if max := DefaultLogBurst + 2*2*DefaultLogRate; len(lines) > max {
		t.Fatalf("%d lines for %d knocks, want at most %d", len(lines), n, max)
	}
	if !slices.ContainsFunc(lines, func(l string) bool { return strings.Contains(l, "similar lines suppressed") }) {
		t.Errorf("no count of the lines left out")
	}
}

func (j *failingJournal) OpenDoors() []journal.Entry {
	var out []journal.Entry
	for _, e := range j.open {
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b journal.Entry) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// tallies records what an Action tells actions.Tally, safe across
// goroutines.
type tallies struct {
	mu   sync.Mutex
	told []string
}

func (ts *tallies) tally(door string, o actions.Outcome, reason string) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	ts.told = append(ts.told, fmt.Sprintf("%s %d %s", door, o, reason))
}

// count is how many times line was told.
func (ts *tallies) count(line string) int {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	n := 0
	for _, l := range ts.told {
		if l == line {
			n++
		}
	}
	return n
}

// TestTally: what the action tells actions.Tally of each knock: accepted
// when its commands are set in motion, refused with the reason they are
// not.
func TestTally(t *testing.T) {
	delayed := spanDoor + `
[open]
	Type = action
	System = open IP
[close]
	Type = action
	Delay = 30
	System = close IP
`
	for _, tc := range []struct {
		name  string
		conf  string
		setup func(t *testing.T, o *Options)
		flags []int // FLAG0 of each knock from 10.1.1.1
		want  []string
	}{
		{"accepted, then no action chooses the same knock", openClose, nil, []int{1, 1}, []string{"ssh 0 ", "ssh 1 condition_false"}},
		{"a delayed command cannot be journaled", delayed, func(_ *testing.T, o *Options) {
			o.Journal = &failingJournal{open: map[uint64]journal.Entry{}}
		}, []int{1}, []string{"ssh 1 journal_error"}},
		{"the state cannot be saved", openClose, func(t *testing.T, o *Options) {
			dir := filepath.Join(t.TempDir(), "cache")
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			st, err := state.Open(filepath.Join(dir, "state.json"), state.Options{})
			if err != nil {
				t.Fatal(err)
			}
			o.State = filestore.StateCache(st)
			if err := os.RemoveAll(dir); err != nil {
				t.Fatal(err)
			}
		}, []int{1}, []string{"ssh 1 state_error"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := &tallies{}
			o := Options{Run: (&recorder{}).run, Replay: true, Tally: ts.tally}
			if tc.setup != nil {
				tc.setup(t, &o)
			}
			a, err := New(parseConf(t, tc.conf), o)
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range tc.flags {
				a.Handle(context.Background(), knockEv("10.1.1.1", f, time.Now()))
			}
			a.Close(context.Background())
			if !slices.Equal(ts.told, tc.want) {
				t.Errorf("told %q, want %q", ts.told, tc.want)
			}
		})
	}
}
