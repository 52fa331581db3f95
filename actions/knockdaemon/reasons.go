package knockdaemon

// Why a port-span knock is refused, as the metrics label it
// (actions.Tally). The detector refuses what the decoded record gives
// away, this action what it cannot carry out; both tell the same Tally,
// and detectors/knockdaemon declares every reason
// (detectors.Protocol.Reasons). A window of hits that does not decrypt or
// check out is no knock (every hit tries one), so it is not counted.
const (
	ReasonNotUnicast   = "not_unicast"       // the record names no unicast address
	ReasonIPMismatch   = "ip_mismatch"       // not the sender, under Require_IP_Match
	ReasonReplay       = "replay"            // its ciphertext was accepted before
	ReasonSpentStore   = "spent_store_error" // it could not be recorded as spent
	ReasonTooMany      = "too_many_commands" // MaxInFlight knocks' commands running
	ReasonNoAction     = "condition_false"   // no action of the door chose it
	ReasonTooManyLater = "too_many_delayed"  // MaxPending delayed commands waiting
	ReasonStateError   = "state_error"       // the state could not be saved
	ReasonJournalError = "journal_error"     // a delayed command could not be journaled
)

// Reasons are every reason a port-span knock is refused for.
var Reasons = []string{
	ReasonNotUnicast, ReasonIPMismatch, ReasonReplay, ReasonSpentStore,
	ReasonTooMany, ReasonNoAction, ReasonTooManyLater, ReasonStateError, ReasonJournalError,
}
