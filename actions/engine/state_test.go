package engine

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/doorward/doorward/actions"
	"github.com/doorward/doorward/actions/journal"
)

// fakeStore records journal calls and can be made to fail.
type fakeStore struct {
	next  uint64
	open  map[uint64]journal.Entry
	calls []string
	fail  bool
}

func newFakeStore() *fakeStore { return &fakeStore{open: map[uint64]journal.Entry{}} }

func (s *fakeStore) OpenDoor(e journal.Entry) (journal.Entry, error) {
	if s.fail {
		return e, errors.New("disk full")
	}
	s.next++
	e.ID = s.next
	s.open[e.ID] = e
	s.calls = append(s.calls, fmt.Sprintf("open %d %s %s", e.ID, e.Addr, e.Stop))
	return e, nil
}

func (s *fakeStore) UpdateDoor(e journal.Entry) error {
	s.open[e.ID] = e
	s.calls = append(s.calls, fmt.Sprintf("update %d failures=%d", e.ID, e.Failures))
	return nil
}

func (s *fakeStore) CloseDoor(id uint64) error {
	delete(s.open, id)
	s.calls = append(s.calls, fmt.Sprintf("close %d", id))
	return nil
}

func ev(door, addr string, at time.Time) actions.Event {
	return actions.Event{Door: door, Addr: netip.MustParseAddr(addr), Time: at}
}

// TestSecondKnockExtends: a second knock for an open door keeps one
// firewall rule and pushes its closing back, instead of stacking rules.
func TestSecondKnockExtends(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		t0 := time.Now()
		r := &recorder{t0: t0}
		st := newFakeStore()
		e := New(r.run, st, nil)
		e.SetDoors(doors)
		ctx := context.Background()
		e.Open(ctx, ev("ssh", "10.0.0.1", t0))
		time.Sleep(6 * time.Second)
		e.Open(ctx, ev("ssh", "10.0.0.1", time.Now()))
		e.Advance(ctx, t0.Add(15*time.Second))
		if e.Pending() != 1 {
			t.Fatalf("door closed at its first deadline after being extended")
		}
		time.Sleep(10 * time.Second)
		e.Advance(ctx, time.Now())
		want := []string{"0s open 10.0.0.1", "16s close 10.0.0.1"}
		if got := r.got(); !slices.Equal(got, want) {
			t.Errorf("commands %q, want %q", got, want)
		}
		wantCalls := []string{"open 1 10.0.0.1 close 10.0.0.1", "update 1 failures=0", "close 1"}
		if !slices.Equal(st.calls, wantCalls) {
			t.Errorf("journal %q, want %q", st.calls, wantCalls)
		}
	})
}

func TestCooldown(t *testing.T) {
	t0 := time.Unix(1_000_000, 0)
	var got []string
	e := New(func(_ context.Context, l string) (int, error) { got = append(got, l); return 0, nil }, nil, nil)
	e.SetDoors(map[string]Door{"ping": {Name: "ping", Start: [2]string{"hello %IP%", "hello %IP%"}, Cooldown: 30 * time.Second}})
	ctx := context.Background()
	for _, at := range []time.Duration{0, time.Second, 29 * time.Second, 30 * time.Second, 31 * time.Second} {
		e.Open(ctx, ev("ping", "10.0.0.1", t0.Add(at)))
	}
	e.Open(ctx, ev("ping", "10.0.0.2", t0.Add(time.Second))) // another address has its own cooldown
	// 10.0.0.1 opens at 0 s and again at 30 s, when its cooldown is over.
	want := []string{"hello 10.0.0.1", "hello 10.0.0.1", "hello 10.0.0.2"}
	if !slices.Equal(got, want) {
		t.Errorf("ran %q, want %q", got, want)
	}
}

// TestJournalFailureKeepsDoorShut: a door we could not record is a door we
// could not promise to close, so its start command must not run.
func TestJournalFailureKeepsDoorShut(t *testing.T) {
	var got []string
	st := newFakeStore()
	st.fail = true
	e := New(func(_ context.Context, l string) (int, error) { got = append(got, l); return 0, nil }, st, nil)
	e.SetDoors(doors)
	e.Open(context.Background(), ev("ssh", "10.0.0.1", time.Unix(0, 0)))
	if len(got) != 0 || e.Pending() != 0 {
		t.Errorf("ran %q with the journal failing", got)
	}
}

// TestStopRetries: a failing stop command is retried with backoff and stays
// in the journal until it succeeds.
func TestStopRetries(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		t0 := time.Now()
		fails := 3
		var ran []string
		st := newFakeStore()
		e := New(func(_ context.Context, l string) (int, error) {
			ran = append(ran, fmt.Sprintf("%v %s", time.Since(t0), l))
			if l == "close 10.0.0.1" && fails > 0 {
				fails--
				return 1, nil
			}
			return 0, nil
		}, st, nil)
		e.SetDoors(doors)
		ctx, cancel := context.WithCancel(context.Background())
		events := make(chan actions.Event)
		done := make(chan struct{})
		go func() { e.Run(ctx, events, nil); close(done) }()
		events <- ev("ssh", "10.0.0.1", t0)
		time.Sleep(time.Minute)
		cancel()
		<-done
		want := []string{"0s open 10.0.0.1", "10s close 10.0.0.1", "11s close 10.0.0.1", "13s close 10.0.0.1", "17s close 10.0.0.1"}
		if !slices.Equal(ran, want) {
			t.Errorf("ran %q, want %q", ran, want)
		}
		if len(st.open) != 0 {
			t.Errorf("journal still has %v", st.open)
		}
	})
}

// TestRecover: doors a crashed run left in the journal are closed first.
func TestRecover(t *testing.T) {
	var ran []string
	st := newFakeStore()
	e := New(func(_ context.Context, l string) (int, error) {
		ran = append(ran, l)
		if l == "broken" {
			return 2, nil
		}
		return 0, nil
	}, st, nil)
	left := []journal.Entry{
		{ID: 7, Door: "ssh", Name: "openSSH", Addr: "10.0.0.5", Stop: "close 10.0.0.5"},
		{ID: 8, Door: "ssh", Name: "openSSH", Addr: "10.0.0.6", Stop: "broken"},
	}
	now := time.Unix(5000, 0)
	e.Recover(context.Background(), left, now)
	if want := []string{"close 10.0.0.5", "broken"}; !slices.Equal(ran, want) {
		t.Errorf("ran %q, want %q", ran, want)
	}
	if want := []string{"close 7", "update 8 failures=1"}; !slices.Equal(st.calls, want) {
		t.Errorf("journal %q, want %q", st.calls, want)
	}
	if next, ok := e.Next(); !ok || !next.Equal(now.Add(time.Second)) {
		t.Errorf("failed recovery not retried in 1s: %v %v", next, ok)
	}
}

func (s *fakeStore) OpenDoors() []journal.Entry {
	var out []journal.Entry
	for _, e := range s.open {
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b journal.Entry) int { return cmp.Compare(a.ID, b.ID) })
	return out
}
