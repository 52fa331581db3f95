package actions

import "time"

// DoorEntry is one open door as the state layer keeps it, so that a door
// opened before a crash, a restart or (with a shared backend) on another
// host is still closed on time: the rendered stop command and when it is
// due. Addr is the knocker's address as the stop command was rendered for
// it (the journal's on-disk field, kept as text for old journals).
type DoorEntry struct {
	ID       uint64    // assigned by the store, increasing across restarts
	Door     string    // door key
	Name     string    // door name for logs
	Addr     string    // knocker address (rendered)
	Stop     string    // rendered stop command line
	Due      time.Time // when the stop command is due (stored in UTC)
	Failures int       // how many times the stop command failed so far
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
