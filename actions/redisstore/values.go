package redisstore

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/doorward/doorward/actions"
	"github.com/doorward/doorward/formats/expr"
)

// Values opens the value space sp (actions.Store) without a round trip.
func (s *Store) Values(sp actions.Space) (actions.Values, error) {
	return &values{s: s, name: sp.Name, keep: keepMillis(sp.Keep)}, nil
}

// values writes through: each call is one command or script. An error
// that says Redis is unreachable is also kept for Sync, so a knock whose
// condition could not read its state (which reads as undefined) runs no
// command: Sync is what a caller checks before it acts.
type values struct {
	s    *Store
	name string
	keep int64 // ms

	mu     sync.Mutex
	failed error // the first unreachable error since the last Sync
}

func (v *values) note(err error) error {
	if errors.Is(err, actions.ErrUnavailable) {
		v.mu.Lock()
		if v.failed == nil {
			v.failed = err
		}
		v.mu.Unlock()
	}
	return err
}

func (v *values) Value(key []string) (string, bool, error) {
	if err := v.s.begin(); err != nil {
		return "", false, v.note(err)
	}
	ctx, cancel := v.s.ctx()
	defer cancel()
	s, err := v.s.rdb.Get(ctx, v.s.valueKey(v.name, key)).Result()
	if errors.Is(err, redis.Nil) {
		return "", false, nil
	}
	if err != nil {
		return "", false, v.note(v.s.fail("value space "+v.name, err))
	}
	return s, true, nil
}

func (v *values) SetValue(key []string, s string, _ time.Time) error {
	if err := v.s.begin(); err != nil {
		return v.note(err)
	}
	ctx, cancel := v.s.ctx()
	defer cancel()
	err := v.s.rdb.Set(ctx, v.s.valueKey(v.name, key), s, time.Duration(v.keep)*time.Millisecond).Err()
	return v.note(v.s.fail("value space "+v.name, err))
}

func (v *values) DeleteValue(key []string) error {
	if err := v.s.begin(); err != nil {
		return v.note(err)
	}
	ctx, cancel := v.s.ctx()
	defer cancel()
	err := v.s.rdb.Del(ctx, v.s.valueKey(v.name, key)).Err()
	return v.note(v.s.fail("value space "+v.name, err))
}

// addScript is Add in one step: KEYS[1] the value, ARGV[1] delta, ARGV[2]
// keep (ms). Lua's numbers are doubles, so the arithmetic is INCRBY's;
// the script only makes the value one INCRBY reads as expr.ParseInt does
// ("007" and "-0" are integers to the condition language, not to Redis)
// and puts it back if the sum overflows. Replies: {"ok", new value},
// {"nc", value} (not an integer), {"ov"} (overflow).
var addScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v then
	local sign, digits = string.match(v, '^(%-?)(%d+)$')
	if not digits or #digits > 20 then return {'nc', v} end
	local canon = sign .. (string.gsub(digits, '^0+(%d)', '%1'))
	if canon == '-0' then canon = '0' end
	if canon ~= v then redis.call('SET', KEYS[1], canon, 'KEEPTTL') end
end
local r = redis.pcall('INCRBY', KEYS[1], ARGV[1])
if type(r) == 'table' and r.err then
	if v then redis.call('SET', KEYS[1], v, 'KEEPTTL') end
	if string.find(r.err, 'overflow') then return {'ov'} end
	return {'nc', v or ''}
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return {'ok', redis.call('GET', KEYS[1])}
`)

func (v *values) Add(key []string, delta int64, _ time.Time) (int64, error) {
	if err := v.s.begin(); err != nil {
		return 0, v.note(err)
	}
	ctx, cancel := v.s.ctx()
	defer cancel()
	res, err := addScript.Run(ctx, v.s.rdb, []string{v.s.valueKey(v.name, key)}, delta, v.keep).StringSlice()
	if err != nil {
		return 0, v.note(v.s.fail("value space "+v.name, err))
	}
	switch {
	case len(res) == 2 && res[0] == "ok":
		n, ok := expr.ParseInt(res[1])
		if !ok {
			return 0, fmt.Errorf("value space %s: INCRBY left %q", v.name, res[1])
		}
		return n, nil
	case len(res) == 2 && res[0] == "nc":
		return 0, &actions.NotCounterError{Value: res[1]}
	case len(res) == 1 && res[0] == "ov":
		return 0, actions.ErrOverflow
	}
	return 0, fmt.Errorf("value space %s: unexpected reply %s", v.name, strings.Join(res, " "))
}

// Sync has nothing to write (every call wrote through) but reports an
// outage since the last Sync, or now: the caller acts only on a nil Sync.
func (v *values) Sync() error {
	v.mu.Lock()
	err := v.failed
	v.failed = nil
	v.mu.Unlock()
	if err == nil {
		err = v.s.begin()
	}
	return err
}

func (v *values) Close() error { return nil }
