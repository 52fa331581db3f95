// Package srcpos holds source positions and the errors that carry them,
// for every text a Doorward program reads: config dialects and the file and
// text formats (one-time sequence files, the condition language). It is a
// leaf, so a format can report file:line without importing a config reader.
package srcpos

import (
	"errors"
	"fmt"
	"strings"
)

// Pos is a place in a config file. Line is 1-based; 0 means "the whole file".
type Pos struct {
	File string
	Line int
}

func (p Pos) String() string {
	if p.Line == 0 {
		return p.File
	}
	return fmt.Sprintf("%s:%d", p.File, p.Line)
}

// Error is one problem at one place. Key is the directive involved, if any.
type Error struct {
	Pos Pos
	Key string
	Err error
}

func (e *Error) Error() string {
	if e.Key != "" {
		return fmt.Sprintf("%s: %s: %v", e.Pos, e.Key, e.Err)
	}
	return fmt.Sprintf("%s: %v", e.Pos, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf builds an *Error at pos.
func Errorf(pos Pos, key, format string, args ...any) *Error {
	return &Error{Pos: pos, Key: key, Err: fmt.Errorf(format, args...)}
}

// List collects every error of a file so the admin fixes them in one pass
// instead of one per restart.
type List []*Error

// Add appends e (ignoring nil).
func (l *List) Add(e *Error) {
	if e != nil {
		*l = append(*l, e)
	}
}

// Err returns nil for an empty list, so callers can `return cfg, errs.Err()`.
func (l List) Err() error {
	if len(l) == 0 {
		return nil
	}
	return l
}

func (l List) Error() string {
	var b strings.Builder
	for i, e := range l {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

// Unwrap exposes every error to errors.Is and errors.As.
func (l List) Unwrap() []error {
	out := make([]error, len(l))
	for i, e := range l {
		out[i] = e
	}
	return out
}

// Errors flattens err into its positioned errors; a plain error becomes one
// entry without a position.
func Errors(err error) []*Error {
	var l List
	if errors.As(err, &l) {
		return l
	}
	var e *Error
	if errors.As(err, &e) {
		return []*Error{e}
	}
	if err == nil {
		return nil
	}
	return []*Error{{Err: err}}
}
