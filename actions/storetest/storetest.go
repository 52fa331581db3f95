// Package storetest is the conformance suite of the durable-state layer:
// what every actions.Store backend must do, whatever it keeps its state in.
// The embedded backend (actions/filestore) runs it in both its modes; a
// networked backend runs the same suite, so the protocols cannot tell one
// backend from another.
package storetest

import (
	"crypto/md5"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/doorward/doorward/actions"
)

// Backend is how the suite gets stores of the backend under test.
type Backend struct {
	// Open returns a store whose state lives under dir (a fresh t.TempDir
	// per test; a backend without files may ignore it or use it to name
	// its keys). Opening the same dir again after Close is a restart.
	Open func(t *testing.T, dir string) actions.Store
	// Close ends a store as a daemon's shutdown does; nil: nothing to do.
	Close func(s actions.Store)
	// Durable: state survives Close and Open on the same dir (a restart).
	Durable bool
}

// t0 is the suite's clock: stores take the knock's time, not the host's.
var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// Run runs the suite.
func Run(t *testing.T, b Backend) {
	for _, c := range []struct {
		name string
		run  func(t *testing.T, b Backend, dir string)
	}{
		{"SpendOnce", spendOnce},
		{"SpendSeveral", spendSeveral},
		{"SpendConcurrent", spendConcurrent},
		{"SharedSpace", sharedSpace},
		{"RingCapacity", ringCapacity},
		{"KeepWithinExpiry", keepWithinExpiry},
		{"OneTimeLines", oneTimeLines},
		{"Values", values},
		{"Counters", counters},
		{"CountersConcurrent", countersConcurrent},
		{"Doors", doors},
		{"Reopen", reopen},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.name == "Reopen" && !b.Durable {
				t.Skip("not a durable backend")
			}
			c.run(t, b, t.TempDir())
		})
	}
}

func open(t *testing.T, b Backend, dir string) actions.Store {
	t.Helper()
	s := b.Open(t, dir)
	if b.Close != nil {
		t.Cleanup(func() { b.Close(s) })
	}
	return s
}

// token is a 16-byte token, as the spent spaces keep them (digests).
func token(i int) []byte {
	d := md5.Sum(fmt.Appendf(nil, "token %d", i))
	return d[:]
}

// spaces are the digest spaces the suite exercises, by layout.
func spaces(dir string) []actions.Space {
	return []actions.Space{
		{Name: "test.spent", Layout: actions.Ring, Size: 64, Sync: true},
		{Name: filepath.Join(dir, "archive"), File: filepath.Join(dir, "archive"), Layout: actions.HashArchive, Size: 1000},
	}
}

func tokens(t *testing.T, s actions.Store, sp actions.Space) actions.Tokens {
	t.Helper()
	tok, _, err := s.Tokens(sp)
	if err != nil {
		t.Fatalf("Tokens(%s): %v", sp.Name, err)
	}
	t.Cleanup(func() { tok.Close() })
	return tok
}

func spend(t *testing.T, tok actions.Tokens, now time.Time, ts ...[]byte) actions.Spent {
	t.Helper()
	got, err := tok.Spend(now, ts...)
	if err != nil {
		t.Fatalf("Spend: %v", err)
	}
	return got
}

func spendOnce(t *testing.T, b Backend, dir string) {
	s := open(t, b, dir)
	for _, sp := range spaces(dir) {
		t.Run(sp.Name, func(t *testing.T) {
			tok := tokens(t, s, sp)
			if got := spend(t, tok, t0, token(1)); !got.Fresh {
				t.Fatalf("first spend: %+v, want fresh", got)
			}
			got := spend(t, tok, t0.Add(time.Minute), token(1))
			if got.Fresh {
				t.Fatalf("replay: fresh, want spent")
			}
			// When it was first spent, as precisely as the layout keeps
			// it (doormand's archive: seconds).
			if d := got.At.Sub(t0); d < 0 || d >= time.Second {
				t.Errorf("replay: first spent at %v, want %v", got.At, t0)
			}
			if got := spend(t, tok, t0, token(2)); !got.Fresh {
				t.Errorf("another token: %+v, want fresh", got)
			}
		})
	}
}

func spendSeveral(t *testing.T, b Backend, dir string) {
	s := open(t, b, dir)
	tok := tokens(t, s, spaces(dir)[0])
	if got := spend(t, tok, t0, token(1), token(2)); !got.Fresh {
		t.Fatalf("{1,2}: %+v, want fresh", got)
	}
	// One spent token makes the knock a replay, and a replay records
	// nothing: 3 is still fresh afterwards.
	if got := spend(t, tok, t0, token(3), token(2)); got.Fresh {
		t.Fatalf("{3,2}: fresh, want spent (2 was)")
	}
	if got := spend(t, tok, t0, token(3)); !got.Fresh {
		t.Fatalf("{3}: spent, want fresh (a replay records nothing)")
	}
	if got := spend(t, tok, t0, token(1)); got.Fresh {
		t.Fatalf("{1}: fresh, want spent")
	}
}

// spendConcurrent: many goroutines spend one token at once; exactly one is
// told it is fresh (run with -race).
func spendConcurrent(t *testing.T, b Backend, dir string) {
	s := open(t, b, dir)
	for _, sp := range spaces(dir) {
		t.Run(sp.Name, func(t *testing.T) {
			tok := tokens(t, s, sp)
			for round := range 20 {
				var fresh sync.WaitGroup
				var mu sync.Mutex
				n := 0
				for range 8 {
					fresh.Go(func() {
						got, err := tok.Spend(t0, token(100+round))
						if err != nil {
							t.Error(err)
						}
						if got.Fresh {
							mu.Lock()
							n++
							mu.Unlock()
						}
					})
				}
				fresh.Wait()
				if n != 1 {
					t.Fatalf("round %d: %d spends fresh, want exactly 1", round, n)
				}
			}
		})
	}
}

// sharedSpace: two users of one space (a reload's old and new detector)
// see each other's spends, and one closing leaves the other working.
func sharedSpace(t *testing.T, b Backend, dir string) {
	s := open(t, b, dir)
	for _, sp := range spaces(dir) {
		t.Run(sp.Name, func(t *testing.T) {
			a, _, err := s.Tokens(sp)
			if err != nil {
				t.Fatal(err)
			}
			c := tokens(t, s, sp)
			spend(t, a, t0, token(1))
			if got := spend(t, c, t0, token(1)); got.Fresh {
				t.Fatal("spent through one handle, fresh through the other")
			}
			if err := a.Close(); err != nil {
				t.Fatal(err)
			}
			if got := spend(t, c, t0, token(1)); got.Fresh {
				t.Fatal("after the other handle closed: fresh, want spent")
			}
			if got := spend(t, c, t0, token(2)); !got.Fresh {
				t.Fatal("after the other handle closed: cannot spend")
			}
		})
	}
}

// ringCapacity: a ring remembers at least its Size newest tokens, however
// many went through it.
func ringCapacity(t *testing.T, b Backend, dir string) {
	s := open(t, b, dir)
	const size = 8
	tok := tokens(t, s, actions.Space{Name: "small.spent", Layout: actions.Ring, Size: size})
	for i := range 3 * size {
		if got := spend(t, tok, t0.Add(time.Duration(i)*time.Second), token(i)); !got.Fresh {
			t.Fatalf("token %d: spent, want fresh", i)
		}
	}
	for i := 2 * size; i < 3*size; i++ {
		if got := spend(t, tok, t0.Add(time.Hour), token(i)); got.Fresh {
			t.Errorf("token %d, one of the newest %d: fresh, want spent", i, size)
		}
	}
}

// keepWithinExpiry: a token (or value) is remembered at least for Keep.
func keepWithinExpiry(t *testing.T, b Backend, dir string) {
	s := open(t, b, dir)
	keep := time.Hour
	tok := tokens(t, s, actions.Space{Name: "keep.spent", Layout: actions.Ring, Size: 16, Keep: keep})
	spend(t, tok, t0, token(1))
	if got := spend(t, tok, t0.Add(keep-time.Second), token(1)); got.Fresh {
		t.Error("token replayed within Keep: fresh, want spent")
	}
	v := valueSpace(t, s, actions.Space{Name: "keep.state", File: filepath.Join(dir, "keep.state"), Keep: keep})
	if err := v.SetValue([]string{"k"}, "v", t0); err != nil {
		t.Fatal(err)
	}
	if got, ok, err := v.Value([]string{"k"}); err != nil || !ok || got != "v" {
		t.Errorf("value within Keep: %q, %v, %v; want \"v\"", got, ok, err)
	}
}

// oneTimeLines: a one-time sequence file's line is spent once, marked as
// knockd marks it ('#' over its first byte), whoever spends it.
func oneTimeLines(t *testing.T, b Backend, dir string) {
	s := open(t, b, dir)
	path := filepath.Join(dir, "otp")
	if err := os.WriteFile(path, []byte("2001,2002\n 2003:udp,2004\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tok := tokens(t, s, actions.Space{Name: path, File: path, Layout: actions.OneTimeLines})
	first, second := []byte("2001:tcp,2002:tcp"), []byte("2003:udp,2004:tcp")
	if got, err := tok.Spend(t0, first); err != nil || !got.Fresh {
		t.Fatalf("first line: %+v, %v; want fresh", got, err)
	}
	if got, _ := tok.Spend(t0, first); got.Fresh {
		t.Fatal("first line again: fresh, want spent")
	}
	if got, err := tok.Spend(t0, second); err != nil || !got.Fresh {
		t.Fatalf("second line: %+v, %v; want fresh", got, err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := "#001,2002\n#2003:udp,2004\n"; string(data) != want {
		t.Errorf("file after two spends:\n%q\nwant (knockd's marks)\n%q", data, want)
	}
}

func valueSpace(t *testing.T, s actions.Store, sp actions.Space) actions.Values {
	t.Helper()
	v, err := s.Values(sp)
	if err != nil {
		t.Fatalf("Values(%s): %v", sp.Name, err)
	}
	t.Cleanup(func() { v.Close() })
	return v
}

func stateSpace(dir string) actions.Space {
	return actions.Space{Name: "state", File: filepath.Join(dir, "state.cache")}
}

func values(t *testing.T, b Backend, dir string) {
	s := open(t, b, dir)
	v := valueSpace(t, s, stateSpace(dir))
	key := []string{"10.1.1.1", "visits"}
	if got, ok, err := v.Value(key); err != nil || ok {
		t.Fatalf("missing key: %q, %v, %v; want nothing", got, ok, err)
	}
	for _, want := range []string{"first", "", "second"} {
		if err := v.SetValue(key, want, t0); err != nil {
			t.Fatal(err)
		}
		if got, ok, err := v.Value(key); err != nil || !ok || got != want {
			t.Fatalf("after SetValue(%q): %q, %v, %v", want, got, ok, err)
		}
	}
	// A key is its whole path: a prefix or a longer path is another key.
	if _, ok, _ := v.Value(key[:1]); ok {
		t.Error("prefix of a key: found, want missing")
	}
	if err := v.DeleteValue(key); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := v.Value(key); ok {
		t.Error("after DeleteValue: found")
	}
	if err := v.Sync(); err != nil {
		t.Fatal(err)
	}
}

func counters(t *testing.T, b Backend, dir string) {
	s := open(t, b, dir)
	v := valueSpace(t, s, stateSpace(dir))
	key := []string{"n"}
	for _, c := range []struct {
		delta, want int64
	}{{1, 1}, {1, 2}, {-5, -3}, {10, 7}} {
		got, err := v.Add(key, c.delta, t0)
		if err != nil || got != c.want {
			t.Fatalf("Add(%d): %d, %v; want %d", c.delta, got, err, c.want)
		}
	}
	if got, _, _ := v.Value(key); got != "7" {
		t.Errorf("counter as a value: %q, want \"7\"", got)
	}
	if err := v.SetValue(key, "seven", t0); err != nil {
		t.Fatal(err)
	}
	var nc *actions.NotCounterError
	if _, err := v.Add(key, 1, t0); !errors.As(err, &nc) || nc.Value != "seven" {
		t.Errorf("Add to \"seven\": %v, want a NotCounterError", err)
	}
	if got, _, _ := v.Value(key); got != "seven" {
		t.Errorf("after a failed Add: %q, want it untouched", got)
	}
	if err := v.SetValue(key, "9223372036854775807", t0); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Add(key, 1, t0); !errors.Is(err, actions.ErrOverflow) {
		t.Errorf("Add past int64: %v, want ErrOverflow", err)
	}
}

// countersConcurrent: concurrent Adds lose no increment (run with -race).
func countersConcurrent(t *testing.T, b Backend, dir string) {
	s := open(t, b, dir)
	v := valueSpace(t, s, stateSpace(dir))
	const workers, each = 8, 50
	var wg sync.WaitGroup
	seen := make([][]int64, workers)
	for w := range workers {
		wg.Go(func() {
			for range each {
				n, err := v.Add([]string{"hits"}, 1, t0)
				if err != nil {
					t.Error(err)
					return
				}
				seen[w] = append(seen[w], n)
			}
		})
	}
	wg.Wait()
	// Every Add returned a distinct value: 1..workers*each, each once.
	all := slices.Sorted(slices.Values(slices.Concat(seen...)))
	for i, n := range all {
		if n != int64(i+1) {
			t.Fatalf("Add results %v..., want each of 1..%d once", all[:min(len(all), 10)], workers*each)
		}
	}
	if len(all) != workers*each {
		t.Fatalf("%d results, want %d", len(all), workers*each)
	}
}

func doors(t *testing.T, b Backend, dir string) {
	s := open(t, b, dir)
	a, err := s.OpenDoor(actions.DoorEntry{Door: "d1", Name: "ssh", Addr: "10.0.0.1", Stop: "close 1", Due: t0})
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.OpenDoor(actions.DoorEntry{Door: "d2", Name: "web", Addr: "10.0.0.2", Stop: "close 2", Set: "inet filter doorward4", Due: t0.Add(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	if a.ID == 0 || c.ID <= a.ID {
		t.Fatalf("IDs %d, %d: want increasing, non-zero", a.ID, c.ID)
	}
	a.Due, a.Failures = t0.Add(time.Hour), 2
	if err := s.UpdateDoor(a); err != nil {
		t.Fatal(err)
	}
	if got := s.OpenDoors(); !sameDoors(got, []actions.DoorEntry{a, c}) {
		t.Fatalf("OpenDoors: %+v\nwant %+v", got, []actions.DoorEntry{a, c})
	}
	if err := s.CloseDoor(a.ID); err != nil {
		t.Fatal(err)
	}
	if got := s.OpenDoors(); !sameDoors(got, []actions.DoorEntry{c}) {
		t.Fatalf("after CloseDoor: %+v\nwant %+v", got, []actions.DoorEntry{c})
	}
}

func sameDoors(got, want []actions.DoorEntry) bool {
	return slices.EqualFunc(got, want, func(a, b actions.DoorEntry) bool {
		return a.ID == b.ID && a.Door == b.Door && a.Name == b.Name && a.Addr == b.Addr &&
			a.Stop == b.Stop && a.Set == b.Set && a.Due.Equal(b.Due) && a.Failures == b.Failures
	})
}

// reopen: what a durable store recorded survives a restart: spent tokens,
// synced values, open doors; a space reopened with another size keeps its
// newest tokens.
func reopen(t *testing.T, b Backend, dir string) {
	s := b.Open(t, dir)
	var toks []actions.Tokens
	for _, sp := range spaces(dir) {
		tok, _, err := s.Tokens(sp)
		if err != nil {
			t.Fatal(err)
		}
		spend(t, tok, t0, token(1))
		toks = append(toks, tok)
	}
	v, err := s.Values(stateSpace(dir))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Add([]string{"n"}, 41, t0); err != nil {
		t.Fatal(err)
	}
	if err := v.Sync(); err != nil {
		t.Fatal(err)
	}
	door, err := s.OpenDoor(actions.DoorEntry{Door: "d", Name: "ssh", Addr: "10.0.0.1", Stop: "close", Set: "ip fw ssh4 22", Due: t0})
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range toks {
		tok.Close()
	}
	v.Close()
	if b.Close != nil {
		b.Close(s)
	}

	s = open(t, b, dir)
	for _, sp := range spaces(dir) {
		sp.Size *= 2 // a reload that grew the space keeps its tokens
		tok := tokens(t, s, sp)
		if got := spend(t, tok, t0, token(1)); got.Fresh {
			t.Errorf("%s after a restart: fresh, want spent", sp.Name)
		}
	}
	v = valueSpace(t, s, stateSpace(dir))
	if n, err := v.Add([]string{"n"}, 1, t0); err != nil || n != 42 {
		t.Errorf("counter after a restart: %d, %v; want 42", n, err)
	}
	if got := s.OpenDoors(); !sameDoors(got, []actions.DoorEntry{door}) {
		t.Errorf("doors after a restart: %+v\nwant %+v", got, []actions.DoorEntry{door})
	}
	if n, err := s.OpenDoor(actions.DoorEntry{Door: "d", Name: "ssh", Addr: "10.0.0.1", Stop: "close", Due: t0}); err != nil || n.ID <= door.ID {
		t.Errorf("a door opened after a restart: ID %d, %v; want above %d", n.ID, err, door.ID)
	}
}
