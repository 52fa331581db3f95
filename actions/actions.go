// Package actions holds the contract between detectors and whatever a
// successful knock sets in motion. A detector emits an Event; the engine
// (actions/engine) turns it into commands. Nothing here knows about packets.
package actions

import (
	"net/netip"
	"time"
)

// Event is a completed knock. It is the only thing detectors and actions share.
type Event struct {
	Door string     // config section name of the door that opened
	Addr netip.Addr // address to open for (the knocker's, already validated)
	Port uint16     // requested port; 0 when the door fixes it
	Time time.Time  // time of the completing packet; the clock in replay
}

// Logf is the logging seam injected into every component. Messages are
// knockd-compatible texts without timestamp or trailing newline.
type Logf func(format string, args ...any)

// Discard is a Logf that drops everything.
func Discard(string, ...any) {}
