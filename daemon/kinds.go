package daemon

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/doorward/doorward/actions"
	"github.com/doorward/doorward/actions/command"
	"github.com/doorward/doorward/actions/journal"
	"github.com/doorward/doorward/config/knockd"
	"github.com/doorward/doorward/detectors"
)

// Kind is one knock protocol: how its doors are detected and, unless it
// uses knockd's Start_Command/Stop_Command engine, what a knock does. Each
// protocol registers itself from an init() in a kind_*.go file, so adding
// one touches no shared code. The table is read-only after init.
type Kind struct {
	// Detector builds the detector for every door of the kind, validating
	// the doors' directives (errors carry file:line).
	Detector func(doors []*knockd.Door, env *Env) (detectors.Detector, error)
	// Action builds what the kind's events do. nil: the command engine
	// (knockd's start/stop commands, with the journal).
	Action func(doors []*knockd.Door, env *Env) (Action, error)
	// Sections are further section Types this kind reads (port-span doors
	// read their "action" sections): they are passed to Detector and
	// Action along with the kind's doors, and are not doors themselves.
	Sections []string
}

// sourceSections are section Types read by a packet source, not by a kind.
var sourceSections = map[string]bool{"logformat": true}

// Env is what a kind's detector and action may use.
type Env struct {
	Logf actions.Logf
	// Key is the door's unique key, to put in Event.Door.
	Key func(*knockd.Door) string
	// RulesChanged tells the daemon a detector's Rules changed, so the
	// dispatch index and capture filter are rebuilt.
	RulesChanged func()
	// Replay is set when time comes from a capture: no real waiting, no
	// reading of the host's sockets.
	Replay bool
	// Journal records open doors; nil in replay. Shared with the engine.
	Journal *journal.Journal
	// Store is the durable-state layer (its Doors are Journal's when
	// there is one): the file backend on the state directory live, in
	// memory in replay and --check. Protocols open their spaces in it.
	Store actions.Store
	// Run runs shell command lines (the engine's runner).
	Run command.Runner
	// MaxSources bounds each per-source table ([options] MaxSources; 0:
	// the protocol's default). LogRate bounds traffic-driven log lines a
	// second ([options] LogRate; 0: the default).
	MaxSources int
	LogRate    float64
	// CommandTimeout is [options] Command_Timeout (0: the default), for
	// kinds that run commands other than through Run (doorman scripts).
	CommandTimeout time.Duration
	// StateCache is [options] StateCache: the file that keeps port-span
	// actions' state(…) across restarts ("" keeps it in memory). Replay
	// never opens it.
	StateCache string
	// StateDir is the daemon's state directory (the journal's), where
	// detectors keep durable anti-replay stores; "" in replay and --check,
	// which keep them in memory.
	StateDir string
	// Ifaces are the capture interfaces (-i, else [options] Interface):
	// with exactly one, it is $1 of doorman scripts for doors without
	// their own Interface, as doormand passes its configured interface.
	Ifaces []string
}

// Action is the action side of a kind that does more than run a start and
// a stop command (doorman's broad → narrow → delete lifecycle, knockdaemon's
// conditions and state). The daemon calls it from one goroutine.
type Action interface {
	// Handle takes one event for the kind's doors. It must not block for
	// long: slow work (scripts, waiting for a connection) runs elsewhere or
	// is driven by Advance.
	Handle(ctx context.Context, ev actions.Event)
	// Advance does whatever is due by now: every second in live mode, at
	// each packet's time in replay.
	Advance(ctx context.Context, now time.Time)
	// Next is when Advance next has work; replay runs out the clock with it.
	Next() (t time.Time, ok bool)
	// Reconfigure applies a reloaded config's doors of this kind; doors
	// already open keep what they were opened with.
	Reconfigure(doors []*knockd.Door) error
	// Close closes every door the action opened (SIGTERM, end of replay).
	Close(ctx context.Context)
}

var kinds = map[string]Kind{}

// registerKind is called from init; it panics on misuse, as a registry
// should, so a bad build cannot start.
func registerKind(name string, k Kind) {
	if name == "" || k.Detector == nil {
		panic("daemon: registerKind needs a name and a Detector")
	}
	if _, dup := kinds[name]; dup {
		panic("daemon: kind " + name + " registered twice")
	}
	kinds[name] = k
}

// kindName maps a door's Type to its kind: "" is knockd's sequence door.
func kindName(d *knockd.Door) string {
	if d.Type == "" {
		return "sequence"
	}
	return d.Type
}

func unknownKind(d *knockd.Door) error {
	have := slices.Sorted(maps.Keys(kinds))
	return fmt.Errorf("%s: Type: unknown door type %q (have: %s)", d.Pos, d.Type, strings.Join(have, ", "))
}
