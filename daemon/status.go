package daemon

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/doorward/doorward/actions/journal"
	"github.com/doorward/doorward/config/knockd"
	"github.com/doorward/doorward/formats/nftset"
)

// Status is knockd --status: the open doors as the journal records them,
// as a table or (asJSON) one JSON object. It reads the journal files
// rather than asking the running daemon: the journal is what closes the
// doors after a crash, so it is the truth whether or not a daemon runs
// (doors a dead daemon left open are listed too), and reading it needs no
// socket, no protocol and no code on the daemon's packet path. It exits 0,
// or 1 when the state directory cannot be read (the path and the reason
// on stderr).
func Status(o Options, asJSON bool) int {
	dir, cfg, ok := o.statusDir()
	if !ok {
		return 1
	}
	s, err := journal.Read(dir)
	if err != nil {
		fmt.Fprintf(o.Stderr, "knockd: %v\n", err)
		return 1
	}
	now := time.Now()
	shared := probeSharedState(cfg, now)
	if asJSON {
		err = writeStatusJSON(o.Stdout, s, shared, now)
	} else {
		err = writeStatus(o.Stdout, s, shared, now, time.Local)
	}
	if err != nil {
		fmt.Fprintf(o.Stderr, "knockd: %v\n", err)
		return 1
	}
	return 0
}

// statusDir is the daemon's state directory: --state-dir, else the
// config's StateDir, else the default. Without -c and without
// /etc/knockd.conf it is the default (the daemon could not have run with
// another); a config that does not load is an error, printed.
// The config is returned when it was read (nil otherwise).
func (o *Options) statusDir() (string, *knockd.Config, bool) {
	if o.StateDir != "" {
		o.defaults()
		return o.StateDir, nil, true
	}
	given := o.Config != ""
	o.defaults()
	if _, err := os.Stat(o.Config); !given && errors.Is(err, os.ErrNotExist) {
		return knockd.DefaultStateDir, nil, true
	}
	cfg, ok := o.load()
	if !ok {
		return "", nil, false
	}
	return o.stateDir(cfg), cfg, true
}

// sharedStatus is the shared state backend as --status saw it: one ping
// from this process, as the daemon's own pings see it (the metrics show
// the daemon's view).
type sharedStatus struct {
	Kind   string // "redis"
	Addr   string // the server, without a password
	Err    error  // nil: it answered
	Groups []groupStatus
}

// groupStatus is a door group of the config as the shared state holds it:
// the doors on every host of the group open through it.
type groupStatus struct {
	Name  string
	Doors []string // the config's doors in the group, by name
	Open  int      // openings not yet expired, from every host
	Err   error    // the group could not be read
}

// probeSharedState pings [options] State once and reads the config's door
// groups; nil without State (the local files), or without a config read.
func probeSharedState(cfg *knockd.Config, now time.Time) *sharedStatus {
	if cfg == nil {
		return nil
	}
	ro, ok, err := sharedState(&cfg.Options)
	if err != nil || !ok {
		return nil
	}
	groups := map[string][]string{}
	for _, d := range cfg.Doors {
		if d.Group != "" {
			groups[d.Group] = append(groups[d.Group], d.Name)
		}
	}
	gs, err := probeState(ro, groups, now)
	return &sharedStatus{Kind: "redis", Addr: ro.Addr(), Err: err, Groups: gs}
}

// writeSharedState is the table's last lines with [options] State: the
// backend's answer, then each door group.
func writeSharedState(w io.Writer, sh *sharedStatus) {
	if sh == nil {
		return
	}
	state := "answers"
	if sh.Err != nil {
		state = "does not answer (" + sh.Err.Error() + "): knocks that need it are refused"
	}
	fmt.Fprintf(w, "Shared state: %s %s %s.\n", sh.Kind, sh.Addr, state)
	for _, g := range sh.Groups {
		open := fmt.Sprintf("%d open on the hosts of the group", g.Open)
		if g.Err != nil {
			open = "cannot be read (" + g.Err.Error() + ")"
		}
		fmt.Fprintf(w, "Door group %s (%s): %s.\n", g.Name, strings.Join(g.Doors, ", "), open)
	}
}

// statusDoors are s's doors, earliest due first: the order they close in.
func statusDoors(s journal.Snapshot) []journal.Entry {
	ds := slices.Clone(s.Doors)
	slices.SortStableFunc(ds, func(a, b journal.Entry) int {
		return cmp.Or(a.Due.Compare(b.Due), cmp.Compare(a.ID, b.ID))
	})
	return ds
}

// entrySet is the nftables set e's door was opened through, and the port
// to show: the journal's, else the set's own (a set of address . port).
// ok is false for a door opened by commands (or a set the journal spells
// in a way this knockd cannot read, shown as none).
func entrySet(e journal.Entry) (ref nftset.Ref, port uint16, ok bool) {
	port = e.Port
	if e.Set == "" {
		return nftset.Ref{}, port, false
	}
	ref, err := nftset.Parse(e.Set)
	if err != nil {
		return nftset.Ref{}, port, false
	}
	if port == 0 {
		port = ref.Port
	}
	return ref, port, true
}

// remaining is the time until due in whole seconds, rounded up (a door
// due in 0.4 s is not shown as closing in 0 s) and 0 once due.
func remaining(due, now time.Time) int64 {
	d := due.Sub(now)
	if d <= 0 {
		return 0
	}
	return int64((d + time.Second - 1) / time.Second)
}

const statusTime = "2006-01-02 15:04:05"

// writeStatus prints the table for people, times in loc, and the shared
// state's line.
func writeStatus(w io.Writer, s journal.Snapshot, sh *sharedStatus, now time.Time, loc *time.Location) error {
	ew := &errWriter{w: w}
	writeDoors(ew, s, now, loc)
	writeSharedState(ew, sh)
	return ew.err
}

// writeDoors is the table of open doors, or why there is none.
func writeDoors(ew *errWriter, s journal.Snapshot, now time.Time, loc *time.Location) {
	switch {
	case s.NoDir:
		fmt.Fprintf(ew, "No doors open: state directory %s does not exist (knockd has never run with it).\n", s.Dir)
		return
	case s.NoFile:
		fmt.Fprintf(ew, "No doors open: state directory %s has no journal (knockd has never run with it).\n", s.Dir)
		return
	}
	running := ""
	switch {
	case !s.DaemonKnown:
		running = "whether knockd runs is unknown (no /proc/locks)"
	case s.DaemonPID != 0:
		running = fmt.Sprintf("knockd is running (pid %d)", s.DaemonPID)
	default:
		running = "knockd is not running"
	}
	fmt.Fprintf(ew, "State directory %s: %s.\n", s.Dir, running)
	ds := statusDoors(s)
	if len(ds) == 0 {
		fmt.Fprintln(ew, "No doors open.")
	} else {
		// The SET column is shown only on hosts with a door opened
		// through an nftables set.
		sets := slices.ContainsFunc(ds, func(e journal.Entry) bool { _, _, ok := entrySet(e); return ok })
		tw := tabwriter.NewWriter(ew, 0, 0, 2, ' ', 0)
		head := "DOOR\tADDRESS\tPORT\tOPENED AT\tCLOSES IN\tDUE AT\tFAILURES"
		if sets {
			head += "\tSET"
		}
		fmt.Fprintln(tw, head)
		for _, e := range ds {
			ref, p, hasSet := entrySet(e)
			port, opened := "-", "-"
			if p != 0 {
				port = strconv.Itoa(int(p))
			}
			if !e.Opened.IsZero() {
				opened = e.Opened.In(loc).Format(statusTime)
			}
			in := (time.Duration(remaining(e.Due, now)) * time.Second).String()
			if !e.Due.After(now) {
				// A running daemon is running its stop command; a
				// stopped one runs it when it starts.
				in = "closing"
				if s.DaemonKnown && s.DaemonPID == 0 {
					in = "overdue"
				}
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d", e.Name, e.Addr, port, opened, in, e.Due.In(loc).Format(statusTime), e.Failures)
			switch {
			case sets && hasSet:
				fmt.Fprintf(tw, "\t%s %s %s", ref.Family, ref.Table, ref.Set)
			case sets:
				fmt.Fprint(tw, "\t-")
			}
			fmt.Fprintln(tw)
		}
		tw.Flush()
		fmt.Fprintf(ew, "%d open.\n", len(ds))
		if s.DaemonKnown && s.DaemonPID == 0 {
			fmt.Fprintln(ew, "These doors stay open until knockd starts again: it closes them before it accepts a knock.")
		}
	}
	if s.Damaged > 0 {
		fmt.Fprintf(ew, "Warning: %d damaged journal records were ignored (knockd saves them as %s at its next start).\n", s.Damaged, journal.DamagedName)
	}
}

// statusJSON is --status --json: field names are an interface for
// scripts, so they only ever gain fields. Times are RFC 3339 in UTC.
type statusJSON struct {
	StateDir       string           `json:"state_dir"`
	Journal        bool             `json:"journal"`        // false: knockd never ran with this state directory
	DaemonRunning  *bool            `json:"daemon_running"` // null: cannot be told
	DaemonPID      int              `json:"daemon_pid,omitempty"`
	Now            string           `json:"now"`
	Doors          []statusDoorJSON `json:"doors"` // earliest due first; [] when none
	DamagedRecords int              `json:"damaged_records"`
	// SharedState is [options] State's backend; absent without State
	// (the local files, which need no answer from anyone).
	SharedState *sharedStateJSON `json:"shared_state,omitempty"`
}

type sharedStateJSON struct {
	Kind    string `json:"kind"`    // redis
	Address string `json:"address"` // as the text form and the log name it, no password
	Up      bool   `json:"up"`      // it answered this process's ping
	Error   string `json:"error,omitempty"`
	// Groups are the config's door groups, by name; absent without any,
	// or when the shared state did not answer.
	Groups []groupJSON `json:"groups,omitempty"`
}

type groupJSON struct {
	Name  string   `json:"name"`
	Doors []string `json:"doors"` // the config's doors in the group
	Open  int      `json:"open"`  // openings not yet expired, from every host of the group
	Error string   `json:"error,omitempty"`
}

type statusDoorJSON struct {
	ID               uint64  `json:"id"`
	Door             string  `json:"door"`      // the door's name, as in the log
	Key              string  `json:"door_key"`  // the door's key in the journal
	Address          string  `json:"address"`   // the knocker's address
	Port             *uint16 `json:"port"`      // null: the door has none, or the journal does not say
	OpenedAt         *string `json:"opened_at"` // null: journaled by a knockd that did not record it
	DueAt            string  `json:"due_at"`    // when its stop command runs (next retry after a failure)
	RemainingSeconds int64   `json:"remaining_seconds"`
	Failures         int     `json:"failures"` // failed runs of its stop command so far
	StopCommand      string  `json:"stop_command"`
	// NftSet is the nftables set the door was opened through; absent for
	// a door opened by commands.
	NftSet *statusSetJSON `json:"nft_set,omitempty"`
}

type statusSetJSON struct {
	Family string `json:"family"` // ip, ip6 or inet
	Table  string `json:"table"`
	Set    string `json:"set"`
}

func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func writeStatusJSON(w io.Writer, s journal.Snapshot, sh *sharedStatus, now time.Time) error {
	out := statusJSON{StateDir: s.Dir, Journal: !s.NoDir && !s.NoFile, Now: rfc3339(now),
		Doors: []statusDoorJSON{}, DamagedRecords: s.Damaged}
	if sh != nil {
		out.SharedState = &sharedStateJSON{Kind: sh.Kind, Address: sh.Addr, Up: sh.Err == nil}
		if sh.Err != nil {
			out.SharedState.Error = sh.Err.Error()
		}
		for _, g := range sh.Groups {
			gj := groupJSON{Name: g.Name, Doors: g.Doors, Open: g.Open}
			if g.Err != nil {
				gj.Error = g.Err.Error()
			}
			out.SharedState.Groups = append(out.SharedState.Groups, gj)
		}
	}
	if s.DaemonKnown || s.NoDir {
		running := s.DaemonPID != 0
		out.DaemonRunning, out.DaemonPID = &running, s.DaemonPID
	}
	for _, e := range statusDoors(s) {
		d := statusDoorJSON{ID: e.ID, Door: e.Name, Key: e.Door, Address: e.Addr, DueAt: rfc3339(e.Due),
			RemainingSeconds: remaining(e.Due, now), Failures: e.Failures, StopCommand: e.Stop}
		ref, port, hasSet := entrySet(e)
		if port != 0 {
			d.Port = &port
		}
		if hasSet {
			d.NftSet = &statusSetJSON{Family: ref.Family, Table: ref.Table, Set: ref.Set}
		}
		if !e.Opened.IsZero() {
			t := rfc3339(e.Opened)
			d.OpenedAt = &t
		}
		out.Doors = append(out.Doors, d)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false) // stop commands keep their "&&" and ">"
	return enc.Encode(out)
}

// errWriter keeps the first write error, so a table is printed with plain
// Fprintf calls and checked once (stdout closed, a full disk).
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(b []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(b)
	e.err = err
	return n, err
}
