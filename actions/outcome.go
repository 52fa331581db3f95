package actions

// Outcome is what became of one knock of a door, for the metrics
// (knocks accepted and refused by door and reason).
type Outcome uint8

const (
	// Accepted: the knock opened its door, or kept it open longer.
	Accepted Outcome = iota
	// Refused: the knock did not open its door; a reason says why.
	Refused
)

// Tally hears what became of each knock: the door's key (Event.Door),
// the outcome and, for Refused, the reason, one of the constants the
// protocol declares in its detectors.Protocol's Reasons. A reason is a
// metric label value (lower snake_case, e.g. "bad_hmac"), a fixed string
// of the protocol's, so telling costs no allocation even on the packet
// path where a detector refuses a flood of forged knocks: the runtime
// makes each door's counters when a config is loaded and only adds to
// them here. It is called from the detectors' goroutine and from the
// actions' and must not block. Where a knock is refused decides who
// tells: the detector for what its checks refuse (a bad MAC, a replay),
// the action for what it refuses later (too many doors open).
type Tally func(door string, o Outcome, reason string)

// Knock tells t, if there is one, what became of a knock of door.
func (t Tally) Knock(door string, o Outcome, reason string) {
	if t != nil {
		t(door, o, reason)
	}
}
