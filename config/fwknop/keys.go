package fwknop

import (
	"slices"

	"github.com/doorward/doorward/config/knockd"
)

// Use is what Doorward does with a key fwknopd 2.6.10 knows. Every key of
// fwknopd's own tables is listed, so that a key this package has never
// heard of can be told apart from one it deliberately leaves out.
type Use int

const (
	// Door keys are kept, as written, in every fwknop door's Params for
	// the detector (detectors/fwknop) to validate and use.
	Door Use = iota
	// Loader keys are read here: where the access files are, the capture
	// interface, the include directives.
	Loader
	// Ignored keys are warned about once per config ("not supported") and
	// otherwise ignored; leaving them out never gives anyone more access
	// than fwknopd would.
	Ignored
	// Refused keys make the config fail: ignoring them would open
	// something fwknopd would not (NAT forwarding, sudo-less commands).
	Refused
	// RefusedIfYes keys are Refused when their value is yes (fwknopd's
	// bools: a value starting with Y or y) and Ignored otherwise.
	RefusedIfYes
)

var useNames = [...]string{Door: "door", Loader: "loader", Ignored: "ignored", Refused: "refused", RefusedIfYes: "refused if Y"}

// String is the word the README's key tables use for u.
func (u Use) String() string { return useNames[u] }

// Key is one key of fwknopd.conf or access.conf.
type Key struct {
	Name string
	// Aliases are other spellings fwknopd accepts (REQUIRE_SOURCE).
	Aliases []string
	Use     Use
}

// The access.conf keys of fwknopd 2.6.10 (server/access.c,
// parse_access_file and include_keys_file), in the order of its man page.
var accessKeys = []Key{
	{Name: "SOURCE", Use: Door},
	{Name: "DESTINATION", Use: Door},
	{Name: "OPEN_PORTS", Use: Door},
	{Name: "RESTRICT_PORTS", Use: Door},
	{Name: "KEY", Use: Door},
	{Name: "KEY_BASE64", Use: Door},
	{Name: "HMAC_KEY", Use: Door},
	{Name: "HMAC_KEY_BASE64", Use: Door},
	{Name: "HMAC_DIGEST_TYPE", Use: Door},
	{Name: "ENCRYPTION_MODE", Use: Door},
	{Name: "FW_ACCESS_TIMEOUT", Use: Door},
	{Name: "MAX_FW_TIMEOUT", Use: Door},
	{Name: "ACCESS_EXPIRE", Use: Door},
	{Name: "ACCESS_EXPIRE_EPOCH", Use: Door},
	{Name: "REQUIRE_USERNAME", Use: Door},
	{Name: "REQUIRE_SOURCE_ADDRESS", Aliases: []string{"REQUIRE_SOURCE"}, Use: Door},
	{Name: "CMD_CYCLE_OPEN", Use: Door},
	{Name: "CMD_CYCLE_CLOSE", Use: Door},
	{Name: "CMD_CYCLE_TIMER", Use: Door},
	{Name: "ENABLE_CMD_EXEC", Use: Door},
	{Name: "CMD_EXEC_USER", Use: Door},
	{Name: "CMD_EXEC_GROUP", Use: Door},
	{Name: "ENABLE_CMD_SUDO_EXEC", Use: RefusedIfYes},
	{Name: "CMD_SUDO_EXEC_USER", Use: Ignored},
	{Name: "CMD_SUDO_EXEC_GROUP", Use: Ignored},
	{Name: "GPG_HOME_DIR", Use: Ignored},
	{Name: "GPG_EXE", Use: Ignored},
	{Name: "GPG_DECRYPT_ID", Use: Ignored},
	{Name: "GPG_DECRYPT_PW", Use: Ignored},
	{Name: "GPG_ALLOW_NO_PW", Use: Ignored},
	{Name: "GPG_REQUIRE_SIG", Use: Ignored},
	{Name: "GPG_DISABLE_SIG", Use: Ignored},
	{Name: "GPG_IGNORE_SIG_VERIFY_ERROR", Use: Ignored},
	{Name: "GPG_REMOTE_ID", Use: Ignored},
	{Name: "GPG_FINGERPRINT_ID", Use: Ignored},
	{Name: "FORCE_NAT", Use: Refused},
	{Name: "FORCE_SNAT", Use: Refused},
	{Name: "FORCE_MASQUERADE", Use: RefusedIfYes},
	{Name: "FORWARD_ALL", Use: RefusedIfYes},
	{Name: "DISABLE_DNAT", Use: Ignored},
	{Name: dirInclude, Use: Loader},
	{Name: dirIncludeFolder, Use: Loader},
	{Name: dirIncludeKeys, Use: Loader},
}

// The include directives of access.conf.
const (
	dirInclude       = "%include"
	dirIncludeFolder = "%include_folder"
	dirIncludeKeys   = "%include_keys"
)

// keysFileKeys are the only keys fwknopd takes from a %include_keys file.
var keysFileKeys = []string{
	"KEY", "KEY_BASE64", "HMAC_KEY_BASE64", "HMAC_KEY",
	"GPG_DECRYPT_ID", "GPG_DECRYPT_PW", "GPG_ALLOW_NO_PW", "GPG_REQUIRE_SIG",
	"GPG_DISABLE_SIG", "GPG_IGNORE_SIG_VERIFY_ERROR", "GPG_REMOTE_ID", "GPG_FINGERPRINT_ID",
}

// The fwknopd.conf keys of fwknopd 2.6.10 (server/cmd_opts.h, config_map),
// for every firewall and capture it can be built with, plus 2.6.11's
// ALLOW_ANY_USER_AGENT; the order is config_map's.
var serverKeys = []Key{
	{Name: "CONFIG_FILE", Use: Ignored},
	{Name: "OVERRIDE_CONFIG", Use: Ignored},
	{Name: "PCAP_INTF", Use: Loader},
	{Name: "PCAP_FILE", Use: Ignored},
	{Name: "ENABLE_PCAP_PROMISC", Use: Ignored},
	{Name: "PCAP_FILTER", Use: Door},
	{Name: "PCAP_DISPATCH_COUNT", Use: Ignored},
	{Name: "PCAP_LOOP_SLEEP", Use: Ignored},
	{Name: "ENABLE_PCAP_ANY_DIRECTION", Use: Ignored},
	{Name: "EXIT_AT_INTF_DOWN", Use: Ignored},
	{Name: "MAX_SNIFF_BYTES", Use: Ignored},
	{Name: "ENABLE_SPA_PACKET_AGING", Use: Door},
	{Name: "MAX_SPA_PACKET_AGE", Use: Door},
	{Name: "ENABLE_DIGEST_PERSISTENCE", Use: Door},
	{Name: "RULES_CHECK_THRESHOLD", Use: Ignored},
	{Name: "CMD_EXEC_TIMEOUT", Use: Door},
	{Name: "ENABLE_SPA_OVER_HTTP", Use: Ignored},
	{Name: "ALLOW_ANY_USER_AGENT", Use: Ignored},
	{Name: "ENABLE_TCP_SERVER", Use: Ignored},
	{Name: "TCPSERV_PORT", Use: Ignored},
	{Name: "ENABLE_UDP_SERVER", Use: Door},
	{Name: "UDPSERV_PORT", Use: Door},
	{Name: "UDPSERV_SELECT_TIMEOUT", Use: Ignored},
	{Name: "ENABLE_NFQ_CAPTURE", Use: Ignored},
	{Name: "NFQ_INTERFACE", Use: Ignored},
	{Name: "NFQ_PORT", Use: Ignored},
	{Name: "NFQ_TABLE", Use: Ignored},
	{Name: "NFQ_CHAIN", Use: Ignored},
	{Name: "NFQ_QUEUE_NUMBER", Use: Ignored},
	{Name: "NFQ_LOOP_SLEEP", Use: Ignored},
	{Name: "LOCALE", Use: Ignored},
	{Name: "SYSLOG_IDENTITY", Use: Ignored},
	{Name: "SYSLOG_FACILITY", Use: Ignored},
	{Name: "ENABLE_X_FORWARDED_FOR", Use: Ignored},
	{Name: "ENABLE_DESTINATION_RULE", Use: Door},
	{Name: "ENABLE_RULE_PREPEND", Use: Ignored},
	{Name: "ENABLE_NAT_DNS", Use: Ignored},
	{Name: "ENABLE_FIREWD_FORWARDING", Use: Ignored},
	{Name: "ENABLE_FIREWD_LOCAL_NAT", Use: Ignored},
	{Name: "ENABLE_FIREWD_SNAT", Use: Ignored},
	{Name: "SNAT_TRANSLATE_IP", Use: Ignored},
	{Name: "ENABLE_FIREWD_OUTPUT", Use: Ignored},
	{Name: "FLUSH_FIREWD_AT_INIT", Use: Ignored},
	{Name: "FLUSH_FIREWD_AT_EXIT", Use: Ignored},
	{Name: "FIREWD_INPUT_ACCESS", Use: Ignored},
	{Name: "FIREWD_OUTPUT_ACCESS", Use: Ignored},
	{Name: "FIREWD_FORWARD_ACCESS", Use: Ignored},
	{Name: "FIREWD_DNAT_ACCESS", Use: Ignored},
	{Name: "FIREWD_SNAT_ACCESS", Use: Ignored},
	{Name: "FIREWD_MASQUERADE_ACCESS", Use: Ignored},
	{Name: "ENABLE_FIREWD_COMMENT_CHECK", Use: Ignored},
	{Name: "ENABLE_IPT_FORWARDING", Use: Ignored},
	{Name: "ENABLE_IPT_LOCAL_NAT", Use: Ignored},
	{Name: "ENABLE_IPT_SNAT", Use: Ignored},
	{Name: "ENABLE_IPT_OUTPUT", Use: Ignored},
	{Name: "FLUSH_IPT_AT_INIT", Use: Ignored},
	{Name: "FLUSH_IPT_AT_EXIT", Use: Ignored},
	{Name: "IPT_INPUT_ACCESS", Use: Ignored},
	{Name: "IPT_OUTPUT_ACCESS", Use: Ignored},
	{Name: "IPT_FORWARD_ACCESS", Use: Ignored},
	{Name: "IPT_DNAT_ACCESS", Use: Ignored},
	{Name: "IPT_SNAT_ACCESS", Use: Ignored},
	{Name: "IPT_MASQUERADE_ACCESS", Use: Ignored},
	{Name: "ENABLE_IPT_COMMENT_CHECK", Use: Ignored},
	{Name: "FLUSH_IPFW_AT_INIT", Use: Ignored},
	{Name: "FLUSH_IPFW_AT_EXIT", Use: Ignored},
	{Name: "IPFW_START_RULE_NUM", Use: Ignored},
	{Name: "IPFW_MAX_RULES", Use: Ignored},
	{Name: "IPFW_ACTIVE_SET_NUM", Use: Ignored},
	{Name: "IPFW_EXPIRE_SET_NUM", Use: Ignored},
	{Name: "IPFW_EXPIRE_PURGE_INTERVAL", Use: Ignored},
	{Name: "IPFW_ADD_CHECK_STATE", Use: Ignored},
	{Name: "PF_ANCHOR_NAME", Use: Ignored},
	{Name: "PF_EXPIRE_INTERVAL", Use: Ignored},
	{Name: "FWKNOP_RUN_DIR", Use: Loader},
	{Name: "FWKNOP_CONF_DIR", Use: Ignored},
	{Name: "ACCESS_FILE", Use: Loader},
	{Name: "ACCESS_FOLDER", Use: Loader},
	{Name: "FWKNOP_PID_FILE", Use: Ignored},
	{Name: "DIGEST_FILE", Use: Door},
	{Name: "DIGEST_DB_FILE", Use: Ignored},
	{Name: "GPG_HOME_DIR", Use: Ignored},
	{Name: "GPG_EXE", Use: Ignored},
	{Name: "SUDO_EXE", Use: Ignored},
	{Name: "FIREWALL_EXE", Use: Ignored},
	{Name: "VERBOSE", Use: Ignored},
	{Name: "AFL_PKT_FILE", Use: Ignored},
	{Name: "FAULT_INJECTION_TAG", Use: Ignored},
}

// AccessKeys are the access.conf keys and directives fwknopd knows, with
// what this reader does with each.
func AccessKeys() []Key { return cloneKeys(accessKeys) }

// ServerKeys are the fwknopd.conf keys fwknopd knows, with what this reader
// does with each.
func ServerKeys() []Key { return cloneKeys(serverKeys) }

// DoorKeys are the keys a fwknop door's Params may hold, whether the door
// came from an access.conf or from a `Type = fwknop` section of our own
// config: the access.conf keys and the fwknopd.conf keys of Use Door.
// The detector accepts exactly these (case-insensitively, in our config).
func DoorKeys() []knockd.Key {
	var out []knockd.Key
	for _, k := range slices.Concat(accessKeys, serverKeys) {
		if k.Use == Door {
			out = append(out, knockd.Key{Name: k.Name, Aliases: slices.Clone(k.Aliases)})
		}
	}
	return out
}

func cloneKeys(ks []Key) []Key {
	out := make([]Key, len(ks))
	for i, k := range ks {
		out[i] = Key{Name: k.Name, Aliases: slices.Clone(k.Aliases), Use: k.Use}
	}
	return out
}

// lookup finds name (case-sensitively, as fwknopd's strcmp does) among
// ks and their aliases.
func lookup(ks []Key, name string) (Key, bool) {
	for _, k := range ks {
		if k.Name == name || slices.Contains(k.Aliases, name) {
			return k, true
		}
	}
	return Key{}, false
}
