package daemon

import (
	"golang.org/x/sys/unix"

	"github.com/doorward/doorward/config/knockd"
	"github.com/doorward/doorward/internal/caps"
)

// keepCaps are the capabilities a serving daemon keeps; docs/systemd.md
// lists what needs which per firewall backend, and the unit's
// CapabilityBoundingSet is the same two.
//
//   - CAP_NET_RAW: an interface that goes away is reopened (live.go,
//     reopen), a new AF_PACKET socket; iptables-legacy commands open a raw
//     socket too.
//   - CAP_NET_ADMIN: every firewall change, by a start or stop command
//     (iptables, nft, ipset) or over netlink by the daemon itself.
//
// Everything else goes, from the bounding set too: a command root runs
// gets its capabilities from the bounding set, so a doorman script or a
// System line cannot do more than open and close the firewall either.
var keepCaps = caps.Of(unix.CAP_NET_RAW, unix.CAP_NET_ADMIN)

// dropCapabilities keeps keepCaps, and in file mode CAP_DAC_READ_SEARCH if
// the daemon has it: the followed log is reopened after every rotation,
// and where syslog writes it as its own user (rsyslog on Ubuntu:
// syslog:adm 0640) root reads it only through that capability. A daemon
// that does not have it (the unit does not give it) is not given it.
func dropCapabilities(cfg *knockd.Config) error {
	keep := keepCaps
	if cfg.Options.LogTail != "" {
		keep |= caps.Of(unix.CAP_DAC_READ_SEARCH)
	}
	return caps.Keep(keep)
}
