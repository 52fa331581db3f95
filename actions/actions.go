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
// detectors and actions share.
type Event struct {
	Kind    EventKind
	Door    string     // unique door key (section name, "#n" for repeats)
	Addr    netip.Addr // address to open for (already validated)
	Port    uint16     // requested or connected port; 0 when the door fixes it
	SrcPort uint16     // Connect: the client's source port
	Time    time.Time  // time of the completing packet; the clock in replay
	// Values are a protocol's decoded fields (knockdaemon's IP, PORT,
	// FLAG0…, LOGIP), already validated and rendered: integers and
	// addresses only, never raw payload bytes. nil for most events.
	Values map[string]string
}

// Logf is the logging seam injected into every component. Messages are
// knockd-compatible texts without timestamp or trailing newline.
type Logf func(format string, args ...any)

// Discard is a Logf that drops everything.
func Discard(string, ...any) {}
