// Package redisstore is the shared backend of the durable-state layer
// (actions.Store) on Redis, for a fleet of hosts guarding the same doors:
// a knock spent on one host is spent on all of them, and the counters
// knockdaemon conditions read are the same everywhere.
//
// What goes where:
//
//   - Doors stay local: the Store is given the host's own journal
//     (actions/journal) and passes OpenDoor, UpdateDoor, CloseDoor and
//     OpenDoors to it. Each host closes the doors it opened, by its own
//     journal, whether Redis is reachable or not; a door is never closed
//     late because the shared store is down.
//   - Ring and HashArchive token spaces: one sorted set per space,
//     <prefix>spent:<Space.Name>, each token a member scored by the time it
//     was first spent (microseconds). Spend is one Lua script: any member
//     already there makes the knock a replay; else all are added, the set
//     trimmed to the newest Space.Size and, with a Space.Keep, its members
//     older than Keep dropped and the key set to expire after Keep.
//   - OneTimeLines: the file stays the list of valid sequences (each host
//     reads its own copy); the spent marks are shared, a Redis set
//     <prefix>otp:<file name> of spent sequences (the base name: hosts
//     may keep their copies in different folders). Spend adds the line's
//     sequence (SADD: 1 is fresh) and marks the line in the local file as
//     knockd does, fresh or not, so each host moves on to the next line;
//     Changed (polled every second) also asks whether the current line was
//     spent elsewhere, and marks it, so a host learns about a sequence used
//     on another before anyone knocks it.
//   - Value spaces: a string key per value, <prefix>val:<Space.Name>:<path>,
//     the path's elements escaped and joined by '/'. SetValue is SET with
//     an expiry, Add a Lua script (INCRBY, then the expiry), so counters
//     are shared and no increment is lost between hosts.
//
// Keys expire with what they guard: a value Space.Keep after its last
// write (DefaultKeep without one, longer than knockdaemon's yearly
// buckets); a spent set is bounded by its Size and, with a Keep, expires
// too; a one-time set DefaultKeep after its last spend.
//
// Failure: every error that says Redis cannot be reached (a refused or
// timed-out connection, a closed socket, a master that is loading or
// failing over) marks the Store down, logged once, and wraps
// actions.ErrUnavailable: callers refuse the knock. While down, operations
// fail at once, without trying, so a dead Redis costs the packet path
// one Timeout per outage rather than one per knock; a ping every second
// brings the Store up again (logged once), and go-redis redials by itself.
//
// Spaces open without a round trip: a daemon starts (and a reload is
// accepted) while Redis is down, refusing knocks until it comes up.
package redisstore

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/doorward/doorward/actions"
)

// DefaultKeep is how long a value (or a one-time space's marks) stays
// after its last write when its space declares no Keep: longer than a
// knockdaemon condition's yearly bucket.
const DefaultKeep = 400 * 24 * time.Hour

// defaultSize bounds a spent set whose space declares no Size.
const defaultSize = 1 << 20

// Store is the Redis backend. Safe for concurrent use.
type Store struct {
	actions.Doors
	rdb     redis.UniversalClient
	prefix  string
	timeout time.Duration
	addr    string
	logf    actions.Logf

	down    atomic.Bool
	changed sync.Mutex // serialises the down/up transitions and their log lines
	refused atomic.Uint64
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once
}

var _ actions.Store = (*Store)(nil)

// New returns the Store of o, its doors kept by doors (the host's
// journal). It does not wait for Redis: the first ping runs in the
// background and says in the log whether Redis answers.
func New(o Options, doors actions.Doors, logf actions.Logf) (*Store, error) {
	if doors == nil {
		return nil, errors.New("redisstore: no journal of doors")
	}
	rdb, err := o.client()
	if err != nil {
		return nil, err
	}
	if logf == nil {
		logf = actions.Discard
	}
	s := &Store{Doors: doors, rdb: rdb, prefix: o.Prefix, timeout: o.Timeout, addr: o.Addr(), logf: logf,
		stop: make(chan struct{}), done: make(chan struct{})}
	if s.prefix == "" {
		s.prefix = DefaultPrefix
	}
	if s.timeout <= 0 {
		s.timeout = DefaultTimeout
	}
	go s.watch()
	return s, nil
}

// Close stops the pings and closes the connections (the journal is the
// caller's).
func (s *Store) Close() error {
	var err error
	s.once.Do(func() {
		close(s.stop)
		<-s.done
		err = s.rdb.Close()
	})
	return err
}

// Health is the backend's state for --status and the metrics.
type Health struct {
	Backend string // "redis"
	Addr    string // the server (no password)
	Up      bool
	Refused uint64 // operations refused because Redis was unreachable
}

// Health says whether Redis answered the last operation or ping.
func (s *Store) Health() Health {
	return Health{Backend: "redis", Addr: s.addr, Up: !s.down.Load(), Refused: s.refused.Load()}
}

// Ping asks Redis once, with the operation timeout.
func (s *Store) Ping() error {
	ctx, cancel := s.ctx()
	defer cancel()
	return s.rdb.Ping(ctx).Err()
}

// pingEvery is how often the Store asks Redis while it is down (to come
// up again) and while it is up (so the state the metrics show is no older
// than this when no knock comes).
const (
	pingDown = time.Second
	pingUp   = 5 * time.Second
)

func (s *Store) watch() {
	defer close(s.done)
	t := time.NewTimer(0)
	defer t.Stop()
	first := true
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		err := s.Ping()
		if err == nil {
			if first {
				s.logf("state: redis %s answers", s.addr)
			}
			s.markUp()
		} else if unreachable(err) {
			s.markDown(err)
		}
		if s.down.Load() {
			t.Reset(pingDown)
		} else {
			t.Reset(pingUp)
		}
		first = false
	}
}

func (s *Store) markDown(err error) {
	s.changed.Lock()
	defer s.changed.Unlock()
	if !s.down.Swap(true) {
		s.logf("state: redis %s unreachable, refusing knocks that need shared state until it answers: %v", s.addr, err)
	}
}

func (s *Store) markUp() {
	s.changed.Lock()
	defer s.changed.Unlock()
	if s.down.Swap(false) {
		s.logf("state: redis %s answers again", s.addr)
	}
}

// ctx bounds one operation.
func (s *Store) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), s.timeout)
}

// errDown is an operation refused without trying: the Store is down.
var errDown = fmt.Errorf("redis unreachable: %w", actions.ErrUnavailable)

// begin refuses an operation while the Store is down.
func (s *Store) begin() error {
	if s.down.Load() {
		s.refused.Add(1)
		return errDown
	}
	return nil
}

// fail classifies err: one that says Redis is unreachable marks the Store
// down and wraps actions.ErrUnavailable; a reply error (a bug, a wrong
// type) is returned as it is.
func (s *Store) fail(what string, err error) error {
	if err == nil {
		return nil
	}
	if unreachable(err) {
		s.refused.Add(1)
		s.markDown(err)
		return fmt.Errorf("%s: %w (%w)", what, actions.ErrUnavailable, err)
	}
	return fmt.Errorf("%s: redis: %w", what, err)
}

// unreachable: the server did not answer, or answered that it cannot
// serve now (loading its data, a replica, no master).
func unreachable(err error) bool {
	if errors.Is(err, redis.Nil) {
		return false
	}
	var re redis.Error
	if errors.As(err, &re) {
		return redis.IsLoadingError(err) || redis.IsReadOnlyError(err) || redis.IsMasterDownError(err) ||
			redis.IsClusterDownError(err) || strings.HasPrefix(re.Error(), "NOAUTH") || strings.HasPrefix(re.Error(), "WRONGPASS")
	}
	return true // network errors, timeouts, a closed client or pool
}

// key is the Redis key of a space's part: prefix, kind, space name.
func (s *Store) key(kind, name string) string { return s.prefix + kind + ":" + name }

// valueKey is the key of a value: the path's elements escaped (so '/' in
// one cannot make two paths one key) and joined by '/'.
func (s *Store) valueKey(space string, path []string) string {
	var b strings.Builder
	b.WriteString(s.key("val", space))
	b.WriteByte(':')
	for i, p := range path {
		if i > 0 {
			b.WriteByte('/')
		}
		b.WriteString(url.PathEscape(p))
	}
	return b.String()
}

// keepMillis is a space's Keep for PEXPIRE, DefaultKeep without one.
func keepMillis(keep time.Duration) int64 {
	if keep <= 0 {
		keep = DefaultKeep
	}
	return max(keep.Milliseconds(), 1)
}
