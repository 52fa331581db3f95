package fwknop

import "github.com/doorward/doorward/actions/engine"

// Why an fwknop knock is refused, as the metrics label it (actions.Tally).
// The detector refuses what an authenticated packet asks for that its
// stanza does not allow, in fwknopd's order; the command engine that
// opens the door refuses what it cannot open (engine.Outcome's reasons).
// A packet that authenticates with no stanza's key is counted as bad_hmac
// on every stanza it was tried against: it is no knock of any one door,
// but an admin watching a door wants to see it being guessed at. Packets
// that are not SPA at all (fail the precheck) or come from a source no
// stanza lists are counted by no door.
const (
	ReasonExpired        = "access_expired"    // the stanza's ACCESS_EXPIRE has passed
	ReasonBadHMAC        = "bad_hmac"          // not the stanza's HMAC key
	ReasonDecrypt        = "decrypt_failed"    // the HMAC held but the payload did not decrypt or parse
	ReasonReplay         = "replay"            // the digest is in the replay cache
	ReasonNoState        = "state_unavailable" // the shared replay cache cannot be reached
	ReasonTooOld         = "too_old"           // older than MAX_SPA_PACKET_AGE
	ReasonCommand        = "command_message"   // a command message (type 0)
	ReasonBadAccess      = "bad_access"        // the access field does not parse
	ReasonSourceRequired = "source_required"   // 0.0.0.0 under REQUIRE_SOURCE_ADDRESS
	ReasonUsername       = "username_mismatch" // not REQUIRE_USERNAME
	ReasonNAT            = "nat_unsupported"   // a NAT access message
	ReasonPort           = "port_not_allowed"  // a port outside OPEN_PORTS, or in RESTRICT_PORTS
)

// Reasons are every reason an fwknop knock is refused for: the
// detector's, then the command engine's.
var Reasons = append([]string{
	ReasonExpired, ReasonBadHMAC, ReasonDecrypt, ReasonReplay, ReasonNoState, ReasonTooOld,
	ReasonCommand, ReasonBadAccess, ReasonSourceRequired, ReasonUsername, ReasonNAT, ReasonPort,
}, engineReasons()...)

func engineReasons() []string {
	var out []string
	for o := engine.Accepted + 1; o < engine.NumOutcomes; o++ {
		out = append(out, o.Reason())
	}
	return out
}
