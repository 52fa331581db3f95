package detectors

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/doorward/doorward/actions"
	"github.com/doorward/doorward/config/knockd"
)

// Protocol is the receiving side of one knock protocol, as its own folder
// registers it (detectors/<name>/setup.go, from init). Every config dialect
// is read into knockd's door model, so a protocol is given its doors as
// *knockd.Door and validates their directives itself. The runtime knows
// protocols only through this registry: adding one touches its own
// folders and one line of package protocols.
type Protocol struct {
	// Name is the door Type the protocol owns, and the name of its
	// folders under detectors/, actions/, config/, formats/ and client/.
	Name string
	// Aliases are older spellings of Name in a door's Type, which still
	// load. "" is the Type of a door without a Type line (knockd's own).
	Aliases []string
	// Sections are further section Types the protocol reads (knockdaemon's
	// "action" sections): they are handed to Detector and to the action
	// along with the protocol's doors, and are not doors themselves.
	Sections []string
	// Detector builds the detector for every door of the protocol,
	// validating their directives (errors carry file:line). It touches no
	// durable file: see Committer.
	Detector func(doors []*knockd.Door, env *Env) (Detector, error)
	// Commands says the protocol's doors are knockd doors whose knocks run
	// their Start_Command and Stop_Command through the runtime's command
	// engine. A protocol without it registers its own action with
	// actions.Register under the same Name.
	Commands bool
	// Groups says the protocol's doors may name a Group (docs/fleet.md):
	// its action opens an opening another host published (actions.Event
	// Until) and tells Env.Opened of the ones it opened itself. A Commands
	// protocol has it through the command engine, whatever this says.
	Groups bool
	// Reasons are the refusal reasons the protocol's detector and action
	// tell Env.Tally (actions.Tally): metric label values, fixed at
	// registration, so the runtime makes every door's counters when a
	// config is loaded and a refused knock costs one atomic add.
	Reasons []string
}

// Env is what a detector may use, from the runtime.
type Env struct {
	Logf actions.Logf
	// Key is the door's unique key, to put in Event.Door.
	Key func(*knockd.Door) string
	// RulesChanged tells the runtime a detector's Rules changed, so the
	// dispatch index and capture filter are rebuilt.
	RulesChanged func()
	// Replay is set when time comes from a capture (and in --check): no
	// real waiting, no durable files, no reading of the host's sockets.
	Replay bool
	// MaxSources bounds each per-source table ([options] MaxSources; 0:
	// the protocol's default). LogRate bounds traffic-driven log lines a
	// second ([options] LogRate; 0: the default).
	MaxSources int
	LogRate    float64
	// LogSuppressed, if set, counts the lines LogRate left out (the
	// daemon's metrics); pass it to the rate limiters (CountInto).
	LogSuppressed *atomic.Uint64
	// StateDir is the daemon's state directory, where detectors keep
	// durable anti-replay stores; "" in replay and --check, which keep
	// them in memory.
	StateDir string
	// Store is the durable-state layer (actions.Store), where a detector
	// spends accepted knocks: the file backend live, in memory in replay
	// and --check. The runtime always sets it.
	Store actions.Store
	// Tally, if set, hears what became of the knocks the detector's
	// checks refuse, with one of the protocol's Reasons (the daemon's
	// metrics); nil-safe through Tally.Knock.
	Tally actions.Tally
}

// protocols is filled by init functions and read-only after them.
var (
	protocols = map[string]Protocol{} // by Name
	types     = map[string]string{}   // Name, alias or section Type → Name
)

// Register adds p to the build's protocols. It is called from init and
// panics on misuse, as a registry should, so a bad build cannot start: a
// protocol without a name or Detector, or a name, alias or section Type
// another protocol already has.
func Register(p Protocol) {
	if p.Name == "" || p.Detector == nil {
		panic("detectors: Register needs a Name and a Detector")
	}
	if _, dup := protocols[p.Name]; dup {
		panic("detectors: protocol " + p.Name + " registered twice")
	}
	all := append(append([]string{p.Name}, p.Aliases...), p.Sections...)
	for i, t := range all {
		owner, taken := types[t]
		if !taken && slices.Contains(all[:i], t) {
			owner, taken = p.Name, true
		}
		if taken {
			panic(fmt.Sprintf("detectors: protocol %s: Type %q is already %s's", p.Name, t, owner))
		}
	}
	for _, t := range all {
		types[t] = p.Name
	}
	protocols[p.Name] = p
}

// Lookup finds the protocol of a door's Type, by name or alias. A section
// Type a protocol reads is not a door Type: Lookup does not find it (see
// SectionOwner).
func Lookup(doorType string) (Protocol, bool) {
	p, ok := protocols[types[doorType]]
	if !ok || slices.Contains(p.Sections, doorType) {
		return Protocol{}, false
	}
	return p, true
}

// SectionOwner finds the protocol that reads sections of Type t, when t
// is one of its Sections.
func SectionOwner(t string) (Protocol, bool) {
	p, ok := protocols[types[t]]
	if !ok || !slices.Contains(p.Sections, t) {
		return Protocol{}, false
	}
	return p, true
}

// Protocols lists the registered protocols by name.
func Protocols() []Protocol {
	out := make([]Protocol, 0, len(protocols))
	for _, name := range slices.Sorted(maps.Keys(protocols)) {
		out = append(out, protocols[name])
	}
	return out
}

// Names is the registered protocols' names, sorted and comma-separated,
// for errors that list what a door's Type may be.
func Names() string {
	return strings.Join(slices.Sorted(maps.Keys(protocols)), ", ")
}

// RegisterForTest registers p and returns the function that removes it,
// for tests that add a protocol of their own.
func RegisterForTest(p Protocol) (unregister func()) {
	Register(p)
	return func() {
		delete(protocols, p.Name)
		for t, name := range types {
			if name == p.Name {
				delete(types, t)
			}
		}
	}
}
