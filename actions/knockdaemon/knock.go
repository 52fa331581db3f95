package knockdaemon

import (
	"errors"
	"strconv"
	"time"

	"github.com/doorward/doorward/actions"
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

// flagNames are the record's FLAGn fields by n.
var flagNames = func() (names [actions.MaxFlags]string) {
	for n := range names {
		names[n] = "FLAG" + strconv.Itoa(n)
	}
	return names
}()

func newKnock(ev actions.Event, loc *time.Location) *knock {
	k := &knock{fields: make(map[string]expr.Value, 8), now: ev.Time}
	ip := ev.Addr.WithZone("")
	if r := ev.Record; r != nil {
		if r.Has&actions.HasIP != 0 {
			ip = r.IP
		}
		if r.Has&actions.HasPort != 0 {
			k.fields["PORT"] = expr.Int(int64(r.Port))
		}
		// The record's TIME field is KNOCKTIME; TIME is decided per context.
		if r.Has&actions.HasTime != 0 {
			k.fields["KNOCKTIME"] = expr.Int(int64(r.Time))
		}
		if r.Has&actions.HasChecksum != 0 {
			k.fields["CHECKSUM"] = expr.Int(int64(r.Checksum))
		}
		for n, v := range r.Flags {
			if r.Has&actions.HasFlag(n) != 0 {
				k.fields[flagNames[n]] = expr.Int(int64(v))
			}
		}
	}
	if ip.IsValid() {
		k.fields["IP"] = expr.Str(ip.String())
		k.ip = ip.String()
	}
	if ev.Sender.IsValid() {
		k.fields["LOGIP"] = expr.Str(ev.Sender.String())
	}
	if _, ok := k.fields["PORT"]; !ok && ev.Port != 0 {
		k.fields["PORT"] = expr.Int(int64(ev.Port))
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
	store    actions.Values
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
	v, ok, err := e.store.Value(key)
	if err != nil || !ok {
		return expr.Undefined()
	}
	return expr.FromText(v)
}

func (e *env) SetState(key []string, v expr.Value) error {
	if !v.Defined() {
		return e.store.DeleteValue(key)
	}
	return e.store.SetValue(key, v.String(), e.k.now)
}

// AddState is ++, --, += and -= as one step of the state layer
// (expr.Counter): no knock reads an entry and writes it back.
func (e *env) AddState(key []string, delta int64) error {
	_, err := e.store.Add(key, delta, e.k.now)
	var nc *actions.NotCounterError
	switch {
	case errors.As(err, &nc):
		return &expr.NotIntegerError{Text: nc.Value}
	case errors.Is(err, actions.ErrOverflow):
		return expr.ErrOverflow
	}
	return err
}
