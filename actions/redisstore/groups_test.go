package redisstore_test

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/doorward/doorward/actions"
	"github.com/doorward/doorward/actions/redisstore"
	"github.com/doorward/doorward/actions/redisstore/redistest"
)

// member is one host following a group: what was delivered to it.
type member struct {
	*redisstore.Groups
	mu  sync.Mutex
	got []redisstore.Opening
}

func follow(t *testing.T, h *host, groups ...string) *member {
	t.Helper()
	m := &member{}
	m.Groups = h.Groups(groups, func(o redisstore.Opening) {
		m.mu.Lock()
		defer m.mu.Unlock()
		m.got = append(m.got, o)
	})
	t.Cleanup(func() { m.Close() })
	return m
}

// openings is what m was delivered, each opening once, in the order of
// its first delivery. Groups may deliver an opening again (its doc): one
// published between a subscription and its catch-up arrives both ways,
// and the daemon opens a door once per address whatever the count.
func (m *member) openings() []redisstore.Opening {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []redisstore.Opening
	for _, o := range m.got {
		if !slices.ContainsFunc(out, func(p redisstore.Opening) bool { return same(p, o) }) {
			out = append(out, o)
		}
	}
	return out
}

// wait returns the openings once there are n, or fails t after 3 s.
func (m *member) wait(t *testing.T, n int) []redisstore.Opening {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		got := m.openings()
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d openings delivered within 3 s, want %d: %+v", len(got), n, got)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// same compares what a member needs of an opening (Origin is the
// publisher's run and differs by design).
func same(a, b redisstore.Opening) bool {
	return a.Group == b.Group && a.Door == b.Door && a.Addr == b.Addr && a.Port == b.Port &&
		a.Expires.Equal(b.Expires) && (a.Record == nil) == (b.Record == nil) && (a.Record == nil || *a.Record == *b.Record)
}

// One host publishes an opening: a member listening gets it at once, the
// publisher does not get its own back, a member that subscribes later
// catches up on it while it is open, and one that subscribes after its
// expiry gets nothing; the group's set holds no expired opening after the
// next publish, and its key expires with its last opening.
func TestGroupOpenings(t *testing.T) {
	srv := redistest.Start(t)
	a, b := newHost(t, srv), newHost(t, srv)
	pa, mb := follow(t, a, "bastions"), follow(t, b, "bastions", "other")
	waitSubscribed(t, srv, "fleet:group:bastions", 2)

	rec := &actions.Record{Has: actions.HasPort | actions.HasTime, Port: 22, Time: 30}
	long := redisstore.Opening{Group: "bastions", Door: "ssh", Addr: netip.MustParseAddr("192.0.2.7"), Port: 22, Record: rec,
		Expires: time.Now().Add(3 * time.Second).Truncate(time.Millisecond)}
	short := redisstore.Opening{Group: "bastions", Door: "ssh", Addr: netip.MustParseAddr("192.0.2.8"),
		Expires: time.Now().Add(300 * time.Millisecond).Truncate(time.Millisecond)}
	pa.Publish(long)
	pa.Publish(short)
	got := mb.wait(t, 2)
	if len(got) != 2 || !same(got[0], long) || !same(got[1], short) {
		t.Fatalf("member got %+v, want %+v then %+v", got, long, short)
	}
	time.Sleep(200 * time.Millisecond)
	if own := pa.openings(); len(own) != 0 {
		t.Errorf("the publisher got its own openings back: %+v", own)
	}

	time.Sleep(time.Until(short.Expires) + 50*time.Millisecond)
	c := newHost(t, srv)
	mc := follow(t, c, "bastions")
	got = mc.wait(t, 1)
	time.Sleep(200 * time.Millisecond)
	if got = mc.openings(); len(got) != 1 || !same(got[0], long) {
		t.Errorf("a late member caught up on %+v, want only %+v (the other expired)", got, long)
	}

	// What --status shows: the group's openings still open, from any host.
	if open, err := c.GroupOpenings("bastions", time.Now()); err != nil || len(open) != 1 || !same(open[0], long) {
		t.Errorf("GroupOpenings: %+v, %v; want only %+v", open, err, long)
	}
	if open, err := c.GroupOpenings("other", time.Now()); err != nil || len(open) != 0 {
		t.Errorf("GroupOpenings of a group nothing was published to: %+v, %v", open, err)
	}

	rdb := redis.NewClient(&redis.Options{Network: "unix", Addr: srv.Socket()})
	defer rdb.Close()
	ctx := context.Background()
	third := long
	third.Addr = netip.MustParseAddr("192.0.2.9")
	pa.Publish(third)
	mb.wait(t, 3)
	if n := rdb.ZCard(ctx, "fleet:group:bastions").Val(); n != 2 {
		t.Errorf("the group's set holds %d openings after a publish, want 2 (the expired one trimmed)", n)
	}
	ttl := rdb.PTTL(ctx, "fleet:group:bastions").Val()
	if ttl <= 0 || ttl > time.Until(long.Expires)+time.Second {
		t.Errorf("the group's key expires in %v, want with its last opening (%v)", ttl, time.Until(long.Expires))
	}
}

// A member whose Redis went away and came back (a restart without
// persistence: the sets are gone) reconnects by itself and gets what is
// published after, without a new Groups; the outage is logged once.
func TestGroupReconnects(t *testing.T) {
	srv := redistest.Start(t)
	a, b := newHost(t, srv), newHost(t, srv)
	pa, mb := follow(t, a, "g"), follow(t, b, "g")
	waitSubscribed(t, srv, "fleet:group:g", 2)
	srv.Kill()
	time.Sleep(300 * time.Millisecond)
	srv.Restart()
	waitSubscribed(t, srv, "fleet:group:g", 2)
	o := redisstore.Opening{Group: "g", Door: "web", Addr: netip.MustParseAddr("2001:db8::1"), Expires: time.Now().Add(5 * time.Second)}
	deadline := time.Now().Add(5 * time.Second)
	for len(mb.openings()) == 0 && time.Now().Before(deadline) {
		pa.Publish(o) // the publisher's Store may still be marked down for a second
		time.Sleep(300 * time.Millisecond)
	}
	if got := mb.openings(); len(got) == 0 || !same(got[0], o) {
		t.Fatalf("after Redis restarted the member got %+v, want %+v", got, o)
	}
	down := 0
	for _, l := range b.lines() {
		if strings.Contains(l, "unreachable") {
			down++
		}
	}
	if down > 1 {
		t.Errorf("member logged the outage %d times, want at most once: %q", down, b.lines())
	}
}

// waitSubscribed waits until n clients listen on channel.
func waitSubscribed(t *testing.T, srv *redistest.Server, channel string, n int64) {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Network: "unix", Addr: srv.Socket()})
	defer rdb.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got, _ := rdb.PubSubNumSub(context.Background(), channel).Result()
		if got[channel] >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d subscribers on %s within 5 s, want %d", got[channel], channel, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
