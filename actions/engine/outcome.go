package engine

import "github.com/doorward/doorward/actions"

// Outcome is what the engine made of a knock for one of its doors. The
// daemon counts them per door for its metrics; the engine keeps no count
// itself, so a reload that replaces the door table loses none.
type Outcome uint8

const (
	// Accepted: the door opens, or, already open, stays open longer.
	Accepted        Outcome = iota
	RefusedMapped           // an IPv4-mapped IPv6 address
	RefusedFamily           // no start command for the knocker's address family
	RefusedFull             // already open for MaxOpenPerDoor addresses
	RefusedCooldown         // in its Cooldown, or too many doors in cooldown
	RefusedBusy             // being opened or closed for that address
	RefusedJournal          // the journal could not record it
	RefusedOverload         // MaxInFlight commands running already
	// NumOutcomes sizes an array indexed by Outcome.
	NumOutcomes
)

// reasons are the outcomes' names as metric label values.
var reasons = [NumOutcomes]string{
	Accepted:        "accepted",
	RefusedMapped:   "ipv4_mapped",
	RefusedFamily:   "no_command_for_family",
	RefusedFull:     "door_full",
	RefusedCooldown: "cooldown",
	RefusedBusy:     "busy",
	RefusedJournal:  "journal_error",
	RefusedOverload: "too_many_commands",
}

// Reason is o's label value: "accepted" or why the knock was refused.
func (o Outcome) Reason() string {
	if o < NumOutcomes {
		return reasons[o]
	}
	return "unknown"
}

// OnKnock has f told, on the engine's goroutine, the outcome of every
// event for a door in the engine's table. f must not block.
func (e *Engine) OnKnock(f func(door string, o Outcome)) { e.onKnock = f }

// tallyEv counts ev's outcome, unless another host of the door's group
// published it: that knock was counted there.
func (e *Engine) tallyEv(ev actions.Event, o Outcome) {
	if ev.Until.IsZero() {
		e.tally(ev.Door, o)
	}
}

func (e *Engine) tally(door string, o Outcome) {
	if e.onKnock != nil {
		e.onKnock(door, o)
	}
}
