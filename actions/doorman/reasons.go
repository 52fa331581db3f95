package doorman

// Why a doorman knock is refused, as the metrics label it (actions.Tally).
// The protocol's checks are split between the detector, which refuses
// what the packet itself gives away (doormand's order: lengths, guest,
// port, address, HMAC, replay), and this action, which refuses what it
// cannot open; both tell the same Tally with these reasons, and
// detectors/doorman declares them all (detectors.Protocol.Reasons).
const (
	ReasonBadPacket      = "bad_packet"          // not "<port> <group> <tag> <hash>"
	ReasonUnknownGuest   = "unknown_guest"       // no such group in the guest list
	ReasonPortNotAllowed = "port_not_allowed"    // the guest may not open that port
	ReasonAddrNotAllowed = "address_not_allowed" // nor from that address
	ReasonBadHMAC        = "bad_hmac"            // the digest is not the guest's secret's
	ReasonReplay         = "replay"              // the digest is in the hash archive
	ReasonNoArchive      = "hash_archive_closed" // nothing could remember the knock
	ReasonNoState        = "state_unavailable"   // the shared hash archive cannot be reached
	ReasonTooMany        = "too_many_knocks"     // MaxOpen knocks in progress
	ReasonNoIPv4Dst      = "no_ipv4_destination" // no address for the scripts' $4
	ReasonJournal        = "journal_error"       // the rule could not be journaled
	ReasonScript         = "script_failed"       // firewall-add failed
)

// Reasons are every reason a doorman knock is refused for.
var Reasons = []string{
	ReasonBadPacket, ReasonUnknownGuest, ReasonPortNotAllowed, ReasonAddrNotAllowed, ReasonBadHMAC,
	ReasonReplay, ReasonNoArchive, ReasonNoState, ReasonTooMany, ReasonNoIPv4Dst, ReasonJournal, ReasonScript,
}
