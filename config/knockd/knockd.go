// Package knockd reads the /etc/knockd.conf dialect of Judd Vinet's knockd
// (see ../shared/specs/knockd.md §2–4) into positioned, validated values.
package knockd

import (
	"fmt"
	"time"

	"github.com/doorward/doorward/config"
	"github.com/doorward/doorward/formats/nftset"
	"github.com/doorward/doorward/formats/proto"
	"github.com/doorward/doorward/formats/rotating"
	"github.com/doorward/doorward/formats/sequence"
)

// Defaults from knockd.c (SEQ_TIMEOUT, CMD_TIMEOUT).
const (
	DefaultSeqTimeout = 25 * time.Second
	DefaultCmdTimeout = 10 * time.Second
	DefaultPidFile    = "/var/run/knockd.pid"
	DefaultInterface  = "eth0"
	DefaultStateDir   = "/var/lib/doorward"
	// MaxSequence is knockd's SEQ_MAX.
	MaxSequence = sequence.MaxLen
)

// Knock, Proto, TCP and UDP are the sequence grammar's (formats/sequence),
// named here too because a Door's Sequence is made of them.
type (
	Knock = sequence.Knock
	Proto = sequence.Proto
)

const (
	TCP = sequence.TCP
	UDP = sequence.UDP
)

// Flags is a door's TCPFlags filter. A packet matches when every bit of Set
// is set and no bit of Clear is; bits in neither are "don't care". Bit values
// are the TCP header's (formats/proto: FIN=1 SYN=2 RST=4 PSH=8 ACK=16 URG=32).
type Flags struct {
	Set, Clear proto.TCPFlags
}

// Match reports whether TCP flags f satisfy the filter.
func (fl Flags) Match(f proto.TCPFlags) bool {
	return f&fl.Set == fl.Set && f&fl.Clear == 0
}

// Options is the [options] section.
type Options struct {
	UseSyslog  bool
	LogFile    string
	PidFile    string   // "" means DefaultPidFile
	Interfaces []string // from Interface = a,b or "any"; empty means not set
	StateDir   string   // journal of open doors; "" means DefaultStateDir
	// LogTail is a firewall log to follow as a packet source (knockdaemon's
	// "file mode"); its line formats are [name] sections with
	// Type = logformat. With LogTail set, capture runs only on interfaces
	// given explicitly (-i or Interface).
	LogTail string
	// MaxSources bounds every per-source table (knock attempts, port-span
	// queues, pending doorman knocks); 0 means each protocol's default.
	MaxSources int
	// LogRate bounds the log lines per second that network traffic can
	// cause (Stage, timeouts, bad packets); 0 means the default, and the
	// line after a gap says how many were left out.
	LogRate int
	// CommandTimeout bounds every command the daemon runs (start, stop,
	// System, doorman scripts): at the limit its process group is killed
	// and it counts as failed. 0 means command.DefaultTimeout (30 s).
	CommandTimeout time.Duration
	// StateCache is where per-address action state (knockdaemon's
	// state(...)) is kept across restarts; "" keeps it in memory.
	StateCache string
	// Metrics is where the Prometheus endpoint listens: "host:port" (an IP
	// address or localhost) or "unix:/absolute/path"; "" serves none.
	Metrics string
	// State is the shared state of a fleet: a Redis URL (redis://,
	// rediss://, unix://, as go-redis parses it); "" keeps state in the
	// local files. The rest configure it: a password file, a key prefix
	// ("" is the backend's default), Sentinel addresses and master name.
	State               string
	StatePasswordFile   string
	StatePrefix         string
	StateSentinel       []string
	StateSentinelMaster string
	Pos                 map[string]config.Pos // position of each key given, by canonical name ("LogFile")
}

// Door is one [section] other than [options].
type Door struct {
	Name string
	Pos  config.Pos

	// Type is the protocol, lowercase: "" for a knockd sequence door (the
	// default, and what "Type = sequence" means). Doors of any other type
	// keep their directives raw in Params, in file order, for that
	// protocol's setup to read; the fields below are then unused.
	Type   string
	Params []config.Param

	// Group names the door group the door belongs to, for every protocol
	// (like Type, it is read before the door's own directives): with
	// [options] State, a knock on one member opens the door of the same
	// name on every host whose config has it in the group
	// (docs/fleet.md). "" for none. GroupPos is its line, where the
	// runtime reports a group it cannot serve.
	Group    string
	GroupPos config.Pos

	Sequence         []Knock
	OneTimeSequences string // path; when set, Sequence is the file's first unused line
	// Rotating, when set, derives the sequence from a shared secret and
	// the clock (docs/rotating.md); Sequence is then empty.
	Rotating    *Rotating
	SeqTimeout  time.Duration
	TCPFlags    Flags
	HasTCPFlags bool

	StartCommand  string
	StartCommand6 *string // nil: fall back to StartCommand; "" set: nothing for IPv6
	StopCommand   string
	StopCommand6  *string
	CmdTimeout    time.Duration

	Target string // "" means any local address

	// NftSet and NftSet6 are the nftables sets a knock from an IPv4 or
	// IPv6 address opens the door in (docs/nftables.md): the address goes
	// in with Cmd_Timeout as its timeout. Zero: none. A door may have sets,
	// commands, or both.
	NftSet, NftSet6 nftset.Ref

	// Cooldown ignores further completions of this door from the same
	// address for this long after it opened (knockd PR #87's Seq_Cooldown),
	// so a one-port UDP door does not fire per packet.
	Cooldown time.Duration
}

// Start returns the start command for a knock that arrived over IPv6 or
// not: each family's own, "" if it has none. knockd ran Start_Command for
// IPv6 knockers when Start_Command_6 was not set, rendering an IPv6
// address into an IPv4 command (iptables fails, and so does the stop
// command, for ever); we ignore such knocks and --check warns (Warnings).
func (d *Door) Start(v6 bool) string {
	if v6 {
		if d.StartCommand6 == nil {
			return ""
		}
		return *d.StartCommand6
	}
	return d.StartCommand
}

// Stop is Start's counterpart for the stop command, with the same rule:
// no fallback to the other family's.
func (d *Door) Stop(v6 bool) string {
	if v6 {
		if d.StopCommand6 == nil {
			return ""
		}
		return *d.StopCommand6
	}
	return d.StopCommand
}

// Warnings are what --check says about a command door whose commands do
// not cover both address families, each with the door's file:line: the
// config is valid, but knocks of one family will be ignored, or doors
// opened for it never closed.
func (d *Door) Warnings() []string {
	var w []string
	has6 := d.StartCommand6 != nil && *d.StartCommand6 != ""
	set4, set6 := !d.NftSet.IsZero(), !d.NftSet6.IsZero()
	switch {
	case d.StartCommand != "" && d.StartCommand6 == nil && !set6:
		w = append(w, fmt.Sprintf("%s: [%s]: no Start_Command_6: knocks from IPv6 addresses will be ignored (knockd ran Start_Command for them)", d.Pos, d.Name))
	case d.StartCommand == "" && has6 && !set4:
		w = append(w, fmt.Sprintf("%s: [%s]: no Start_Command: knocks from IPv4 addresses will be ignored", d.Pos, d.Name))
	case d.StartCommand == "" && !has6 && set4 != set6:
		missing := [2]string{"Nft_Set_6", "IPv6"}
		if set6 {
			missing = [2]string{"Nft_Set", "IPv4"}
		}
		w = append(w, fmt.Sprintf("%s: [%s]: no %s: knocks from %s addresses will be ignored", d.Pos, d.Name, missing[0], missing[1]))
	}
	if has6 && d.StopCommand != "" && d.StopCommand6 == nil {
		w = append(w, fmt.Sprintf("%s: [%s]: Start_Command_6 without Stop_Command_6: doors opened for IPv6 addresses will not be closed (knockd ran Stop_Command for them)", d.Pos, d.Name))
	}
	return w
}

// Rotating is a rotating door's Rotating_* directives.
type Rotating struct {
	Secret    string     // path of the file holding the base32 secret
	SecretPos config.Pos // of the Rotating_Secret line, where a bad file is reported
	Period    int        // seconds
	Length    int
	Ports     rotating.Ports
	Mode      rotating.Mode
	// Skew is how many windows either side of the current one are
	// accepted too.
	Skew int
}

// MaxSkew bounds Rotating_Skew: each window accepted is one more
// sequence an attacker's guess may hit.
const MaxSkew = 10

// minGuesses is the fewest sequences a rotating door may have, 2^32: a
// sequence guessed at random must be hopeless.
const minGuesses = 1 << 32

// Hints are what --check says about a valid door a newer directive would
// serve better, each with the door's file:line.
func (d *Door) Hints() []string {
	if d.OneTimeSequences == "" {
		return nil
	}
	return []string{fmt.Sprintf("%s: [%s]: One_Time_Sequences: clients sharing the file fall out of step; Rotating_Secret derives each window's sequence from a shared secret and the clock instead (docs/rotating.md)", d.Pos, d.Name)}
}

// Config is a whole knockd.conf.
type Config struct {
	File    string
	Options Options
	Doors   []*Door
}

// Keys names each door uniquely, for events and logs of open doors: its
// section name, with "#2", "#3"… for later sections of the same name
// (knockd keeps repeated sections as separate doors, and so do we).
func (c *Config) Keys() map[*Door]string {
	seen := map[string]int{}
	keys := make(map[*Door]string, len(c.Doors))
	for _, d := range c.Doors {
		seen[d.Name]++
		k := d.Name
		if n := seen[d.Name]; n > 1 {
			k = fmt.Sprintf("%s#%d", d.Name, n)
		}
		keys[d] = k
	}
	return keys
}
