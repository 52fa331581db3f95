package redisstore

import (
	"fmt"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/doorward/doorward/actions"
	"github.com/doorward/doorward/actions/filestore"
	"github.com/doorward/doorward/formats/otp"
	"github.com/doorward/doorward/formats/sequence"
)

// Tokens opens sp (actions.Store) without a round trip: Redis keeps every
// host's handles on a space in one key, so a reload's new handle, or
// another host's, sees the same tokens. The SpaceInfo is empty: the set
// is made by the first spend, and resized by the next one after Size
// changed.
func (s *Store) Tokens(sp actions.Space) (actions.Tokens, actions.SpaceInfo, error) {
	switch sp.Layout {
	case actions.OneTimeLines:
		f, err := otp.Open(sp.File)
		if err != nil {
			return nil, actions.SpaceInfo{}, err
		}
		// Shared by the file's name, not its folder: hosts may keep
		// their copies in different places.
		return &OneTime{File: f, s: s, key: s.key("otp", filepath.Base(sp.Name)), keep: keepMillis(sp.Keep)}, actions.SpaceInfo{}, nil
	case actions.Ring, actions.HashArchive:
		size := sp.Size
		if size <= 0 {
			size = defaultSize
		}
		var keep int64
		if sp.Keep > 0 {
			keep = keepMillis(sp.Keep)
		}
		return &spentSet{s: s, name: sp.Name, key: s.key("spent", sp.Name), size: size, keep: keep}, actions.SpaceInfo{}, nil
	}
	return nil, actions.SpaceInfo{}, fmt.Errorf("token space %s: unknown layout %d", sp.Name, sp.Layout)
}

// spendScript is Spend on a spent set, in one step for every host:
// KEYS[1] the set; ARGV[1] now (µs since the epoch), ARGV[2] the size,
// ARGV[3] keep (ms, 0: none), ARGV[4..] the tokens. It returns {1} for a
// fresh knock, {0, first-spent score} for a replay.
var spendScript = redis.NewScript(`
for i = 4, #ARGV do
	local at = redis.call('ZSCORE', KEYS[1], ARGV[i])
	if at then return {0, at} end
end
for i = 4, #ARGV do
	redis.call('ZADD', KEYS[1], ARGV[1], ARGV[i])
end
local size = tonumber(ARGV[2])
local n = redis.call('ZCARD', KEYS[1])
if n > size then
	redis.call('ZREMRANGEBYRANK', KEYS[1], 0, n - size - 1)
end
local keep = tonumber(ARGV[3])
if keep > 0 then
	redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. (tonumber(ARGV[1]) - keep * 1000))
	redis.call('PEXPIRE', KEYS[1], keep)
end
return {1}
`)

// spentSet is a Ring or HashArchive space: both are kept alike, the
// newest Size tokens. (Doormand's archive file is not written: with a
// shared backend the set is the archive.)
type spentSet struct {
	s         *Store
	name, key string
	size      int
	keep      int64 // ms; 0: bounded by size alone
}

// Spend records tokens (actions.Tokens) in one script. Scores are
// microseconds: a double holds them exactly until the year 2255.
func (t *spentSet) Spend(now time.Time, tokens ...[]byte) (actions.Spent, error) {
	if err := t.s.begin(); err != nil {
		return actions.Spent{}, fmt.Errorf("token space %s: %w", t.name, err)
	}
	args := make([]any, 0, 3+len(tokens))
	args = append(args, now.UnixMicro(), t.size, t.keep)
	for _, tok := range tokens {
		args = append(args, tok)
	}
	ctx, cancel := t.s.ctx()
	defer cancel()
	res, err := spendScript.Run(ctx, t.s.rdb, []string{t.key}, args...).Slice()
	if err != nil {
		return actions.Spent{}, t.s.fail("token space "+t.name, err)
	}
	if len(res) == 1 {
		return actions.Spent{Fresh: true}, nil
	}
	var at time.Time
	if len(res) == 2 {
		if str, ok := res[1].(string); ok {
			if us, err := strconv.ParseFloat(str, 64); err == nil {
				at = time.UnixMicro(int64(us))
			}
		}
	}
	return actions.Spent{At: at}, nil
}

func (t *spentSet) Close() error { return nil }

// OneTime is a one-time sequence file whose spent marks are shared: the
// local file lists the valid sequences (and gets knockd's marks too), a
// Redis set holds the sequences spent on any host. It is what the
// sequence detector needs of a OneTimeLines space (the file's list, and
// Changed to follow it).
type OneTime struct {
	*otp.File
	s    *Store
	key  string
	keep int64
	// moved: Spend marked here a line spent on another host; the next
	// Changed says so, for the caller to move on to the next line.
	moved atomic.Bool
}

// otpSpendScript: KEYS[1] the set, ARGV[1] the sequence, ARGV[2] keep
// (ms). 1: fresh.
var otpSpendScript = redis.NewScript(`
local n = redis.call('SADD', KEYS[1], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return n
`)

// Spend spends the sequence tokens[0] on every host (one script), then
// marks its line used in the local file, whether it was fresh or spent
// elsewhere: either way this host must move on to the next line. The
// caller spends only the line it expects (Current), which is in the file.
func (o *OneTime) Spend(_ time.Time, tokens ...[]byte) (actions.Spent, error) {
	seq, err := (&filestore.OneTime{File: o.File}).Sequence(tokens)
	if err != nil {
		return actions.Spent{}, err
	}
	if err := o.s.begin(); err != nil {
		return actions.Spent{}, fmt.Errorf("one-time sequences %s: %w", o.Path(), err)
	}
	ctx, cancel := o.s.ctx()
	defer cancel()
	n, err := otpSpendScript.Run(ctx, o.s.rdb, []string{o.key}, sequence.Format(seq), o.keep).Int()
	if err != nil {
		return actions.Spent{}, o.s.fail("one-time sequences "+o.Path(), err)
	}
	if err := o.Use(seq); err != nil {
		// Spent for the fleet but not marked here: refused (the caller
		// does not open on an error), so the line is lost, never reused.
		return actions.Spent{}, err
	}
	if n != 1 {
		o.moved.Store(true)
	}
	return actions.Spent{Fresh: n == 1}, nil
}

// Changed reports an edit of the local file, or a current line another
// host spent, which it marks here (so the caller's Reload moves on). It
// asks Redis at most a few times per call; while Redis is down it only
// looks at the file (the Store logged the outage).
func (o *OneTime) Changed() (bool, error) {
	changed, err := o.File.Changed()
	if err != nil || changed {
		return changed, err
	}
	changed = o.moved.Swap(false)
	for range 16 {
		cur, _, ok := o.Current()
		if !ok || o.s.begin() != nil {
			break
		}
		ctx, cancel := o.s.ctx()
		spent, err := o.s.rdb.SIsMember(ctx, o.key, sequence.Format(cur)).Result()
		cancel()
		if err != nil {
			o.s.fail("one-time sequences "+o.Path(), err)
			break
		}
		if !spent {
			break
		}
		if err := o.Use(cur); err != nil {
			return changed, err
		}
		changed = true
	}
	return changed, nil
}

// Close is a no-op: the file is opened afresh by every Use.
func (o *OneTime) Close() error { return nil }
