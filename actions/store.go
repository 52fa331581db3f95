package actions

import (
	"errors"
	"strconv"
	"time"
)

// DoorEntry is one open door as the state layer keeps it, so that a door
// opened before a crash, a restart or (with a shared backend) on another
// host is still closed on time: the rendered stop command and when it is
// due. Addr is the knocker's address as the stop command was rendered for
// it (the journal's on-disk field, kept as text for old journals).
type DoorEntry struct {
	ID   uint64 // assigned by the store, increasing across restarts
	Door string // door key
	Name string // door name for logs
	Addr string // knocker address (rendered)
	Stop string // rendered stop command line
	// Set is the nftables set holding the door's element for Addr
	// (formats/nftset syntax), deleted when the door closes; "" for none.
	// The element carries its own kernel timeout, so one the daemon never
	// deleted (killed, power lost) is gone by Due anyway.
	Set      string
	Due      time.Time // when the stop command is due (stored in UTC)
	Failures int       // how many times the stop command failed so far
	// Opened and Port are for knockd --status only: nothing closes a door
	// by them, so an entry journaled before they were recorded (or by a
	// caller that does not know them) keeps them zero, which reads
	// "unknown".
	Opened time.Time // when the door opened: the knock's time (stored in UTC)
	Port   uint16    // the port the door opens, where it opens one (doorman)
}

// Doors is the part of the state layer that records open doors: the
// journal of the embedded backend (actions/journal). Each method is one
// atomic step, so a networked backend implements it with one operation.
type Doors interface {
	// OpenDoor records e as open and returns it with its ID. Run the start
	// command only after a nil error: a door the store does not know of
	// could never be closed after a crash.
	OpenDoor(e DoorEntry) (DoorEntry, error)
	// UpdateDoor records a new Due and Failures for the open entry e.ID.
	UpdateDoor(e DoorEntry) error
	// CloseDoor forgets entry id: its stop command succeeded or was given up.
	CloseDoor(id uint64) error
	// OpenDoors lists the open entries in ID order.
	OpenDoors() []DoorEntry
}

// Store is the durable-state layer: everything the daemon must remember
// across a restart (and, with a shared backend, across a fleet of hosts)
// goes through it, so a backend is one package and every protocol works
// with every backend. actions/filestore is the embedded backend over the
// files of the state directory; the runtime creates one Store and hands it
// to the protocols.
//
// Every operation that must be atomic is one call (Spend, Add, OpenDoor):
// a caller never reads, decides and writes back, because between its read
// and its write another goroutine, or another host sharing the backend,
// could do the same, and a replayed knock would be accepted twice or a
// counter lose an increment. A networked backend implements each call with
// one atomic operation (a script, SET NX, INCRBY).
//
// Token spaces and value spaces are declared by their users (Space): what
// a space guards decides how much it must remember and for how long, and a
// networked backend needs exactly that to bound and expire its keys. Open
// a Ring or HashArchive space once the config that declares it is accepted
// (the detectors' Commit): opening may create or resize a file. Opening a
// OneTimeLines space only reads its file.
type Store interface {
	Doors
	// Tokens opens the token space sp, creating it or changing its size
	// as needed, and says what it did (for the log). Opening a space that
	// is open already returns another handle on the same tokens, so a
	// reload that keeps a space keeps what it remembers.
	Tokens(sp Space) (Tokens, SpaceInfo, error)
	// Values opens the value space sp.
	Values(sp Space) (Values, error)
}

// Layout is how a backend keeps a token space. The embedded backend keeps
// each in an existing on-disk format; a networked backend may keep them
// all alike (a key per token, expiring after Space.Keep), except
// OneTimeLines, whose tokens are lines of a file it only reads.
type Layout int

const (
	// Ring remembers the newest Space.Size tokens, the oldest out first:
	// the port-span spent store (StateDir/Name).
	Ring Layout = iota
	// HashArchive is doormand's hash archive at Space.File: a token goes
	// to the slot its digest gives, evicting that slot's token, as
	// doormand does, so the file stays readable by doormand.
	HashArchive
	// OneTimeLines is a knockd one-time sequence file at Space.File: a
	// token is a line's sequence (formats/sequence.Format); spending it
	// marks its line used, as knockd does. The file is the list of valid
	// tokens as well as the record of spent ones.
	OneTimeLines
)

// Space declares a token or value space.
type Space struct {
	// Name identifies the space across restarts and hosts
	// ("portspan.spent", a hash archive's path).
	Name string
	// File is where the embedded backend keeps it: a path, or "" for
	// Name in the state directory.
	File   string
	Layout Layout // token spaces only
	// Size is how many tokens (or values) the space must remember at
	// least; a backend may evict beyond it. 0: no bound of the user's
	// (the backend's default).
	Size int
	// Keep is how long a token or value must be remembered after it was
	// last written: what it guards expires by then, so a networked
	// backend expires it too. 0: as long as Size allows.
	Keep time.Duration
	// Sync: a spend is on stable storage before Spend returns (a knock
	// acts only once its record survives a power loss). Without it a
	// crash of the daemon keeps the record, a power loss may not
	// (doormand's mmap).
	Sync bool
}

// SpaceInfo says what opening a space did, for the log.
type SpaceInfo struct {
	Created bool // the space was missing (or unusable) and was made anew, empty
	Resized bool // the space had another size: From records, Kept of them kept
	From    int
	Kept    int
}

// Tokens is an open token space. Safe for concurrent use.
type Tokens interface {
	// Spend records tokens as spent at now, in one atomic step, and says
	// whether they were fresh. A knock that carries several tokens (parts
	// of its ciphertext) is fresh only if none was spent before, and then
	// all are recorded; a replay records nothing, returns Fresh false and
	// when the token was first spent.
	//
	// A non-nil error means the record may not be durable; Fresh still
	// says what the space knew (a backend that recorded the tokens in
	// memory still refuses their replay until it restarts). The caller
	// decides: refuse the knock (fail closed) or accept it and log.
	Spend(now time.Time, tokens ...[]byte) (Spent, error)
	// Close releases the handle; the space stays open while another
	// handle on it is.
	Close() error
}

// Spent is the outcome of Spend.
type Spent struct {
	Fresh bool
	At    time.Time // a replay: when a token was first spent (zero if unknown)
}

// Values is an open value space: strings by key path, and counters. Safe
// for concurrent use.
type Values interface {
	// Value returns the value at key.
	Value(key []string) (string, bool, error)
	// SetValue sets key to v, written at now.
	SetValue(key []string, v string, now time.Time) error
	// DeleteValue removes key.
	DeleteValue(key []string) error
	// Add adds delta to the counter at key (a missing key is 0) and
	// returns the new value, in one atomic step, so concurrent knocks (or
	// hosts) never lose an increment. A value that is not a decimal
	// integer is a *NotCounterError and is left alone; a result outside
	// int64 is ErrOverflow.
	Add(key []string, delta int64, now time.Time) (int64, error)
	// Sync makes every write so far durable. A backend may buffer writes
	// until Sync (the embedded one rewrites its file here, once per knock
	// rather than per statement); a networked one writes through and
	// returns nil. A caller acts on what it wrote only after a nil Sync.
	Sync() error
	// Close releases the space.
	Close() error
}

// NotCounterError is Add on a value that is not a decimal integer.
type NotCounterError struct{ Value string }

func (e *NotCounterError) Error() string { return strconv.Quote(e.Value) + " is not an integer" }

// ErrOverflow is Add with a result outside int64.
var ErrOverflow = errors.New("integer overflow")

// ErrUnavailable is wrapped by the errors of a shared backend that cannot
// reach its server. The backend logs each change between reachable and
// unreachable once; its callers refuse the knock (fail closed: a token
// that cannot be checked against the other hosts' may be a replay) and
// need not log it again per knock.
var ErrUnavailable = errors.New("shared state unavailable")
