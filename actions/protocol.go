package actions

import (
	"context"
	"maps"
	"slices"
	"sync/atomic"
	"time"

	"github.com/doorward/doorward/config/knockd"
)

// Action is the action side of a protocol that does more than run a start
// and a stop command (doorman's broad → narrow → delete lifecycle,
// knockdaemon's conditions and state). The runtime calls it from one
// goroutine.
type Action interface {
	// Handle takes one event for the protocol's doors. It must not block
	// for long: slow work (scripts, waiting for a connection) runs
	// elsewhere or is driven by Advance.
	Handle(ctx context.Context, ev Event)
	// Advance does whatever is due by now: every second in live mode, at
	// each packet's time in replay.
	Advance(ctx context.Context, now time.Time)
	// Next is when Advance next has work; replay runs out the clock with it.
	Next() (t time.Time, ok bool)
	// Reconfigure applies a reloaded config's doors of this protocol;
	// doors already open keep what they were opened with.
	Reconfigure(doors []*knockd.Door) error
	// Close closes every door the action opened (SIGTERM, end of replay).
	Close(ctx context.Context)
}

// Runner runs one rendered command line and returns its exit status.
// err is set only when the command could not be run, was killed or ran
// out of time; every caller counts that as a failed command.
// actions/command holds the shell runner and its time limits.
type Runner func(ctx context.Context, line string) (status int, err error)

// Starter is a Runner in two halves: it returns as soon as the command's
// process exists, and wait (called exactly once) returns what the Runner
// would. A command started on the thread that saw the knock needs no other
// thread to be woken first, and on a loaded machine that wake-up is most
// of a knock's latency (docs/benchmark.md).
type Starter func(ctx context.Context, line string) (wait func() (status int, err error))

// Env is what an action may use, from the runtime.
type Env struct {
	Logf Logf
	// Key is the door's unique key, as in Event.Door.
	Key func(*knockd.Door) string
	// Replay is set when time comes from a capture (and in --check): no
	// real waiting, no durable files, no reading of the host's sockets.
	Replay bool
	// Doors records open doors; nil in replay. Shared with the command
	// engine, and the Store's own Doors when live.
	Doors Doors
	// Store is the durable-state layer, where protocols declare their
	// token and value spaces: the file backend on the state directory
	// live, in memory in replay and --check. The runtime always sets it.
	Store Store
	// Run runs shell command lines (the command engine's runner, with
	// [options] Command_Timeout).
	Run Runner
	// MaxSources bounds each per-source table ([options] MaxSources; 0:
	// the protocol's default). LogRate bounds traffic-driven log lines a
	// second ([options] LogRate; 0: the default).
	MaxSources int
	LogRate    float64
	// LogSuppressed, if set, counts the lines LogRate left out (the
	// daemon's metrics); pass it to the rate limiters (CountInto).
	LogSuppressed *atomic.Uint64
	// CommandTimeout is [options] Command_Timeout (0: the default), for
	// actions that run commands other than through Run (doorman scripts).
	CommandTimeout time.Duration
	// StateCache is [options] StateCache: the file that keeps state across
	// restarts ("" keeps it in memory). Replay never opens it.
	StateCache string
	// StateDir is the daemon's state directory (the journal's); "" in
	// replay and --check.
	StateDir string
	// Ifaces are the capture interfaces (-i, else [options] Interface).
	Ifaces []string
	// Tally, if set, hears what became of each knock the action accepts
	// or refuses (the daemon's metrics); nil-safe through Tally.Knock.
	Tally Tally
	// Opened, if set, is told of every door opened by a knock seen on
	// this host, for door groups; an action whose protocol registers
	// Groups calls it (nil-safe through Opened.Tell).
	Opened Opened
	// Latency, if set (live only), is where an action that runs its
	// commands through the command engine records knock-to-command
	// latency (engine.SetLatency), shared with the knockd doors' engine
	// so the daemon reports one figure.
	Latency Latency
}

// Latency records knock-to-command latencies: from the capture time of a
// knock's last packet to its start command's start (the daemon's
// internal/latency histogram).
type Latency interface {
	Record(d time.Duration)
}

// New builds a protocol's Action for its doors (and the sections it
// reads), validating what only the action reads.
type New func(doors []*knockd.Door, env *Env) (Action, error)

// news is filled by init functions and read-only after them.
var news = map[string]New{}

// Register adds the action of protocol name (its detectors.Protocol's
// Name), from the protocol's actions/<name> folder's init. It panics on
// misuse, so a bad build cannot start.
func Register(name string, newAction New) {
	if name == "" || newAction == nil {
		panic("actions: Register needs a name and a constructor")
	}
	if _, dup := news[name]; dup {
		panic("actions: protocol " + name + " registered twice")
	}
	news[name] = newAction
}

// Lookup finds the action constructor protocol name registered.
func Lookup(name string) (New, bool) {
	n, ok := news[name]
	return n, ok
}

// Registered lists the protocols with an action, sorted.
func Registered() []string { return slices.Sorted(maps.Keys(news)) }

// RegisterForTest registers newAction and returns the function that
// removes it, for tests that add a protocol of their own.
func RegisterForTest(name string, newAction New) (unregister func()) {
	Register(name, newAction)
	return func() { delete(news, name) }
}
