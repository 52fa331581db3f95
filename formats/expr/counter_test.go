package expr

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"
)

// counterEnv is a mapEnv whose state adds in one step (Counter), as the
// state layer's Add does; it counts the writes that bypass AddState.
type counterEnv struct {
	mapEnv
	adds, sets int
}

func (c *counterEnv) SetState(key []string, v Value) error {
	c.sets++
	return c.mapEnv.SetState(key, v)
}

func (c *counterEnv) AddState(key []string, delta int64) error {
	c.adds++
	k := strings.Join(key, "/")
	var cur int64
	if s, ok := c.state[k]; ok {
		i, ok := parseInt(s)
		if !ok {
			return &NotIntegerError{Text: s}
		}
		cur = i
	}
	n, err := arith("+", cur, delta)
	if err != nil {
		return ErrOverflow
	}
	c.state[k] = strconv.FormatInt(n, 10)
	return nil
}

// TestCounterStatements: with a Counter, ++, --, += and -= are one
// AddState and no write back, with the state and errors the read-and-write
// path gives.
func TestCounterStatements(t *testing.T) {
	for _, c := range []struct {
		name, stmt, state string // state: the entry's text, "" missing
	}{
		{"increment missing", "state(IP,n)++", ""},
		{"increment", "state(IP,n)++", "41"},
		{"decrement", "state(IP,n)--", "-3"},
		{"add field", "state(IP,n) += PORT", "8"},
		{"subtract", "state(IP,n) -= 5", "2"},
		{"not an integer", "state(IP,n)++", "seven"},
		{"rhs not an integer", "state(IP,n) += IP", "1"},
		{"both not integers", "state(IP,n) += IP", "x"},
		{"overflow", "state(IP,n)++", strconv.FormatInt(math.MaxInt64, 10)},
		{"underflow", "state(IP,n) -= 2", strconv.FormatInt(math.MinInt64+1, 10)},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, err := ParseStatement(c.stmt, pos, "State")
			if err != nil {
				t.Fatal(err)
			}
			rmw, ce := knock(), &counterEnv{mapEnv: *knock()}
			ce.state = map[string]string{}
			if c.state != "" {
				rmw.state["10.1.1.1/n"] = c.state
				ce.state["10.1.1.1/n"] = c.state
			}
			want := fmt.Sprint(s.Exec(rmw), rmw.state)
			got := fmt.Sprint(s.Exec(ce), ce.state)
			// A right side that is not an integer fails before any step.
			wantAdds := 1
			if strings.HasSuffix(c.stmt, "IP") {
				wantAdds = 0
			}
			if got != want || ce.adds != wantAdds || ce.sets != 0 {
				t.Errorf("with a Counter: %s, %d AddState, %d SetState\nwant %s, %d AddState, 0 SetState", got, ce.adds, ce.sets, want, wantAdds)
			}
		})
	}
}
