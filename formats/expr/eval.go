package expr

import (
	"errors"
	"fmt"
	"math"

	"github.com/doorward/doorward/formats/srcpos"
)

// Env is what evaluation reads and changes. The knockdaemon action
// implements it over one knock and the state store.
type Env interface {
	// Lookup returns a field or keyword (IsName), or Undefined if the
	// knock does not carry it.
	Lookup(name string) Value
	// State returns the entry at key, or Undefined.
	State(key []string) Value
	// SetState stores v at key; an undefined v deletes the entry.
	SetState(key []string, v Value) error
}

// Counter is an Env that adds to a state entry in one step (the state
// layer's atomic Add). ++, --, += and -= then never read the entry and
// write it back, so knocks handled at once (or hosts sharing the state)
// lose no update. An Env without it is read and written.
type Counter interface {
	// AddState adds delta to the entry at key (a missing entry is 0).
	// An entry that is not an integer is a *NotIntegerError and stays as
	// it is; a result outside int64 is ErrOverflow.
	AddState(key []string, delta int64) error
}

// NotIntegerError is AddState on an entry whose text is not an integer.
type NotIntegerError struct{ Text string }

func (e *NotIntegerError) Error() string { return fmt.Sprintf("%q is not an integer", e.Text) }

// ErrOverflow is an integer result outside int64.
var ErrOverflow = errOverflow

// EvalError is a problem found while evaluating: an operand that is not an
// integer, a division by zero, an overflow, an undefined state key.
type EvalError struct {
	Col int // 1-based byte column of the operator or state(…) involved
	Msg string
}

func (e *EvalError) Error() string { return fmt.Sprintf("%s at column %d", e.Msg, e.Col) }

func evalErr(off int, format string, args ...any) error {
	return &EvalError{Col: off + 1, Msg: fmt.Sprintf(format, args...)}
}

// node is one piece of a parsed expression. Evaluation walks the tree once:
// there are no loops or calls, so its cost is bounded by the source length.
type node interface {
	eval(env Env) (Value, error)
}

type litNode struct{ v Value }

func (n *litNode) eval(Env) (Value, error) { return n.v, nil }

type nameNode struct{ name string }

func (n *nameNode) eval(env Env) (Value, error) { return env.Lookup(n.name), nil }

type stateNode struct {
	args []node
	off  int
}

func (n *stateNode) eval(env Env) (Value, error) {
	key, err := n.key(env)
	if err != nil {
		return Value{}, err
	}
	return env.State(key), nil
}

// key computes the entry's path. An undefined part (a field the knock does
// not carry, a nested state(…) that is missing) is an error rather than "":
// two different knocks must not share an entry by accident.
func (n *stateNode) key(env Env) ([]string, error) {
	key := make([]string, len(n.args))
	for i, a := range n.args {
		v, err := a.eval(env)
		if err != nil {
			return nil, err
		}
		if !v.Defined() {
			return nil, evalErr(n.off, "state(…) key %d is undefined", i+1)
		}
		key[i] = v.String()
	}
	return key, nil
}

type unaryNode struct {
	op  string
	x   node
	off int
}

func (n *unaryNode) eval(env Env) (Value, error) {
	v, err := n.x.eval(env)
	if err != nil {
		return Value{}, err
	}
	if n.op == "!" {
		return boolValue(!v.Truth()), nil
	}
	i, err := operand(v, n.off)
	if err != nil {
		return Value{}, err
	}
	if i == math.MinInt64 {
		return Value{}, evalErr(n.off, "integer overflow")
	}
	return Int(-i), nil
}

type binaryNode struct {
	op   string
	x, y node
	off  int
}

func (n *binaryNode) eval(env Env) (Value, error) {
	x, err := n.x.eval(env)
	if err != nil {
		return Value{}, err
	}
	// && and || short-circuit, as in Perl: "! state(…) || TIME - state(…)"
	// never computes the right side for a first knock.
	switch n.op {
	case "&&":
		if !x.Truth() {
			return Int(0), nil
		}
		y, err := n.y.eval(env)
		return boolValue(y.Truth()), err
	case "||":
		if x.Truth() {
			return Int(1), nil
		}
		y, err := n.y.eval(env)
		return boolValue(y.Truth()), err
	}
	y, err := n.y.eval(env)
	if err != nil {
		return Value{}, err
	}
	switch n.op {
	case "==", "!=", "<", ">", "<=", ">=":
		c := compare(x, y)
		var b bool
		switch n.op {
		case "==":
			b = c == 0
		case "!=":
			b = c != 0
		case "<":
			b = c < 0
		case ">":
			b = c > 0
		case "<=":
			b = c <= 0
		case ">=":
			b = c >= 0
		}
		return boolValue(b), nil
	}
	a, err := operand(x, n.off)
	if err != nil {
		return Value{}, err
	}
	b, err := operand(y, n.off)
	if err != nil {
		return Value{}, err
	}
	r, err := arith(n.op, a, b)
	if err != nil {
		return Value{}, evalErr(n.off, "%v", err)
	}
	return Int(r), nil
}

// compare orders two values: numerically when both are integers (undefined
// counts as 0, "22" as 22), otherwise as strings, byte by byte, with
// integers in decimal and undefined as "0". So IP == "10.1.1.1" is a string
// comparison and PORT == 22 a numeric one, whatever their source.
func compare(x, y Value) int {
	a, aok := x.Int()
	b, bok := y.Int()
	if aok && bok {
		switch {
		case a < b:
			return -1
		case a > b:
			return 1
		}
		return 0
	}
	as, bs := x.String(), y.String()
	if !x.Defined() {
		as = "0"
	}
	if !y.Defined() {
		bs = "0"
	}
	switch {
	case as < bs:
		return -1
	case as > bs:
		return 1
	}
	return 0
}

// operand is v as an integer for arithmetic: undefined is 0; a string that
// is not an integer is an error (Perl would read "10.1.1.1" as 10).
func operand(v Value, off int) (int64, error) {
	i, ok := v.Int()
	if !ok {
		return 0, evalErr(off, "%q is not an integer", v.String())
	}
	return i, nil
}

var (
	errOverflow = errors.New("integer overflow")
	errDivZero  = errors.New("division by zero")
)

// arith is 64-bit integer arithmetic that reports overflow instead of
// wrapping; / truncates towards zero.
func arith(op string, a, b int64) (int64, error) {
	switch op {
	case "+":
		if (b > 0 && a > math.MaxInt64-b) || (b < 0 && a < math.MinInt64-b) {
			return 0, errOverflow
		}
		return a + b, nil
	case "-":
		if (b < 0 && a > math.MaxInt64+b) || (b > 0 && a < math.MinInt64+b) {
			return 0, errOverflow
		}
		return a - b, nil
	case "*":
		if a == 0 || b == 0 {
			return 0, nil
		}
		r := a * b
		if r/b != a || (a == -1 && b == math.MinInt64) || (b == -1 && a == math.MinInt64) {
			return 0, errOverflow
		}
		return r, nil
	case "/":
		if b == 0 {
			return 0, errDivZero
		}
		if a == math.MinInt64 && b == -1 {
			return 0, errOverflow
		}
		return a / b, nil
	}
	return 0, fmt.Errorf("unknown operator %q", op)
}

// Exec runs the statement: the right side is computed first, then the
// entry is read (for ++, --, +=, -=) and written. A missing entry is 0, so
// ++ makes it 1, as Perl's does. Assigning an undefined value deletes the
// entry.
func (s *Stmt) Exec(env Env) error {
	if err := s.exec(env); err != nil {
		return fmtErr(s.pos, s.key, err)
	}
	return nil
}

func (s *Stmt) exec(env Env) error {
	var rhs Value
	if s.rhs != nil {
		v, err := s.rhs.eval(env)
		if err != nil {
			return err
		}
		rhs = v
	}
	key, err := s.target.key(env)
	if err != nil {
		return err
	}
	if s.op == "=" {
		return env.SetState(key, rhs)
	}
	if c, ok := env.(Counter); ok {
		return s.add(c, env, key, rhs)
	}
	cur, err := operand(env.State(key), s.target.off)
	if err != nil {
		return err
	}
	var r int64
	switch s.op {
	case "++":
		r, err = arith("+", cur, 1)
	case "--":
		r, err = arith("-", cur, 1)
	case "+=", "-=":
		var d int64
		if d, err = operand(rhs, s.target.off); err == nil {
			r, err = arith(s.op[:1], cur, d)
		}
	}
	if err != nil {
		var ee *EvalError
		if errors.As(err, &ee) {
			return err
		}
		return evalErr(s.target.off, "%v", err)
	}
	return env.SetState(key, Int(r))
}

// add runs ++, --, += or -= as one AddState, with the errors the
// read-and-write path gives. One difference: x -= -9223372036854775808 is
// an overflow even where x is negative (the delta itself is outside
// int64).
func (s *Stmt) add(c Counter, env Env, key []string, rhs Value) error {
	delta := int64(1)
	switch s.op {
	case "--":
		delta = -1
	case "+=", "-=":
		d, err := operand(rhs, s.target.off)
		if err != nil {
			// The entry is checked first, as the read-and-write path
			// does: only read here, to report the same error.
			if _, cerr := operand(env.State(key), s.target.off); cerr != nil {
				return cerr
			}
			return err
		}
		if s.op == "-=" {
			if d == math.MinInt64 {
				return evalErr(s.target.off, "%v", errOverflow)
			}
			d = -d
		}
		delta = d
	}
	err := c.AddState(key, delta)
	var ni *NotIntegerError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ni):
		return evalErr(s.target.off, "%q is not an integer", ni.Text)
	case errors.Is(err, errOverflow):
		return evalErr(s.target.off, "%v", errOverflow)
	}
	return err
}

// fmtErr places err in the config; it stays errors.Is-able, so a caller
// can tell a state it could not reach (actions.ErrUnavailable) from a
// mistake of the expression.
func fmtErr(pos srcpos.Pos, key string, err error) error {
	return srcpos.Errorf(pos, key, "%w", err)
}
