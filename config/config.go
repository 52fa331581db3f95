// Package config holds what every config dialect shares: source positions and
// errors that carry them (formats/srcpos, shared with the formats), so an
// admin can jump straight to the bad line, and the raw key = value lines of
// a section.
package config

import "github.com/doorward/doorward/formats/srcpos"

// Pos, Error and List are formats/srcpos's: one position type for configs
// and formats alike.
type (
	Pos   = srcpos.Pos
	Error = srcpos.Error
	List  = srcpos.List
)

// Errorf builds an *Error at pos.
func Errorf(pos Pos, key, format string, args ...any) *Error {
	return srcpos.Errorf(pos, key, format, args...)
}

// Errors flattens err into its positioned errors; a plain error becomes one
// entry without a position.
func Errors(err error) []*Error { return srcpos.Errors(err) }

// Param is one "key = value" line as written, with its place, for a section
// whose meaning is decided by the code that reads it (a door of a protocol
// other than knockd's).
type Param struct {
	Key   string
	Value string
	Pos   Pos
}
