package knockdaemon

import (
	"net/netip"
	"time"

	"github.com/doorward/doorward/actions"
	"github.com/doorward/doorward/actions/state"
	"github.com/doorward/doorward/formats/expr"
)

// knock is one event's values as the expression language sees them.
//
// TIME has two meanings (spec §8): in a Condition it is now (the knock's
// arrival, epoch seconds); in State statements and System commands it is
// the record's TIME field when the knock layout has one (as the Perl
// substitution did), else now. NOW and KNOCKTIME name the two unambiguously.
type knock struct {
	fields   map[string]expr.Value
	calendar [4]expr.Value // THISYEAR, THISMONTH, THISDAY, THISHOUR
	absolute [4]expr.Value
	ip       string // for log lines
	now      time.Time
}

var bucketNames = [4]string{"THISYEAR", "THISMONTH", "THISDAY", "THISHOUR"}

func newKnock(ev actions.Event, loc *time.Location) *knock {
	k := &knock{fields: make(map[string]expr.Value, len(ev.Values)+4), now: ev.Time}
	for name, v := range ev.Values {
		if expr.IsName(name) {
			k.fields[name] = expr.FromText(v)
		}
	}
	// The record's TIME field is KNOCKTIME; TIME is decided per context.
	if t, ok := k.fields["TIME"]; ok {
		k.fields["KNOCKTIME"] = t
		delete(k.fields, "TIME")
	}
	if _, ok := k.fields["IP"]; !ok && ev.Addr.IsValid() {
		k.fields["IP"] = expr.Str(ev.Addr.WithZone("").String())
	}
	if _, ok := k.fields["PORT"]; !ok && ev.Port != 0 {
		k.fields["PORT"] = expr.Int(int64(ev.Port))
	}
	k.ip = k.fields["IP"].String()
	if a, err := netip.ParseAddr(k.ip); err == nil {
		k.ip = a.String()
	}
	now := ev.Time.Unix()
	k.fields["NOW"] = expr.Int(now)

	t := ev.Time.In(loc)
	k.calendar = [4]expr.Value{expr.Int(int64(t.Year())), expr.Int(int64(t.Month())), expr.Int(int64(t.Day())), expr.Int(int64(t.Hour()))}
	day := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC).Unix() / 86400
	k.absolute = [4]expr.Value{
		expr.Int(int64(t.Year())),
		expr.Int(int64(t.Year()-1970)*12 + int64(t.Month()) - 1),
		expr.Int(day),
		expr.Int(floorDiv(now, 3600)),
	}
	return k
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && (a < 0) {
		q--
	}
	return q
}

// env is the expr.Env of one action run: the knock's fields with the
// action's bucket mode and TIME meaning, over the state store.
type env struct {
	k        *knock
	buckets  Buckets
	template bool
	store    *state.Store
}

func (e *env) Lookup(name string) expr.Value {
	switch name {
	case "TIME":
		if t, ok := e.k.fields["KNOCKTIME"]; ok && e.template {
			return t
		}
		return e.k.fields["NOW"]
	case "THISYEAR", "THISMONTH", "THISDAY", "THISHOUR":
		for i, n := range bucketNames {
			if n == name {
				if e.buckets == Absolute {
					return e.k.absolute[i]
				}
				return e.k.calendar[i]
			}
		}
	}
	return e.k.fields[name]
}

func (e *env) State(key []string) expr.Value {
	v, ok := e.store.Get(key)
	if !ok {
		return expr.Undefined()
	}
	return expr.FromText(v)
}

func (e *env) SetState(key []string, v expr.Value) error {
	if !v.Defined() {
		e.store.Delete(key)
		return nil
	}
	return e.store.Set(key, v.String(), e.k.now)
}
