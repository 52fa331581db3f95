// Package daemon wires a loaded config to sources, detectors and actions,
// for live capture and for offline replay. cmd/knockd only parses flags and
// calls in here, so the whole lifecycle is testable in-process.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/netip"
	"slices"
	"time"

	"github.com/doorward/doorward/actions"
	"github.com/doorward/doorward/actions/engine"
	"github.com/doorward/doorward/actions/filestore"
	"github.com/doorward/doorward/config/knockd"
	"github.com/doorward/doorward/detectors"
	"github.com/doorward/doorward/detectors/logtail"
	"github.com/doorward/doorward/formats/nftset"
)

// plan is everything built from one config: replaced whole on reload.
type plan struct {
	cfg    *knockd.Config
	kinds  []string                      // protocols with doors, sorted
	dets   map[string]detectors.Detector // by protocol name
	disp   *detectors.Dispatcher
	doors  map[string]engine.Door    // doors served by the command engine, by key
	kindOf map[string]string         // door key → protocol name
	byKind map[string][]*knockd.Door // doors (and sections) of protocols with their own actions.Action
	groups *groupPlan                // grouped doors (groups.go)

	maxTimeout    time.Duration // longest Seq_Timeout
	maxCmdTimeout time.Duration
	dirty         bool // a detector's rules changed: reindex and refilter
	// warnings are about valid doors that will not do all an admin may
	// expect (a family without commands); --check prints them, the daemon
	// logs them at start.
	warnings []string
	// hints name a newer directive that would serve a valid door better;
	// only --check prints them.
	hints []string
}

// newPlan builds and validates every door of cfg. route receives each
// event with the kind of its door.
func newPlan(cfg *knockd.Config, env *Env, route func(kind string, ev actions.Event)) (*plan, error) {
	keys := cfg.Keys()
	p := &plan{
		cfg:    cfg,
		dets:   map[string]detectors.Detector{},
		doors:  map[string]engine.Door{},
		kindOf: map[string]string{},
		byKind: map[string][]*knockd.Door{},
	}
	e := *env
	withStore(&e)
	e.Key = func(d *knockd.Door) string { return keys[d] }
	e.MaxSources, e.LogRate = cfg.Options.MaxSources, float64(cfg.Options.LogRate)
	e.CommandTimeout = cfg.Options.CommandTimeout
	denv := detectorEnv(&e, func() { p.dirty = true })

	groups := map[string][]*knockd.Door{} // protocol name → its doors and sections
	var errs []error
	// Log formats are read by the log source, but a config is only
	// accepted (at start, by --check, on reload) if they are valid too.
	if _, err := logtail.Formats(cfg); err != nil {
		errs = append(errs, err)
	}
	for _, d := range cfg.Doors {
		if sourceSections[d.Type] {
			continue
		}
		if owner, ok := detectors.SectionOwner(d.Type); ok {
			groups[owner.Name] = append(groups[owner.Name], d)
			if !owner.Commands {
				p.byKind[owner.Name] = append(p.byKind[owner.Name], d)
			}
			continue
		}
		proto, ok := detectors.Lookup(d.Type)
		if !ok {
			errs = append(errs, unknownType(d))
			continue
		}
		if d.Type != "" {
			// An alias (an older spelling) becomes the protocol's name, so
			// its own folders see one Type. "" stays: it is how knockd's
			// model spells a door without a Type line.
			d.Type = proto.Name
		}
		groups[proto.Name] = append(groups[proto.Name], d)
		p.kindOf[keys[d]] = proto.Name
		if !proto.Commands {
			p.byKind[proto.Name] = append(p.byKind[proto.Name], d)
			continue
		}
		p.warnings = append(p.warnings, d.Warnings()...)
		p.hints = append(p.hints, d.Hints()...)
		p.doors[keys[d]] = engine.Door{
			Name:       d.Name,
			Start:      [2]string{d.Start(false), d.Start(true)},
			Stop:       [2]string{d.Stop(false), d.Stop(true)},
			Set:        [2]nftset.Ref{d.NftSet, d.NftSet6},
			CmdTimeout: d.CmdTimeout,
			Cooldown:   d.Cooldown,
		}
		p.maxTimeout = max(p.maxTimeout, d.SeqTimeout)
		p.maxCmdTimeout = max(p.maxCmdTimeout, d.CmdTimeout)
	}
	gp, gerrs := planGroups(cfg, keys, p.kindOf)
	p.groups = gp
	errs = append(errs, gerrs...)
	for name, doors := range groups {
		proto, _ := detectors.Lookup(name)
		if _, ok := actions.Lookup(name); !ok && !proto.Commands {
			// A build that lists a protocol's detector but not its action.
			errs = append(errs, fmt.Errorf("door type %s: no action registered for it in this build", name))
			continue
		}
		det, err := proto.Detector(doors, denv)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		p.dets[name] = det
		p.kinds = append(p.kinds, name)
	}
	slices.Sort(p.kinds)
	if err := errors.Join(errs...); err != nil {
		p.close() // the detectors that were built
		return nil, err
	}
	dets := make([]detectors.Detector, len(p.kinds))
	for i, name := range p.kinds {
		dets[i] = p.dets[name]
	}
	p.disp = detectors.NewDispatcher(dets, func(ev actions.Event) { route(p.kindOf[ev.Door], ev) })
	return p, nil
}

// doorReasons maps the key of every door of the plan, of every protocol,
// to the reasons its knocks can be refused for, as the metrics count
// them: its protocol's Reasons, and the command engine's for a protocol
// whose knocks run commands.
func (p *plan) doorReasons() map[string][]string {
	out := make(map[string][]string, len(p.kindOf))
	for key, kind := range p.kindOf {
		proto, _ := detectors.Lookup(kind)
		var reasons []string
		if proto.Commands {
			reasons = engineReasons()
		}
		out[key] = append(reasons, proto.Reasons...)
	}
	return out
}

// startPlan builds cfg's plan and commits it: at start-up and in replay,
// where there is no running plan to keep.
func startPlan(cfg *knockd.Config, env *Env, route func(kind string, ev actions.Event)) (*plan, error) {
	p, err := newPlan(cfg, env, route)
	if err != nil {
		return nil, err
	}
	if err := p.commit(); err != nil {
		p.close()
		return nil, err
	}
	return p, nil
}

// commit opens what the plan's detectors need on disk (their Commit, see
// detectors/lifecycle.go). newPlan touches no durable file, so a config
// rejected by any check leaves the running plan's files alone; commit is
// called only once the whole config is accepted. On error the caller
// closes p and keeps the old config (live.swap reopens its files).
func (p *plan) commit() error {
	for _, name := range p.kinds {
		if c, ok := p.dets[name].(detectors.Committer); ok {
			if err := c.Commit(); err != nil {
				return err
			}
		}
	}
	return nil
}

// close releases what the plan's detectors hold (files, after Commit): p
// was replaced, rejected or only checked, or the daemon stops. Idempotent.
func (p *plan) close() {
	for _, name := range p.kinds {
		if c, ok := p.dets[name].(io.Closer); ok {
			c.Close()
		}
	}
}

// adopter is a detector that can take over another's attempts in progress.
type adopter interface{ Adopt(old detectors.Detector) }

// poller is a detector with files to watch (one-time sequences).
type poller interface{ Poll() }

// adopt takes over old's knocks in progress for unchanged doors.
func (p *plan) adopt(old *plan) {
	for name, det := range p.dets {
		if a, ok := det.(adopter); ok && old.dets[name] != nil {
			a.Adopt(old.dets[name])
		}
	}
}

// settle reindexes dispatch after a detector's rules changed and reports
// whether the capture filter must be rebuilt too.
func (p *plan) settle() bool {
	if !p.dirty {
		return false
	}
	p.dirty = false
	p.disp.Reindex()
	return true
}

// tick is replay's once-a-second housekeeping: expire attempts, re-read
// edited files. It reports whether the filter must be rebuilt. Live mode
// polls once a second and spreads the expiry (sweepParts).
func (p *plan) tick(now time.Time) bool {
	p.disp.Expire(now)
	return p.poll()
}

// poll re-reads edited files (one-time sequences). It reports whether the
// filter must be rebuilt.
func (p *plan) poll() bool {
	for _, name := range p.kinds {
		if pl, ok := p.dets[name].(poller); ok {
			pl.Poll()
		}
	}
	return p.settle()
}

// rules is the capture filter's input: every rule without a Target is
// limited to the host's own addresses, as knockd's "dst host" clauses are.
func (p *plan) rules(local []netip.Addr) []detectors.Rule {
	rules := p.disp.Rules()
	for i := range rules {
		if len(rules[i].Dst) == 0 {
			rules[i].Dst = local
		}
	}
	return rules
}

// actionSet holds the Actions of kinds that have one. Unlike plans they
// live as long as the daemon, so a reload never strands a door they opened.
type actionSet struct {
	env  *Env
	acts map[string]actions.Action
}

// apply creates the Actions p needs and reconfigures the existing ones.
func (s *actionSet) apply(p *plan) error {
	if s.acts == nil {
		s.acts = map[string]actions.Action{}
	}
	return p.applyActions(s.env,
		func(name string) actions.Action { return s.acts[name] },
		func(_ string, a actions.Action, doors []*knockd.Door) error { return a.Reconfigure(doors) },
		func(name string, a actions.Action) { s.acts[name] = a })
}

// applyActions walks the kinds that have an Action: one already running
// (have returns it) gets p's doors through reconf, whatever they are — a
// kind that lost all its doors keeps its Action so the doors it opened
// still close; otherwise, if p has doors of the kind, a new Action is built
// and handed to add.
func (p *plan) applyActions(env *Env, have func(string) actions.Action, reconf func(string, actions.Action, []*knockd.Door) error, add func(string, actions.Action)) error {
	var errs []error
	for _, name := range actions.Registered() {
		newAction, _ := actions.Lookup(name)
		doors := p.byKind[name]
		if a := have(name); a != nil {
			if err := reconf(name, a, doors); err != nil {
				errs = append(errs, err)
			}
			continue
		}
		if len(doors) == 0 {
			continue
		}
		a, err := p.newAction(newAction, doors, env)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		add(name, a)
	}
	return errors.Join(errs...)
}

// newAction builds kind k's Action for doors, with p's door keys and
// limits.
func (p *plan) newAction(newAction actions.New, doors []*knockd.Door, env *Env) (actions.Action, error) {
	keys := p.cfg.Keys()
	e := *env
	withStore(&e)
	e.Key = func(d *knockd.Door) string { return keys[d] }
	e.MaxSources, e.LogRate = p.cfg.Options.MaxSources, float64(p.cfg.Options.LogRate)
	e.StateCache = p.cfg.Options.StateCache
	return newAction(doors, &e)
}

// checkActions builds every kind's Action for p's doors and throws them
// away: it validates what only an Action reads (port-span action
// sections) before a config is accepted. With Replay set, no Action
// touches state files or the journal.
func (p *plan) checkActions() error {
	acts := &actionSet{env: &Env{Logf: actions.Discard, Replay: true, Store: filestore.Memory()}}
	err := acts.apply(p)
	acts.close(context.Background())
	return err
}

// next is the earliest time any Action has work.
func (s *actionSet) next() (t time.Time, ok bool) {
	for _, a := range s.sorted() {
		if n, has := a.Next(); has && (!ok || n.Before(t)) {
			t, ok = n, true
		}
	}
	return t, ok
}

func (s *actionSet) advance(ctx context.Context, now time.Time) {
	for _, a := range s.sorted() {
		a.Advance(ctx, now)
	}
}

func (s *actionSet) close(ctx context.Context) {
	for _, a := range s.sorted() {
		a.Close(ctx)
	}
}

// sorted lists the Actions by kind name, so replays are reproducible.
func (s *actionSet) sorted() []actions.Action {
	out := make([]actions.Action, 0, len(s.acts))
	for _, name := range slices.Sorted(maps.Keys(s.acts)) {
		out = append(out, s.acts[name])
	}
	return out
}
