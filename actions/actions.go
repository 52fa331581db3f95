// Package actions holds the contract between detectors and whatever a
// successful knock sets in motion. A detector emits an Event; the engine
// (actions/engine) or a protocol's own action turns it into commands.
// Nothing here knows about packets.
package actions

import (
	"net/netip"
	"time"
)

// EventKind says what an event reports.
type EventKind uint8

const (
	// Knock: a knock completed; open the door for Addr.
	Knock EventKind = iota
	// Connect: the client a door was opened for started its connection
	// (doorman's broad-to-narrow rule step): a SYN from Addr:SrcPort to Port.
	Connect
)

// Event is a completed knock, or a later step of one. It is the only thing
// detectors and actions share. Every field is typed (addresses as
// netip.Addr, numbers as integers): the detector decoded and validated the
// knock, and no action parses a field of it again.
type Event struct {
	Kind    EventKind
	Door    string     // unique door key (section name, "#n" for repeats)
	Addr    netip.Addr // address to open for (already validated)
	Port    uint16     // requested or connected port; 0 when the door fixes it
	SrcPort uint16     // Connect: the client's source port
	Time    time.Time  // time of the completing packet; the clock in replay
	// Sender is the source of the packet that completed the knock. It is
	// Addr unless the knock names another host to open for (a knockdaemon
	// record's IP field); knockdaemon's actions call it LOGIP.
	Sender netip.Addr
	// Dst is the address the knock was sent to (doorman: the knocked
	// address, its scripts' $4); invalid when the detector does not say.
	Dst netip.Addr
	// Guest is the doorman guest whose secret signed the knock, as the
	// guest list spells it; "" for other protocols.
	Guest string
	// Record is the knock's decoded payload, for protocols whose knock
	// carries one (knockdaemon); nil for most events. Actions only read it.
	Record *Record
	// Until, when set, says the knock was made on another host of the
	// door's group, which published it to close at Until (docs/fleet.md):
	// the door opens here for what is left of that, never longer, and is
	// not published again. Zero for a knock seen here.
	Until time.Time
}

// Opened is told of each door a knock seen on this host opened (Until
// zero), when it opened, and when it is due to close: ev is the knock,
// Due the absolute time its stop command is due. The runtime publishes
// the opening of a door that names a Group to the other hosts of the
// group. It must not block: it is called on the action's goroutine.
type Opened func(ev Event, due time.Time)

// MaxFlags bounds a Record's FLAGn fields: FLAG0 to FLAG31.
const MaxFlags = 32

// Record is the content of a knock that carries one: knockdaemon's record
// (IP, PORT, TIME, FLAG0…FLAG31, CHECKSUM), decoded and verified by the
// detector: numbers and an address, never payload bytes. Has says which
// fields the knock's layout had; the others are zero and mean nothing.
type Record struct {
	Has      RecordFields
	IP       netip.Addr // IPv4
	Port     uint16
	Time     uint32
	Flags    [MaxFlags]uint8
	Checksum uint8
}

// RecordFields is a set of a Record's fields.
type RecordFields uint64

const (
	HasIP RecordFields = 1 << iota
	HasPort
	HasTime
	HasChecksum
	hasFlag0 // FLAGn is hasFlag0 << n: see HasFlag
)

// HasFlag is FLAGn's bit, for 0 <= n < MaxFlags.
func HasFlag(n int) RecordFields { return hasFlag0 << n }

// Logf is the logging seam injected into every component. Messages are
// knockd-compatible texts without timestamp or trailing newline.
type Logf func(format string, args ...any)

// Discard is a Logf that drops everything.
func Discard(string, ...any) {}

// Tell calls o, if set, for a door ev opened until due: only for a knock
// seen here, so an opening delivered by the group is never published back.
func (o Opened) Tell(ev Event, due time.Time) {
	if o != nil && ev.Until.IsZero() {
		o(ev, due)
	}
}
