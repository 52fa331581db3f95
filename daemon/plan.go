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
)

// plan is everything built from one config: replaced whole on reload.
type plan struct {
	cfg        *knockd.Config
	disp       *detectors.Dispatcher
	doors      map[string]engine.Door
	maxTimeout time.Duration
}

func newPlan(cfg *knockd.Config, logf actions.Logf, emit func(actions.Event)) *plan {
	seqDoors := sequence.FromConfig(cfg)
	doors := make(map[string]engine.Door, len(seqDoors))
	var maxTimeout time.Duration
	for i, sd := range seqDoors {
		cd := cfg.Doors[i]
		doors[sd.Key] = engine.Door{
			Name:       cd.Name,
			Start:      [2]string{cd.Start(false), cd.Start(true)},
			Stop:       [2]string{cd.Stop(false), cd.Stop(true)},
			CmdTimeout: cd.CmdTimeout,
		}
		maxTimeout = max(maxTimeout, cd.SeqTimeout)
	}
	seq := sequence.New(seqDoors, sequence.Options{Logf: logf})
	return &plan{
		cfg:        cfg,
		disp:       detectors.NewDispatcher([]detectors.Detector{seq}, emit),
		doors:      doors,
		maxTimeout: maxTimeout,
	}
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

type actionsEvent = actions.Event
