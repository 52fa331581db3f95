package redisstore_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/doorward/doorward/actions"
	"github.com/doorward/doorward/actions/filestore"
	"github.com/doorward/doorward/actions/redisstore"
	"github.com/doorward/doorward/actions/redisstore/redistest"
)

// host is one guarded host of a fleet: its own (memory) journal, the
// shared Redis, and its log.
type host struct {
	*redisstore.Store
	mu  sync.Mutex
	log []string
}

func (h *host) logf(format string, args ...any) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.log = append(h.log, strings.TrimSpace(sprintf(format, args...)))
}

func (h *host) lines() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.log...)
}

func newHost(t *testing.T, srv *redistest.Server) *host {
	t.Helper()
	h := &host{}
	s, err := redisstore.New(redisstore.Options{URL: srv.URL(), Prefix: "fleet:"}, filestore.Memory().Doors, h.logf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	h.Store = s
	return h
}

var t0 = time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)

// A knock's token (a doorman digest, a port-span ciphertext) accepted by
// host A and replayed to host B is refused by B.
func TestReplayAcrossHosts(t *testing.T) {
	srv := redistest.Start(t)
	a, b := newHost(t, srv), newHost(t, srv)
	sp := actions.Space{Name: "/var/lib/doorward/doorman.archive", Layout: actions.HashArchive, Size: 1000}
	ta, _, err := a.Tokens(sp)
	if err != nil {
		t.Fatal(err)
	}
	tb, _, _ := b.Tokens(sp)
	digest := []byte("0123456789abcdef")
	if got, err := ta.Spend(t0, digest); err != nil || !got.Fresh {
		t.Fatalf("A: %+v, %v; want fresh", got, err)
	}
	got, err := tb.Spend(t0.Add(time.Second), digest)
	if err != nil || got.Fresh || !got.At.Equal(t0) {
		t.Fatalf("B, the replay: %+v, %v; want spent at %v", got, err, t0)
	}
}

// A one-time sequence used on A no longer opens B, and B moves on to the
// next line by itself (Changed), before anyone knocks it.
func TestOneTimeAcrossHosts(t *testing.T) {
	srv := redistest.Start(t)
	a, b := newHost(t, srv), newHost(t, srv)
	open := func(h *host) *redisstore.OneTime {
		dir := t.TempDir()
		path := filepath.Join(dir, "otp")
		if err := os.WriteFile(path, []byte("2001,2002\n2003,2004\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		tok, _, err := h.Tokens(actions.Space{Name: "ssh.otp", File: path, Layout: actions.OneTimeLines})
		if err != nil {
			t.Fatal(err)
		}
		return tok.(*redisstore.OneTime)
	}
	oa, ob := open(a), open(b)
	first := []byte("2001:tcp,2002:tcp")
	if got, err := oa.Spend(t0, first); err != nil || !got.Fresh {
		t.Fatalf("A: %+v, %v; want fresh", got, err)
	}
	if changed, err := ob.Changed(); err != nil || !changed {
		t.Fatalf("B's Changed after A spent its current line: %v, %v; want true", changed, err)
	}
	if err := ob.Reload(); err != nil {
		t.Fatal(err)
	}
	if seq, _, ok := ob.Current(); !ok || len(seq) != 2 || seq[0].Port != 2003 {
		t.Fatalf("B expects %v, %v; want the second line", seq, ok)
	}
	// Had B been asked with the first line (a knock racing the poll), it
	// is refused and marked used there too.
	ob2 := open(b)
	if got, err := ob2.Spend(t0, first); err != nil || got.Fresh {
		t.Fatalf("B, the first line: %+v, %v; want spent", got, err)
	}
	if seq, _, _ := ob2.Current(); len(seq) != 2 || seq[0].Port != 2003 {
		t.Fatalf("B after the refused line expects %v; want the second line", seq)
	}
}

// A knockdaemon counter (visits, throttles) counts across hosts.
func TestCounterAcrossHosts(t *testing.T) {
	srv := redistest.Start(t)
	a, b := newHost(t, srv), newHost(t, srv)
	sp := actions.Space{Name: "StateCache"}
	va, _ := a.Values(sp)
	vb, _ := b.Values(sp)
	key := []string{"10.0.0.7", "visits"}
	for i, v := range []actions.Values{va, vb, va, vb} {
		n, err := v.Add(key, 1, t0)
		if err != nil || n != int64(i+1) {
			t.Fatalf("Add %d: %d, %v; want %d", i, n, err, i+1)
		}
	}
	if err := va.Sync(); err != nil {
		t.Fatal(err)
	}
	// Keys expire with what they guard: a value has a TTL.
	if s, ok, err := vb.Value(key); err != nil || !ok || s != "4" {
		t.Fatalf("B reads %q, %v, %v; want \"4\"", s, ok, err)
	}
}

// Redis killed: operations fail closed with ErrUnavailable, fast, logged
// once; after redis-server restarts they work again on the same Store.
func TestOutage(t *testing.T) {
	srv := redistest.Start(t)
	a := newHost(t, srv)
	tok, _, _ := a.Tokens(actions.Space{Name: "portspan.spent", Layout: actions.Ring, Size: 64})
	vals, _ := a.Values(actions.Space{Name: "StateCache"})
	if got, err := tok.Spend(t0, []byte("token-before-kill")); err != nil || !got.Fresh {
		t.Fatalf("before: %+v, %v", got, err)
	}
	srv.Kill()
	for i := range 50 {
		start := time.Now()
		got, err := tok.Spend(t0, []byte("token-during-outage"))
		if !errors.Is(err, actions.ErrUnavailable) || got.Fresh {
			t.Fatalf("spend %d while down: %+v, %v; want refused with ErrUnavailable", i, got, err)
		}
		if d := time.Since(start); d > redisstore.DefaultTimeout+100*time.Millisecond {
			t.Fatalf("spend %d while down took %v", i, d)
		}
	}
	if _, err := vals.Add([]string{"x"}, 1, t0); !errors.Is(err, actions.ErrUnavailable) {
		t.Fatalf("Add while down: %v", err)
	}
	if err := vals.Sync(); err == nil {
		t.Fatal("Sync after a failed Add: nil, want the outage (a knock must not act)")
	}
	if h := a.Health(); h.Up || h.Refused == 0 {
		t.Fatalf("health while down: %+v", h)
	}
	srv.Restart()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got, err := tok.Spend(t0, []byte("token-after-restart"))
		if err == nil && got.Fresh {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after restart: %+v, %v; want working again", got, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	var down, up int
	for _, l := range a.lines() {
		switch {
		case strings.Contains(l, "unreachable"):
			down++
		case strings.Contains(l, "answers again"):
			up++
		}
	}
	if down != 1 || up != 1 {
		t.Errorf("log: %d down and %d up lines, want one each:\n%s", down, up, strings.Join(a.lines(), "\n"))
	}
}

func sprintf(format string, args ...any) string { return fmt.Sprintf(format, args...) }

// TestStartLog: the daemon starts whether Redis answers or not and says
// which in its log, once (docs/fleet.md), so an admin who starts a fleet
// sees at once that it shares its state.
func TestStartLog(t *testing.T) {
	srv := redistest.Start(t)
	h := newHost(t, srv)
	deadline := time.Now().Add(5 * time.Second)
	for !slices.ContainsFunc(h.lines(), func(l string) bool { return strings.Contains(l, "answers") }) {
		if time.Now().After(deadline) {
			t.Fatalf("no start-up line saying Redis answers in 5 s: %q", h.lines())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if l := h.lines(); len(l) != 1 || !strings.HasPrefix(l[0], "state: redis unix://") || !strings.HasSuffix(l[0], " answers") {
		t.Errorf("log %q, want one line \"state: redis unix://… answers\"", l)
	}
}
