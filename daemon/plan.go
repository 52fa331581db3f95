// Package daemon wires a loaded config to sources, detectors and the action
// engine, for live capture and for offline replay. cmd/knockd only parses
// flags and calls in here, so the whole lifecycle is testable in-process.
package daemon

import (
	"net/netip"
	"time"

	"github.com/doorward/doorward/actions"
	"github.com/doorward/doorward/actions/engine"
	"github.com/doorward/doorward/config/knockd"
	"github.com/doorward/doorward/detectors"
	"github.com/doorward/doorward/detectors/sequence"
	"github.com/doorward/doorward/formats/otp"
)

// plan is everything built from one config: replaced whole on reload.
type plan struct {
	cfg           *knockd.Config
	seq           *sequence.Detector
	disp          *detectors.Dispatcher
	doors         map[string]engine.Door
	maxTimeout    time.Duration // longest Seq_Timeout
	maxCmdTimeout time.Duration
	dirty         bool // a door's sequence changed: reindex and refilter
}

func openOneTime(path string) (sequence.OneTime, error) { return otp.Open(path) }

func newPlan(cfg *knockd.Config, logf actions.Logf, emit func(actions.Event)) (*plan, error) {
	seqDoors, err := sequence.FromConfig(cfg, openOneTime)
	if err != nil {
		return nil, err
	}
	p := &plan{cfg: cfg, doors: make(map[string]engine.Door, len(seqDoors))}
	for i, sd := range seqDoors {
		cd := cfg.Doors[i]
		p.doors[sd.Key] = engine.Door{
			Name:       cd.Name,
			Start:      [2]string{cd.Start(false), cd.Start(true)},
			Stop:       [2]string{cd.Stop(false), cd.Stop(true)},
			CmdTimeout: cd.CmdTimeout,
			Cooldown:   cd.Cooldown,
		}
		p.maxTimeout = max(p.maxTimeout, cd.SeqTimeout)
		p.maxCmdTimeout = max(p.maxCmdTimeout, cd.CmdTimeout)
	}
	p.seq = sequence.New(seqDoors, sequence.Options{Logf: logf, RulesChanged: func() { p.dirty = true }})
	p.disp = detectors.NewDispatcher([]detectors.Detector{p.seq}, emit)
	return p, nil
}

// adopt takes over old's knocks in progress for unchanged doors.
func (p *plan) adopt(old *plan) { p.seq.Adopt(old.seq) }

// settle reindexes dispatch after a door's sequence changed and reports
// whether the capture filter must be rebuilt too.
func (p *plan) settle() bool {
	if !p.dirty {
		return false
	}
	p.dirty = false
	p.disp.Reindex()
	return true
}

// tick is the once-a-second housekeeping: expire attempts, re-read edited
// one-time sequence files. It reports whether the filter must be rebuilt.
func (p *plan) tick(now time.Time) bool {
	p.disp.Expire(now)
	p.seq.Poll()
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
