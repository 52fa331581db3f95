// Package engine turns knock events into commands: it runs a door's start
// command, keeps the rendered stop command as data, and runs it when the
// door's Cmd_Timeout has passed or when the daemon shuts down.
//
// knockd forks a child that sleeps through Cmd_Timeout; a SIGTERM then waits
// for one child and strands the rest, and the door stays open. Here the stop
// command lives in the engine's deadline queue instead, so shutdown can run
// every pending one.
//
// The Engine is not safe for concurrent use: the daemon drives it from one
// goroutine (Live does this for live capture; replay calls it directly with
// packet time as the clock).
package engine

import (
	"container/heap"
	"context"
	"time"

	"github.com/doorward/doorward/actions"
	"github.com/doorward/doorward/actions/command"
)

// Door is what the engine needs of a door: its commands per address family
// (index 0 IPv4, 1 IPv6, already resolved through knockd's _6 fallbacks) and
// how long to keep it open.
type Door struct {
	Name       string // for log lines
	Start      [2]string
	Stop       [2]string
	CmdTimeout time.Duration
}

// Undo is a pending stop command: plain data, so it survives a reload and can
// be persisted.
type Undo struct {
	Door string // door key
	Name string // door name for logs
	Addr string // rendered knocker address for logs
	Line string // rendered stop command
	Due  time.Time
}

// Engine owns the door table and the queue of pending stop commands.
type Engine struct {
	doors   map[string]Door
	pending undoHeap
	run     command.Runner
	logf    actions.Logf
}

// New returns an engine that runs commands with run and logs with logf.
func New(run command.Runner, logf actions.Logf) *Engine {
	if logf == nil {
		logf = actions.Discard
	}
	return &Engine{doors: map[string]Door{}, run: run, logf: logf}
}

// SetDoors replaces the door table (on start and on reload). Pending stop
// commands are kept whatever the new table says: they were rendered when the
// door opened, so a reload can never strand an open door.
func (e *Engine) SetDoors(doors map[string]Door) { e.doors = doors }

// Opening is the part of an event's handling that may run off the engine's
// goroutine: the start command. Finish must be called with its result.
type Opening struct {
	door  string
	name  string
	addr  string
	start string
	stop  string
	wait  time.Duration
}

// Prepare renders the commands for ev. ok is false when the door is unknown
// or has no start command for the event's address family (knockd runs neither
// command then).
func (e *Engine) Prepare(ev actions.Event) (o Opening, ok bool) {
	d, found := e.doors[ev.Door]
	if !found {
		return o, false
	}
	fam := 0
	if ev.Addr.Is6() && !ev.Addr.Is4In6() {
		fam = 1
	}
	if d.Start[fam] == "" {
		return o, false
	}
	return Opening{
		door:  ev.Door,
		name:  d.Name,
		addr:  ev.Addr.WithZone("").String(),
		start: command.Render(d.Start[fam], ev.Addr),
		stop:  command.Render(d.Stop[fam], ev.Addr),
		wait:  d.CmdTimeout,
	}, true
}

// RunStart runs o's start command and logs as knockd does. It touches no
// engine state, so Live runs it on a worker goroutine.
func (e *Engine) RunStart(ctx context.Context, o Opening) {
	e.exec(ctx, o.name, o.start)
}

// Finish schedules o's stop command CmdTimeout after finished, the time the
// start command returned (knockd sleeps after the start command, not from
// the knock).
func (e *Engine) Finish(o Opening, finished time.Time) {
	if o.stop == "" {
		return
	}
	heap.Push(&e.pending, Undo{Door: o.door, Name: o.name, Addr: o.addr, Line: o.stop, Due: finished.Add(o.wait)})
}

// Open handles ev synchronously: start command now, stop command scheduled
// from ev.Time. Replay uses this so a capture always gives the same result.
func (e *Engine) Open(ctx context.Context, ev actions.Event) {
	o, ok := e.Prepare(ev)
	if !ok {
		return
	}
	e.RunStart(ctx, o)
	e.Finish(o, ev.Time)
}

// Due pops every stop command due at or before now, in due order.
func (e *Engine) Due(now time.Time) []Undo {
	var out []Undo
	for len(e.pending) > 0 && !e.pending[0].Due.After(now) {
		out = append(out, heap.Pop(&e.pending).(Undo))
	}
	return out
}

// Next is the time the earliest stop command is due; ok is false if none.
func (e *Engine) Next() (t time.Time, ok bool) {
	if len(e.pending) == 0 {
		return t, false
	}
	return e.pending[0].Due, true
}

// Pending is how many stop commands are waiting.
func (e *Engine) Pending() int { return len(e.pending) }

// Close runs u: logs knockd's "command timeout" line, then the stop command.
func (e *Engine) Close(ctx context.Context, u Undo) {
	e.logf("%s: %s: command timeout", u.Addr, u.Name)
	e.exec(ctx, u.Name, u.Line)
}

// Advance runs every stop command due by now, in order (replay's clock).
func (e *Engine) Advance(ctx context.Context, now time.Time) {
	for _, u := range e.Due(now) {
		e.Close(ctx, u)
	}
}

// CloseAll runs every pending stop command now, earliest first: the
// shutdown path that makes "every door it opened is closed" true.
func (e *Engine) CloseAll(ctx context.Context) {
	for len(e.pending) > 0 {
		e.Close(ctx, heap.Pop(&e.pending).(Undo))
	}
}

func (e *Engine) exec(ctx context.Context, name, line string) {
	if line == "" {
		return
	}
	e.logf("%s: running command: %s", name, line)
	status, err := e.run(ctx, line)
	switch {
	case err != nil:
		e.logf("%s: command failed: %v", name, err)
	case status != 0:
		e.logf("%s: command returned non-zero status code (%d)", name, status)
	}
}

type undoHeap []Undo

func (h undoHeap) Len() int           { return len(h) }
func (h undoHeap) Less(i, j int) bool { return h[i].Due.Before(h[j].Due) }
func (h undoHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *undoHeap) Push(x any)        { *h = append(*h, x.(Undo)) }
func (h *undoHeap) Pop() any {
	old := *h
	u := old[len(old)-1]
	*h = old[:len(old)-1]
	return u
}
