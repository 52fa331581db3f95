package redisstore_test

import (
	"context"
	"crypto/md5"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/doorward/doorward/actions"
	"github.com/doorward/doorward/actions/filestore"
	"github.com/doorward/doorward/actions/redisstore"
	"github.com/doorward/doorward/actions/redisstore/redistest"
)

// TestSentinelFailover: with State_Sentinel the Store follows a failover
// (SENTINEL FAILOVER: the replica is promoted, the old master made its
// replica) by itself, and a knock spent before it is still a replay after
// it, on the new master; a counter goes on from where it was. While the
// masters change over, an operation either fails closed
// (actions.ErrUnavailable) or gives the right answer, never a fresh spend
// of a spent token.
func TestSentinelFailover(t *testing.T) {
	// No delay before a full sync to the replica (5 s by default).
	master := redistest.StartTCP(t, "--repl-diskless-sync-delay", "0")
	mhost, mport, _ := strings.Cut(master.Addr(), ":")
	replica := redistest.StartTCP(t, "--replicaof", mhost, mport)
	ctx := context.Background()
	direct := func(srv *redistest.Server) *redis.Client {
		c := redis.NewClient(&redis.Options{Addr: srv.Addr(), DisableIdentity: true})
		t.Cleanup(func() { c.Close() })
		return c
	}
	mc, rc := direct(master), direct(replica)
	eventually(t, "the replica's link to the master is up", func() bool {
		return strings.Contains(rc.Info(ctx, "replication").Val(), "master_link_status:up")
	})
	const name = "doorward-test"
	sentinel := redistest.StartSentinel(t, name, master)
	sc := redis.NewSentinelClient(&redis.Options{Addr: sentinel.Addr(), DisableIdentity: true})
	t.Cleanup(func() { sc.Close() })
	eventually(t, "the sentinel knows the replica", func() bool {
		rs, err := sc.Replicas(ctx, name).Result()
		return err == nil && len(rs) == 1 && rs[0]["flags"] == "slave" && rs[0]["master-link-status"] == "ok"
	})

	h := &host{}
	s, err := redisstore.New(redisstore.Options{URL: "redis://localhost/0", Sentinels: []string{sentinel.Addr()}, Master: name},
		filestore.Memory().Doors, h.logf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	tok, _, err := s.Tokens(actions.Space{Name: "doorman.archive", Layout: actions.HashArchive, Size: 100})
	if err != nil {
		t.Fatal(err)
	}
	vals, err := s.Values(actions.Space{Name: "StateCache"})
	if err != nil {
		t.Fatal(err)
	}
	knock := md5.Sum([]byte("a sniffed knock"))
	visits := []string{"192.0.2.7", "visits"}
	if got, err := tok.Spend(t0, knock[:]); err != nil || !got.Fresh {
		t.Fatalf("first spend: %+v, %v", got, err)
	}
	if n, err := vals.Add(visits, 1, t0); err != nil || n != 1 {
		t.Fatalf("first visit: %d, %v", n, err)
	}
	// Replication is asynchronous: what the master has not passed on is
	// lost in any failover. The test is about the Store, not that window.
	if n, err := mc.Do(ctx, "WAIT", 1, 5000).Int(); err != nil || n != 1 {
		t.Fatalf("WAIT 1: %d replicas, %v", n, err)
	}

	if err := sc.Failover(ctx, name).Err(); err != nil {
		t.Fatalf("SENTINEL FAILOVER: %v\n%s", err, sentinel.Log())
	}
	eventually(t, "the sentinel names the replica as master", func() bool {
		addr, err := sc.GetMasterAddrByName(ctx, name).Result()
		return err == nil && addr[0]+":"+addr[1] == replica.Addr()
	})
	// Until it is made a replica, the old master takes writes that the
	// new one never sees, from any client still on it: Redis's own window,
	// which the Store's following is not about. The sentinel would make it
	// one after 8 s of seeing it still claim to be master; the test does
	// the same at once. A Store left on it would be refused (READONLY)
	// from then on.
	rhost, rport, _ := strings.Cut(replica.Addr(), ":")
	if err := mc.ReplicaOf(ctx, rhost, rport).Err(); err != nil {
		t.Fatalf("REPLICAOF on the old master: %v", err)
	}

	// A new knock is fresh once the Store writes to the new master (the
	// only one that takes writes now). Until then it is refused, fail
	// closed, and spends nothing.
	fresh := md5.Sum([]byte("a new knock"))
	eventually(t, "the Store writes to the new master", func() bool {
		got, err := tok.Spend(t0.Add(time.Minute), fresh[:])
		switch {
		case err != nil && errors.Is(err, actions.ErrUnavailable):
			return false
		case err != nil:
			t.Fatalf("spend during the failover: %v (not a fail-closed refusal)", err)
		case !got.Fresh:
			t.Fatalf("a new knock after the failover: %+v, a replay", got)
		}
		return true
	})
	// The knock spent before the failover is still a replay.
	if got, err := tok.Spend(t0.Add(time.Minute), knock[:]); err != nil || got.Fresh {
		t.Fatalf("the knock spent before the failover, after it: %+v, %v (want a replay)", got, err)
	}
	if n, err := vals.Add(visits, 1, t0.Add(time.Minute)); err != nil || n != 2 {
		t.Fatalf("second visit: %d, %v (want 2: the count goes on)", n, err)
	}
	// Both spends are on the promoted server, where the sentinel says
	// the master is.
	if n, err := rc.ZCard(ctx, "doorward:spent:doorman.archive").Result(); err != nil || n != 2 {
		t.Errorf("the new master holds %d spent knocks (%v), want 2", n, err)
	}
	t.Logf("Store log: %q", h.lines())
	if !s.Health().Up {
		t.Errorf("Store down after the failover; log: %q", h.lines())
	}
}

// eventually polls cond every 50 ms for up to 20 s (a failover takes a
// few seconds of Sentinel's own periods).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	start := time.Now()
	defer func() { t.Logf("%s: %v", what, time.Since(start)) }()
	for deadline := time.Now().Add(20 * time.Second); !cond(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 20 s", what)
		}
	}
}
