package expr

import (
	"strconv"
)

type kind uint8

const (
	undef kind = iota
	intKind
	strKind
)

// Value is what an expression computes: undefined (a state entry that does
// not exist, a field the knock does not carry), an integer, or a string.
// The zero Value is undefined.
//
// Whether a string counts as a number is decided by its content, not by
// where it came from: "22" from a knock field, a state entry or a quoted
// literal behaves as 22 everywhere (see Int).
type Value struct {
	k kind
	i int64
	s string
}

// Undefined is the value of a missing state entry.
func Undefined() Value { return Value{} }

// Int returns the integer i.
func Int(i int64) Value { return Value{k: intKind, i: i} }

// Str returns the string s. A string that spells an integer is kept as a
// string (its text is what a key or a command sees) but computes as that
// integer.
func Str(s string) Value { return Value{k: strKind, s: s} }

// FromText is how field values and stored state come in: text that spells
// a decimal integer becomes an Int, anything else a Str.
func FromText(s string) Value {
	if i, ok := parseInt(s); ok {
		return Int(i)
	}
	return Str(s)
}

// Defined reports whether v is not undefined.
func (v Value) Defined() bool { return v.k != undef }

// Int returns v as an integer: undefined is 0, a string is a number only
// if it is an optional '-' and decimal digits that fit in 64 bits.
func (v Value) Int() (int64, bool) {
	switch v.k {
	case undef:
		return 0, true
	case intKind:
		return v.i, true
	}
	return parseInt(v.s)
}

// String renders v as a key, a state entry or a command argument would
// see it: "" for undefined, decimal for integers.
func (v Value) String() string {
	switch v.k {
	case intKind:
		return strconv.FormatInt(v.i, 10)
	case strKind:
		return v.s
	}
	return ""
}

// GoString makes test failures readable.
func (v Value) GoString() string {
	switch v.k {
	case intKind:
		return strconv.FormatInt(v.i, 10)
	case strKind:
		return strconv.Quote(v.s)
	}
	return "undef"
}

// Truth is Perl's: undefined, 0, "" and "0" are false, the rest true.
func (v Value) Truth() bool {
	switch v.k {
	case undef:
		return false
	case intKind:
		return v.i != 0
	}
	return v.s != "" && v.s != "0"
}

func boolValue(b bool) Value {
	if b {
		return Int(1)
	}
	return Int(0)
}

// ParseInt reads text as the language reads a stored entry (parseInt).
// The state layer's counters (actions.Values.Add) read entries by the same
// rule, so ++ through a counter and through a read and a write agree on
// what is a number.
func ParseInt(s string) (int64, bool) { return parseInt(s) }

// parseInt accepts exactly -?[0-9]+ within int64: no '+', no blanks, no
// hex, so "10.1.1.1" and " 7" are strings.
func parseInt(s string) (int64, bool) {
	d := s
	if len(d) > 0 && d[0] == '-' {
		d = d[1:]
	}
	if d == "" || len(d) > 20 {
		return 0, false
	}
	for i := 0; i < len(d); i++ {
		if d[i] < '0' || d[i] > '9' {
			return 0, false
		}
	}
	i, err := strconv.ParseInt(s, 10, 64)
	return i, err == nil
}
