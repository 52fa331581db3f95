package redisstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/doorward/doorward/actions"
)

// Door groups (docs/fleet.md): a knock on one host opens a door of the
// same name on every host whose config has it in the group.
//
// Each group is a sorted set, <prefix>group:<name>, one member per opening
// (its JSON) scored by its expiry (ms since the epoch): what is still open
// is the members scored after now, so a host that was down or partitioned
// reads them when it (re)subscribes and opens each for what is left, and
// nothing already expired. Publishing is one Lua script: drop the expired
// members, add the opening, bound the set, let the key expire with its
// latest opening, and PUBLISH the opening on the channel of the same name
// for the hosts listening now. Pub/sub rather than polling: an opening
// reaches the members in a round trip instead of a poll period, and costs
// nothing while no one knocks; what pub/sub loses (a host not subscribed
// at that moment) the set still holds, and a host reads the set each
// time its subscription is (re)made, which go-redis does by itself after
// a reconnect.

// Opening is one door opened on one host of a group, as the hosts share
// it: the door's name (its section), the address it opened for, the port
// and payload of the knock where the protocol has them, and when it
// closes, the publisher's absolute time: a member closes it then, never
// later.
type Opening struct {
	Group   string          `json:"-"`
	Door    string          `json:"door"`
	Addr    netip.Addr      `json:"addr"`
	Port    uint16          `json:"port,omitempty"`
	Record  *actions.Record `json:"record,omitempty"`
	Expires time.Time       `json:"expires"`
	// Origin is the publishing daemon's run (random, new at each start),
	// so a host does not open its own opening a second time.
	Origin string `json:"origin"`
}

// MaxOpenings bounds a group's set: the openings expiring last are kept.
// A door keeps at most engine.MaxOpenPerDoor addresses on one host; a
// group holds every host's.
const MaxOpenings = 1 << 16

// publishScript: KEYS[1] the group's set; ARGV[1] now (ms), ARGV[2] the
// expiry (ms), ARGV[3] the opening, ARGV[4] the channel, ARGV[5] the bound.
var publishScript = redis.NewScript(`
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
local n = redis.call('ZCARD', KEYS[1])
local max = tonumber(ARGV[5])
if n > max then
	redis.call('ZREMRANGEBYRANK', KEYS[1], 0, n - max - 1)
end
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', KEYS[1], last[2])
return redis.call('PUBLISH', ARGV[4], ARGV[3])
`)

// Groups publishes this host's openings and delivers the group's others.
type Groups struct {
	s       *Store
	origin  string
	deliver func(Opening)
	queue   chan Opening
	dropped atomic.Uint64
	badSeen atomic.Bool

	mu     sync.Mutex
	names  []string // subscribed
	ps     *redis.PubSub
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// queueLen bounds the openings waiting to be published.
const queueLen = 1024

// Groups starts following names: deliver is called, on one goroutine,
// for every opening of those groups another daemon published that is
// still open, as it is published and, at each (re)subscription, for
// every one still in its group's set. It may be called again for an
// opening it had (a subscription made again): the caller opens a door
// once per (door, address) and extends it only to a later expiry.
func (s *Store) Groups(names []string, deliver func(Opening)) *Groups {
	var id [8]byte
	rand.Read(id[:])
	ctx, cancel := context.WithCancel(context.Background())
	g := &Groups{s: s, origin: hex.EncodeToString(id[:]), deliver: deliver, queue: make(chan Opening, queueLen),
		ctx: ctx, cancel: cancel}
	g.names = slices.Clone(names)
	g.ps = s.rdb.Subscribe(ctx, g.channels(g.names)...)
	g.wg.Add(2)
	go func() { defer g.wg.Done(); g.receive() }()
	go func() { defer g.wg.Done(); g.publishing() }()
	return g
}

// Follow changes the groups followed (a reload).
func (g *Groups) Follow(names []string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	var add, drop []string
	for _, n := range names {
		if !slices.Contains(g.names, n) {
			add = append(add, n)
		}
	}
	for _, n := range g.names {
		if !slices.Contains(names, n) {
			drop = append(drop, n)
		}
	}
	g.names = slices.Clone(names)
	ctx, cancel := g.s.ctx()
	defer cancel()
	if len(drop) > 0 {
		if err := g.ps.Unsubscribe(ctx, g.channels(drop)...); err != nil {
			return g.s.fail("group unsubscribe", err)
		}
	}
	if len(add) > 0 {
		if err := g.ps.Subscribe(ctx, g.channels(add)...); err != nil {
			return g.s.fail("group subscribe", err)
		}
	}
	return nil
}

// Close stops following and publishing; openings still queued are lost.
func (g *Groups) Close() error {
	g.cancel()
	g.mu.Lock()
	err := g.ps.Close() // unblocks Receive
	g.mu.Unlock()
	g.wg.Wait()
	return err
}

// Publish queues o to be published, without waiting: it is called on an
// action's goroutine. An opening already expired, or one that finds the
// queue full, is dropped (counted in Dropped).
func (g *Groups) Publish(o Opening) {
	select {
	case g.queue <- o:
	default:
		g.dropped.Add(1)
	}
}

// Dropped is how many openings were not published: the queue was full,
// or Redis did not answer (logged once per outage by the Store).
func (g *Groups) Dropped() uint64 { return g.dropped.Load() }

func (g *Groups) publishing() {
	for {
		select {
		case <-g.ctx.Done():
			return
		case o := <-g.queue:
			if err := g.publish(o, time.Now()); err != nil {
				g.dropped.Add(1)
			}
		}
	}
}

// publish sends o at now: one script.
func (g *Groups) publish(o Opening, now time.Time) error {
	if !o.Expires.After(now) {
		return nil
	}
	if err := g.s.begin(); err != nil {
		return err
	}
	o.Origin = g.origin
	data, err := json.Marshal(o)
	if err != nil {
		return err
	}
	ctx, cancel := g.s.ctx()
	defer cancel()
	key := g.s.key("group", o.Group)
	err = publishScript.Run(ctx, g.s.rdb, []string{key}, now.UnixMilli(), o.Expires.UnixMilli(), data, key, MaxOpenings).Err()
	return g.s.fail("group "+o.Group, err)
}

// channels are the pub/sub channels of names: the sets' keys.
func (g *Groups) channels(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = g.s.key("group", n)
	}
	return out
}

// group is the name of a channel's group.
func (g *Groups) group(channel string) string { return channel[len(g.s.key("group", "")):] }

// receive delivers what the subscription brings until Close: each
// opening published, and, on every confirmation of a subscription (the
// first one, and go-redis's own after it reconnected), what the group's
// set still holds.
//
// A partition that drops packets without closing the connection would
// leave the subscription silent for ever, so a quiet subscription is
// pinged, and one that does not answer the ping in time is made anew.
func (g *Groups) receive() {
	pinged := false
	for {
		ps := g.sub()
		msg, err := ps.ReceiveTimeout(g.ctx, pingUp)
		if g.ctx.Err() != nil {
			return
		}
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			if pinged {
				g.resubscribe(ps)
			} else {
				ps.Ping(g.ctx)
			}
			pinged = !pinged
			continue
		}
		pinged = false
		if err != nil {
			if unreachable(err) {
				g.s.markDown(err)
			}
			// go-redis redials on the next Receive; wait for it as the
			// Store's own ping does.
			select {
			case <-g.ctx.Done():
				return
			case <-time.After(pingDown):
			}
			continue
		}
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" {
				g.catchUp(g.group(m.Channel), time.Now())
			}
		case *redis.Message:
			g.receiveOne(g.group(m.Channel), m.Payload, time.Now())
		}
	}
}

// sub is the current subscription.
func (g *Groups) sub() *redis.PubSub {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.ps
}

// resubscribe replaces the subscription old, which stopped answering.
func (g *Groups) resubscribe(old *redis.PubSub) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.ps != old || g.ctx.Err() != nil {
		return
	}
	old.Close()
	g.ps = g.s.rdb.Subscribe(g.ctx, g.channels(g.names)...)
}

// catchUp delivers what group's set holds that is still open at now.
func (g *Groups) catchUp(group string, now time.Time) {
	list, err := g.s.stillOpen(group, now)
	if err != nil {
		if err = g.s.fail("group "+group, err); err != nil {
			g.s.logf("state: group %s: cannot read what is open: %v", group, err)
		}
		return
	}
	for _, data := range list {
		g.receiveOne(group, data, now)
	}
}

// stillOpen is the openings of group that expire after now, as stored
// (JSON), earliest expiry first.
func (s *Store) stillOpen(group string, now time.Time) ([]string, error) {
	ctx, cancel := s.ctx()
	defer cancel()
	min := "(" + strconv.FormatInt(now.UnixMilli(), 10)
	return s.rdb.ZRangeByScore(ctx, s.key("group", group), &redis.ZRangeBy{Min: min, Max: "+inf"}).Result()
}

// GroupOpenings is what is open in group at now, across the fleet, for
// knockd --status: the openings that read, earliest expiry first.
func (s *Store) GroupOpenings(group string, now time.Time) ([]Opening, error) {
	list, err := s.stillOpen(group, now)
	if err != nil {
		return nil, err
	}
	var out []Opening
	for _, data := range list {
		var o Opening
		if json.Unmarshal([]byte(data), &o) == nil && o.Addr.IsValid() && o.Door != "" {
			o.Group = group
			out = append(out, o)
		}
	}
	return out, nil
}

// receiveOne delivers one opening, unless this daemon published it, it
// has expired, or it does not read (logged: only a daemon of another
// version, or another program, writes one).
func (g *Groups) receiveOne(group, data string, now time.Time) {
	var o Opening
	if err := json.Unmarshal([]byte(data), &o); err != nil || !o.Addr.IsValid() || o.Door == "" {
		if !g.badSeen.Swap(true) { // Redis is the fleet's own: once is enough
			g.s.logf("state: group %s: an opening that does not read, ignored (logged once): %.80q", group, data)
		}
		return
	}
	if o.Origin == g.origin || !o.Expires.After(now) {
		return
	}
	o.Group = group
	g.deliver(o)
}

// String names the daemon run's origin, for tests and logs.
func (g *Groups) String() string { return fmt.Sprintf("groups %v from %s", g.names, g.origin) }
