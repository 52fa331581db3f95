package daemon

import (
	"context"
	"github.com/doorward/doorward/actions/redisstore"
	"maps"
	"slices"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/doorward/doorward/actions"
	"github.com/doorward/doorward/actions/engine"
)

// The metrics cost the packet path nothing it did not pay already: the
// goroutine running the detectors adds one atomic per batch (packets), per completed
// or refused knock (a door's counters, found in maps built at config load)
// and per command; everything else (kernel counters, open doors) is read
// when Prometheus scrapes. No label is formatted and no lock is taken on
// the packet path; the collector builds the samples at scrape time.

// doorCounts are one door's knock counters. They are made when a config
// naming the door is loaded, each reason's from its protocol's declared
// Reasons (detectors.Protocol), and a reload that keeps the door keeps
// every counter it still has, so they stay monotonic for as long as the
// door exists. The struct is read-only once published; only the counters
// change.
type doorCounts struct {
	seen, accepted *atomic.Uint64
	refused        map[string]*atomic.Uint64 // by reason, queue_full included
	reasons        []string                  // refused's keys, in the order declared
	// unlisted counts refusals with a reason the protocol did not declare
	// (a bug in the protocol), shown as reason="unlisted" once non-zero.
	unlisted *atomic.Uint64
}

// metrics holds the daemon's counters and reads the rest at scrape time.
type metrics struct {
	doors      atomic.Pointer[map[string]*doorCounts] // by door key, replaced whole on reload
	packets    atomic.Uint64                          // run through the detectors
	commands   atomic.Uint64                          // run, whatever their outcome
	failed     atomic.Uint64                          // non-zero status, error or time limit
	suppressed atomic.Uint64                          // log lines a rate limit left out

	// open lists the open doors (the state layer's record); nil: none.
	open func() []actions.DoorEntry
	// captures reports each capture's kernel counters; nil: none.
	captures func(yield func(iface string, received, dropped uint64))
	// state reports a shared state backend's health; nil: the embedded
	// one, which has none to report.
	state func() redisstore.Health
	// groupsDropped is how many door group openings this host could not
	// publish (redisstore.Groups.Dropped); nil without a shared backend.
	groupsDropped func() uint64
}

func newMetrics() *metrics {
	m := &metrics{}
	m.setDoors(nil)
	return m
}

// queueFullReason labels knocks dropped by a full action queue, and
// unlistedReason refusals with a reason their protocol did not declare.
const (
	queueFullReason = "queue_full"
	unlistedReason  = "unlisted"
)

// setDoors makes doors (door key → the reasons its knocks can be refused
// for) the doors counted. A door that stays keeps its counters, reason by
// reason; a door that goes loses them (its series disappear), and one
// that comes back starts from zero, which Prometheus reads as a reset.
// Called at start and after each accepted reload, off the packet path's
// critical section: the map is published whole, so readers take no lock.
func (m *metrics) setDoors(doors map[string][]string) {
	old := m.doors.Load()
	next := make(map[string]*doorCounts, len(doors))
	for k, reasons := range doors {
		var was *doorCounts
		if old != nil {
			was = (*old)[k]
		}
		if was == nil {
			was = &doorCounts{seen: new(atomic.Uint64), accepted: new(atomic.Uint64), unlisted: new(atomic.Uint64)}
		}
		c := &doorCounts{seen: was.seen, accepted: was.accepted, unlisted: was.unlisted, refused: map[string]*atomic.Uint64{}}
		for _, r := range append(slices.Clip(reasons), queueFullReason) {
			if _, dup := c.refused[r]; dup {
				continue
			}
			if n := was.refused[r]; n != nil {
				c.refused[r] = n
			} else {
				c.refused[r] = new(atomic.Uint64)
			}
			c.reasons = append(c.reasons, r)
		}
		next[k] = c
	}
	m.doors.Store(&next)
}

// door returns key's counters, or nil for a door no config names (an
// event of a door removed by a reload, still in a queue).
func (m *metrics) door(key string) *doorCounts {
	return (*m.doors.Load())[key]
}

// seen counts a completed knock, as its detector emitted it.
func (m *metrics) seen(door string) {
	if c := m.door(door); c != nil {
		c.seen.Add(1)
	}
}

// queueFull counts a knock dropped because its action's queue was full.
func (m *metrics) queueFull(door string) {
	m.tally(door, actions.Refused, queueFullReason)
}

// tally counts what became of a knock of door (actions.Tally): every
// protocol's detector and action tell it, on their goroutines.
func (m *metrics) tally(door string, o actions.Outcome, reason string) {
	c := m.door(door)
	switch {
	case c == nil:
	case o == actions.Accepted:
		c.accepted.Add(1)
	case c.refused[reason] != nil:
		c.refused[reason].Add(1)
	default:
		c.unlisted.Add(1)
	}
}

// knock counts what the command engine made of a knock (engine.OnKnock).
func (m *metrics) knock(door string, o engine.Outcome) {
	if o == engine.Accepted {
		m.tally(door, actions.Accepted, "")
	} else {
		m.tally(door, actions.Refused, o.Reason())
	}
}

// engineReasons are the command engine's refusal reasons, those of the
// doors of a protocol whose knocks run commands (detectors.Protocol's
// Commands).
func engineReasons() []string {
	var out []string
	for o := engine.Accepted + 1; o < engine.NumOutcomes; o++ {
		out = append(out, o.Reason())
	}
	return out
}

// counting wraps run so every command the daemon runs through it is
// counted, and failures (a non-zero status, an error, the time limit).
func (m *metrics) counting(run actions.Runner) actions.Runner {
	return func(ctx context.Context, line string) (int, error) {
		m.commands.Add(1)
		status, err := run(ctx, line)
		if err != nil || status != 0 {
			m.failed.Add(1)
		}
		return status, err
	}
}

// countingStart is counting for the engine's Starter.
func (m *metrics) countingStart(start actions.Starter) actions.Starter {
	return func(ctx context.Context, line string) func() (int, error) {
		m.commands.Add(1)
		wait := start(ctx, line)
		return func() (int, error) {
			status, err := wait()
			if err != nil || status != 0 {
				m.failed.Add(1)
			}
			return status, err
		}
	}
}

var (
	descSeen = prometheus.NewDesc("doorward_knocks_seen_total",
		"Completed knocks handed to the door's action.", []string{"door"}, nil)
	descAccepted = prometheus.NewDesc("doorward_knocks_accepted_total",
		"Knocks that opened the door, or kept it open longer.", []string{"door"}, nil)
	descRefused = prometheus.NewDesc("doorward_knocks_refused_total",
		"Knocks that did not open the door, by reason: refused by the protocol's checks (a bad MAC, a replay) or by its action.", []string{"door", "reason"}, nil)
	descOpen = prometheus.NewDesc("doorward_doors_open",
		"Addresses a door is open for, as the state layer records them.", []string{"door"}, nil)
	descCommands = prometheus.NewDesc("doorward_commands_run_total",
		"Commands run (start, stop, System, undo).", nil, nil)
	descFailed = prometheus.NewDesc("doorward_commands_failed_total",
		"Commands that failed: non-zero status, not started, or killed at Command_Timeout.", nil, nil)
	descPackets = prometheus.NewDesc("doorward_packets_processed_total",
		"Packets and firewall-log lines run through the detectors.", nil, nil)
	descReceived = prometheus.NewDesc("doorward_capture_packets_total",
		"Packets that passed a capture's kernel filter, as the kernel counts them, since the socket opened.", []string{"interface"}, nil)
	descDrops = prometheus.NewDesc("doorward_kernel_drops_total",
		"Packets the kernel dropped because the capture ring was full, since the socket opened.", []string{"interface"}, nil)
	descSuppressed = prometheus.NewDesc("doorward_log_lines_suppressed_total",
		"Log lines left out by the traffic log rate limit (LogRate).", nil, nil)
	descStateUp = prometheus.NewDesc("doorward_state_up",
		"1 while the shared state backend ([options] State) answers, 0 while knocks that need it are refused.", []string{"backend"}, nil)
	descStateRefused = prometheus.NewDesc("doorward_state_refused_total",
		"Shared-state operations refused because the backend was unreachable.", []string{"backend"}, nil)
	descGroupDropped = prometheus.NewDesc("doorward_group_openings_dropped_total",
		"Door group openings this host could not publish to the other hosts: the queue was full or the backend did not answer.", []string{"backend"}, nil)
)

// collector turns metrics into samples at scrape time.
type collector struct{ m *metrics }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descSeen, descAccepted, descRefused, descOpen, descCommands, descFailed, descPackets, descReceived, descDrops, descSuppressed, descStateUp, descStateRefused, descGroupDropped} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	m := c.m
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	doors := *m.doors.Load()
	open := map[string]int{}
	if m.open != nil {
		for _, e := range m.open() {
			open[e.Door]++
		}
	}
	for _, door := range slices.Sorted(maps.Keys(doors)) {
		dc := doors[door]
		counter(descSeen, dc.seen.Load(), door)
		counter(descAccepted, dc.accepted.Load(), door)
		for _, r := range dc.reasons {
			counter(descRefused, dc.refused[r].Load(), door, r)
		}
		if n := dc.unlisted.Load(); n > 0 {
			counter(descRefused, n, door, unlistedReason)
		}
	}
	// Doors a reload removed stay open until their stop command runs, so
	// every door the state layer holds is shown, configured or not.
	for door := range doors {
		if _, ok := open[door]; !ok {
			open[door] = 0
		}
	}
	for _, door := range slices.Sorted(maps.Keys(open)) {
		ch <- prometheus.MustNewConstMetric(descOpen, prometheus.GaugeValue, float64(open[door]), door)
	}
	counter(descCommands, m.commands.Load())
	counter(descFailed, m.failed.Load())
	counter(descPackets, m.packets.Load())
	counter(descSuppressed, m.suppressed.Load())
	if m.state != nil {
		h := m.state()
		up := 0.0
		if h.Up {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(descStateUp, prometheus.GaugeValue, up, h.Backend)
		counter(descStateRefused, h.Refused, h.Backend)
		if m.groupsDropped != nil {
			counter(descGroupDropped, m.groupsDropped(), h.Backend)
		}
	}
	if m.captures != nil {
		m.captures(func(iface string, received, dropped uint64) {
			counter(descReceived, received, iface)
			counter(descDrops, dropped, iface)
		})
	}
}

// registry is the endpoint's own registry (no global state): the
// daemon's collector and the process's standard metrics.
func (m *metrics) registry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collector{m},
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewGoCollector())
	return reg
}
