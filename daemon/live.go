package daemon

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/doorward/doorward/actions"
	"github.com/doorward/doorward/actions/command"
	"github.com/doorward/doorward/actions/engine"
	"github.com/doorward/doorward/actions/journal"
	"github.com/doorward/doorward/actions/redisstore"
	"github.com/doorward/doorward/config/knockd"
	"github.com/doorward/doorward/detectors"
	"github.com/doorward/doorward/detectors/capture"
	"github.com/doorward/doorward/internal/latency"
	"github.com/doorward/doorward/internal/sdnotify"
)

// maxPayload is what a batch keeps of a packet's payload. Sequence knocks
// carry none; single-packet knocks fit easily.
const maxPayload = 512

// sweepParts is how many slices the detectors' tables are expired in, one
// slice every 1/sweepParts of a second, so all of them once a second. The
// sweep holds the detectors, and the readers wait for it with the packets
// they read: a whole sweep of a full table (65,536 sources) took 0.6 ms in
// BenchmarkExpire, 12 ms when a whole table times out at once, and under
// a flood perf sched showed a daemon thread on the CPU for 3–4 ms once a
// second with the reader queued behind it; a knock that came meanwhile
// waited that long (issue 14: p99 within 2 ms). A sixteenth takes 44 µs.
const sweepParts = 16

// statsEvery is how often (in ticks) the kernel's drop counters are read;
// a rise is logged, so an operator sees when packets are being lost.
const statsEvery = 10

// addrEvery is how often (in one-second ticks) the interfaces' addresses
// are read again, so a DHCP change or an address added later is filtered for.
const addrEvery = 5

// Live runs the daemon on live capture until ctx is done. Each value on hup
// reloads the config. It returns the process exit code.
//
// Start-up order: config → log → journal, closing any door a crashed run
// left open → engine → capture → "starting up". No knock is accepted before
// the leftover doors are closed.
func Live(ctx context.Context, o Options, hup <-chan os.Signal) int {
	shell := o.Runner == nil // then a knock's start command forks on the reader (engine.Knock)
	o.defaults()
	o.Stderr = stderrFor(o.Stderr) // journald.go: start-up errors as errors
	sd := sdnotify.FromEnv()       // Type=notify: READY, RELOADING, STOPPING
	cfg, ok := o.load()
	if !ok {
		return 1
	}
	log := o.logger(cfg, nil)
	defer log.Close()
	if o.Daemon { // pidfile.go: a running daemon is not started twice
		note, err := checkPidFile(o.pidFile(cfg))
		if err != nil {
			fmt.Fprintf(o.Stderr, "knockd: %v\n", err)
			return 1
		}
		if note != "" {
			log.Logf("%s", note)
		}
	}

	ifaces := captureIfaces(o, cfg) // none by default in file mode (logtail.go)

	stateDir := o.stateDir(cfg)
	jr, left, err := journal.Open(stateDir)
	if err != nil {
		fmt.Fprintf(o.Stderr, "knockd: %v\n", err)
		return 1
	}
	defer jr.Shutdown()
	for _, w := range jr.Warnings() {
		log.Logf("%s", w)
	}

	bg := context.WithoutCancel(ctx)
	limit := new(cmdLimit) // Command_Timeout, which a reload may change
	limit.set(cfg)
	met := newMetrics() // metrics.go: counted always, served if [options] Metrics
	run := met.counting(limit.runner(o.Runner))
	eng := engine.New(run, jr, log.Logf)
	if shell {
		eng.SetStarter(met.countingStart(limit.starter()))
	}
	// One knock-to-command figure for the knockd doors and the actions
	// that run commands through an engine of their own (fwknop).
	lat := &latency.Histogram{}
	eng.SetLatency(lat)
	fleet := new(fleetGroups) // groups.go: follows the groups once the plan serves
	eng.SetOpened(fleet.opened)
	eng.OnKnock(met.knock)
	eng.CountSuppressed(&met.suppressed)
	eng.SetLogRate(float64(cfg.Options.LogRate))
	// The nftables socket is opened now, before recovery needs it and
	// while the daemon still may open sockets (nftsets.go).
	sets := new(liveSets)
	defer sets.close() // after the engine has closed its doors (deferred below)
	if needsSets(cfg, left) {
		if _, err := sets.backend(); err != nil {
			fmt.Fprintf(o.Stderr, "knockd: %v\n", err)
			return 1
		}
	}
	eng.SetSets(sets)
	// A SIGTERM while recovering leaves the recovery its budget too.
	rctx, release := command.Grace(ctx, command.ShutdownBudget)
	eng.Recover(rctx, left, time.Now())
	release()

	// Events go to the engine (knockd command doors) or to their protocol's
	// Action, each on its own goroutine behind a bounded queue: a full
	// queue drops and counts, it never blocks the packet path.
	var doors actions.Doors
	if jr != nil { // a nil *journal.Journal must stay a nil actions.Doors
		doors = jr
	}
	store, shared, err := openStore(cfg, stateDir, doors, log.Logf)
	if err != nil {
		fmt.Fprintf(o.Stderr, "knockd: %v\n", err)
		return 1
	}
	if shared != nil {
		defer shared.Close()
		met.state = shared.Health
		met.groupsDropped = func() uint64 {
			if g := fleet.g.Load(); g != nil {
				return g.Dropped()
			}
			return 0
		}
	}
	env := &Env{Logf: log.Logf, Store: store, Run: run, StateDir: stateDir, Ifaces: ifaces, LogSuppressed: &met.suppressed, Tally: met.tally,
		Opened: fleet.opened, Latency: lat}
	if jr != nil { // a nil *journal.Journal must stay a nil actions.Doors
		env.Doors = jr
	}
	acts := newLiveActions(env, log)
	route := func(kind string, ev actions.Event) {
		// A doorman client's SYN (Connect) is a later step of a knock
		// already counted, not a knock.
		knock := ev.Kind == actions.Knock
		if knock {
			met.seen(ev.Door)
		}
		// A knockd door's knock starts its command right here, on the
		// reader, within the engine's bounds; else it is queued.
		if acts.toEngine(kind) && eng.Knock(ev) {
			return
		}
		if !acts.route(kind, ev) && knock {
			met.queueFull(ev.Door)
		}
	}
	p, err := startPlan(cfg, env, route)
	if err == nil {
		if err = sets.ensure(cfg); err == nil {
			err = acts.apply(p)
		}
		if err != nil {
			p.close()
		}
	}
	if err != nil {
		fmt.Fprintf(o.Stderr, "knockd: %v\n", err)
		return 1
	}
	defer func() { p.close() }() // whichever plan serves last
	for _, w := range p.warnings {
		log.Logf("config: warning: %s", w)
	}
	eng.SetDoors(p.doors)
	met.setDoors(p.doorReasons())
	doorsCh := newLatest[map[string]engine.Door]()
	engCtx, stopEngine := context.WithCancel(bg)
	engDone := make(chan struct{})
	go func() { defer close(engDone); eng.Run(engCtx, acts.engine, doorsCh) }()
	acts.start(engCtx)
	// The pid file goes last, once every door is closed: whoever waits for
	// it to disappear (an init script, killproc) then knows shutdown is
	// complete.
	var pidWritten string
	defer func() {
		if pidWritten != "" {
			os.Remove(pidWritten)
		}
	}()
	// From here on every return must let the engine and the Actions close
	// the doors they opened.
	defer func() { stopEngine(); <-engDone; acts.wait() }()

	l := newLive(o, log, env, route, limit)
	l.sets = sets
	l.met = met
	l.plan.Store(p)
	fleet.plan.Store(p.groups)
	if shared != nil {
		// Followed before any source is read: what the group has open
		// is opened here first (catch-up), from the subscription's
		// goroutine, as a knock on the packet path would be.
		g := shared.Groups(groupNames(cfg), func(op redisstore.Opening) {
			l.owner.Lock()
			defer l.owner.Unlock()
			if kind, ev, ok := l.plan.Load().groups.event(op, time.Now()); ok {
				acts.route(kind, ev)
			}
		})
		fleet.g.Store(g)
		defer g.Close()
	}
	for _, ifc := range ifaces {
		s := &liveSource{iface: ifc}
		rules := l.rulesFor(s)
		src, err := capture.Open(ifc, rules, capture.Options{})
		if err != nil {
			fmt.Fprintf(o.Stderr, "could not open %s: %v\n", ifc, err)
			l.closeSources()
			return 1
		}
		s.src = src
		l.sources = append(l.sources, s)
	}
	ms, err := l.serveMetrics(cfg, met, jr)
	if err != nil {
		fmt.Fprintf(o.Stderr, "knockd: %v\n", err)
		l.closeSources()
		return 1
	}
	defer ms.close()
	lt, err := l.openLogTail(cfg) // file mode: LogTail (logtail.go)
	if err != nil {
		fmt.Fprintf(o.Stderr, "knockd: %v\n", err)
		l.closeSources()
		return 1
	}
	if o.LeastPrivilege { // privileges.go: sockets open, only what serving needs
		if err := dropCapabilities(cfg); err != nil {
			log.Logf("capabilities: could not drop: %v", err)
		}
	}
	if o.Daemon {
		pid := o.pidFile(cfg)
		if err := writePid(pid); err != nil {
			log.Logf("could not create pid file %s: %v", pid, err)
		} else {
			pidWritten = pid
		}
	}
	if log.Debugging() { // -D's packet lines, off the packet path
		l.trace = newTracer(log)
		defer l.trace.close()
	}
	readCtx, stopReading := context.WithCancel(context.Background())
	var readers sync.WaitGroup
	for _, s := range l.sources {
		readers.Add(1)
		go func() { defer readers.Done(); l.read(readCtx, s) }()
	}
	if lt != nil {
		readers.Add(1)
		go func() { defer readers.Done(); l.readLog(readCtx, lt) }()
	}
	log.Logf("starting up, %s", listening(ifaces, lt))
	if o.Ready != nil {
		o.Ready()
	}
	notify(log, sd.Ready())

	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	sweep := time.NewTicker(time.Second / sweepParts)
	defer sweep.Stop()
	var rl reloads
	reload := func() {
		log.Logf("re-reading config file: %s", o.Config)
		rl.start(l.load)
	}
	ticks := 0
loop:
	for {
		select {
		case <-tick.C:
			l.owner.Lock() // batch.go: the readers run the detectors too
			if p.poll() {
				l.refilter("one-time sequence changed")
			}
			if ticks++; ticks%addrEvery == 0 {
				l.refilter("")
			}
			if ticks%statsEvery == 0 {
				l.reportDrops()
				l.reportLatency(lat.Summary(), false)
			}
			l.owner.Unlock()
		case now := <-sweep.C:
			// A slice is owed; if the one owed since the last tick is
			// still owed, no reader dispatched a batch meanwhile, so the
			// lock is free: sweep that one here.
			if l.sweepOwed.Swap(true) {
				l.owner.Lock()
				l.sweepPart(p, now)
				l.owner.Unlock()
			}
		case <-hup:
			// Parse off the packet path: the old config keeps serving
			// until the new one is complete and valid.
			if rl.request() {
				notify(log, sd.Reloading())
				reload()
			}
		case np := <-rl.done:
			if rl.finished(np) {
				reload() // a SIGHUP came during the load: read the file again
				continue
			}
			if np != nil {
				l.owner.Lock()
				if p = l.swap(p, np); p == np { // else kept the running config
					doorsCh.put(p.doors) // never waits for a busy engine
					fleet.plan.Store(p.groups)
					met.setDoors(p.doorReasons())
					ms.reloaded(p.cfg, log.Logf)
					if err := acts.apply(p); err != nil {
						log.Logf("config reload: %v", err)
					}
					log.Reopen(o.logFile(p.cfg))
					l.refilter("config reloaded")
					l.reloadLogTail(lt, p.cfg)
				}
				l.owner.Unlock()
				// A round trip to Redis: off the packet path's lock.
				if g := fleet.g.Load(); g != nil && p == np {
					if err := g.Follow(p.groups.names); err != nil {
						log.Logf("config reload: groups: %v", err)
					}
				}
			}
			notify(log, sd.Ready()) // the reload is over, whatever its outcome
		case <-ctx.Done():
			break loop
		}
	}
	log.Logf("shutting down")
	notify(log, sd.Stopping())
	stopReading()
	l.owner.Lock() // a batch being dispatched is counted; none starts after
	l.owner.Unlock()
	l.logStats(met.packets.Load())
	l.reportLatency(lat.Summary(), true)
	l.closeSources()
	l.closeLogTail(lt)
	readers.Wait()
	rl.drain(shutdownLoad)
	// Sources are closed, so no new event can come; the deferred engine
	// stop now runs every pending stop command before Live returns.
	return 0
}

// notify logs a failed sd_notify: systemd then times the start out or
// shows a stale state, and the log says why.
func notify(log *Logger, err error) {
	if err != nil {
		log.Logf("%v", err)
	}
}

// run dispatches b through the serving plan's detectors under the owner
// lock (batch.go). It reports false, and drops b, once ctx is done: after
// Live's loop ends no batch reaches the detectors.
func (l *live) run(ctx context.Context, b *batch) bool {
	l.owner.Lock()
	defer l.owner.Unlock()
	if ctx.Err() != nil {
		return false
	}
	p := l.plan.Load()
	l.dispatch(p, b)
	if l.sweepOwed.Load() && l.sweepOwed.CompareAndSwap(true, false) {
		l.sweepPart(p, time.Now())
	}
	return true
}

// sweepPart expires the next of the sweepParts slices of p's tables; the
// caller holds the owner lock. While packets flow a reader does it after
// its batch, as it holds the lock anyway: a sweep by Live's loop would
// make the reader wait for the lock and be woken (with a flood on the
// CPUs, a wake-up that can take milliseconds). With no packets, the loop
// does it (Live).
func (l *live) sweepPart(p *plan, now time.Time) {
	p.disp.ExpirePart(now, l.sweepNext, sweepParts)
	l.sweepNext = (l.sweepNext + 1) % sweepParts
}

// dispatch runs a batch through p's detectors; the caller holds the owner
// lock.
func (l *live) dispatch(p *plan, b *batch) {
	l.met.packets.Add(uint64(b.n))
	for i := range b.pkts[:b.n] {
		l.handle(p, &b.pkts[i])
	}
}

// handle runs one packet through p's detectors; the caller holds the owner
// lock.
func (l *live) handle(p *plan, pkt *detectors.Packet) {
	if l.o.OnlyIPv4 && pkt.Src.Is6() {
		return
	}
	if l.trace != nil {
		l.trace.packet(pkt)
	}
	p.disp.Dispatch(pkt)
	if p.settle() {
		l.refilter("one-time sequence used")
	}
}

// reloads runs config loads off the packet path, one at a time. A SIGHUP
// that comes during a load is not lost and does not queue up: the load
// running is thrown away when it ends (its plan, built but never committed,
// is closed) and the file is read again, so the newest file wins however
// many SIGHUPs came meanwhile.
type reloads struct {
	done    chan *plan // buffered: a load ending at shutdown never blocks
	running bool
	again   bool
}

// request reports whether a load must start now; if one is running, it
// asks for another when it ends.
func (r *reloads) request() bool {
	if r.running {
		r.again = true
		return false
	}
	return true
}

func (r *reloads) start(load func() *plan) {
	if r.done == nil {
		r.done = make(chan *plan, 1)
	}
	r.running = true
	go func() { r.done <- load() }()
}

// shutdownLoad bounds how long shutdown waits for a config load in
// progress: a load reads local files (and resolves doorman guests), so it
// ends quickly; one stuck longer is left behind, as the process exits.
const shutdownLoad = 5 * time.Second

// drain waits (at most limit) for a load still running at shutdown and
// closes its plan, so no load outlives Live, using the log or the store.
func (r *reloads) drain(limit time.Duration) {
	if !r.running {
		return
	}
	select {
	case np := <-r.done:
		r.running = false
		if np != nil {
			np.close()
		}
	case <-time.After(limit):
	}
}

// finished takes a load's result and reports whether it is stale (a
// SIGHUP came meanwhile): then it is closed, and the caller loads again.
func (r *reloads) finished(np *plan) (stale bool) {
	r.running = false
	if !r.again {
		return false
	}
	r.again = false
	if np != nil {
		np.close()
	}
	return true
}

type liveSource struct {
	iface   string
	dropped uint64 // kernel drops already reported
	mu      sync.Mutex
	src     *capture.Source
	addrs   []netip.Addr // the addresses the current filter was built with
}

type live struct {
	o       Options
	log     *Logger
	env     *Env
	route   func(kind string, ev actions.Event)
	sources []*liveSource
	// owner is held by whoever runs the serving plan's detectors or
	// changes the plan: a reader dispatching its batch, Live's loop for
	// ticks, reloads and refilters (batch.go). Taken before a source's mu.
	owner sync.Mutex
	plan  atomic.Pointer[plan] // the serving plan; stored under owner
	// sweepOwed says a slice of the expiry sweep is due (sweepPart);
	// sweepNext is the next slice, under owner.
	sweepOwed atomic.Bool
	sweepNext int
	trace     *tracer // -D's packet lines, nil without -D
	limit     *cmdLimit
	sets      *liveSets // nftables sets of Nft_Set doors (nftsets.go)
	met       *metrics
	// latencyReported is the start commands counted in the last latency
	// line, so the periodic one is logged only when there are new ones.
	latencyReported uint64
}

// newLive sets up the packet side; each reader brings its own batch.
func newLive(o Options, log *Logger, env *Env, route func(kind string, ev actions.Event), limit *cmdLimit) *live {
	return &live{o: o, log: log, env: env, route: route, limit: limit, met: newMetrics()}
}

// rulesFor limits rules without a Target to the interface's addresses, read
// now, and remembers them so refilter can tell when they change.
func (l *live) rulesFor(s *liveSource) []detectors.Rule {
	local, err := capture.LocalAddrs(s.iface)
	if err != nil {
		l.log.Logf("could not read the addresses of %s: %v", s.iface, err)
	}
	if l.o.OnlyIPv4 {
		local = slices.DeleteFunc(local, func(a netip.Addr) bool { return a.Is6() })
	}
	s.addrs = local
	return l.plan.Load().rules(local)
}

// refilter installs a new kernel filter on every open source: always when
// why is set (the doors changed), otherwise only where the interface's
// addresses changed.
func (l *live) refilter(why string) {
	for _, s := range l.sources {
		s.mu.Lock()
		if s.src != nil {
			old := s.addrs
			local, _ := capture.LocalAddrs(s.iface)
			if why != "" || !sameAddrs(old, local) {
				if err := s.src.SetFilter(l.rulesFor(s)); err != nil {
					l.log.Logf("capture %s: could not set filter: %v", s.iface, err)
				} else if why == "" {
					l.log.Logf("capture %s: addresses changed, filter updated", s.iface)
				}
			}
		}
		s.mu.Unlock()
	}
}

// reportDrops logs, per source, packets the kernel dropped because the
// ring was full since the last report (PACKET_STATISTICS).
func (l *live) reportDrops() {
	for _, s := range l.sources {
		s.mu.Lock()
		if s.src != nil {
			if _, dropped, err := s.src.Stats(); err == nil && dropped > s.dropped {
				l.log.Logf("capture %s: kernel dropped %d packets (ring full; %d since start)", s.iface, dropped-s.dropped, dropped)
				s.dropped = dropped
			}
		}
		s.mu.Unlock()
	}
}

// logStats is the shutdown summary: what reached the daemon and what the
// kernel had to drop.
func (l *live) logStats(processed uint64) {
	for _, s := range l.sources {
		s.mu.Lock()
		if s.src != nil {
			if received, dropped, err := s.src.Stats(); err == nil {
				l.log.Logf("capture %s: %d packets passed the filter, %d dropped by the kernel", s.iface, received, dropped)
			}
		}
		s.mu.Unlock()
	}
	l.log.Logf("%d packets processed", processed)
}

// reportLatency logs knock-to-command latency (engine.Engine.Latency):
// periodically when start commands ran since the last report, and always
// at shutdown.
func (l *live) reportLatency(s latency.Summary, always bool) {
	if s.Count == l.latencyReported && !always {
		return
	}
	l.latencyReported = s.Count
	us := func(d time.Duration) time.Duration { return d.Round(time.Microsecond) }
	l.log.Logf("knock-to-command latency: %d start commands, p50 %v, p99 %v, max %v", s.Count, us(s.P50), us(s.P99), us(s.Max))
}

func sameAddrs(a, b []netip.Addr) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.SortFunc(a, netip.Addr.Compare)
	slices.SortFunc(b, netip.Addr.Compare)
	return slices.Equal(a, b)
}

// load reads, builds and validates the config for a reload, off the packet
// path and touching no durable file. On any error it logs every error with
// its file:line, closes what it built and returns nil: the running config
// stays. The caller commits the plan it returns (or closes it).
func (l *live) load() *plan {
	cfg, err := l.o.loadConfig()
	if err == nil {
		var np *plan
		if np, err = newPlan(cfg, l.env, l.route); err == nil {
			if err = np.checkActions(); err == nil {
				if err = l.sets.ensure(cfg); err == nil {
					return np // built, not committed: see plan.commit
				}
			}
			np.close()
		}
	}
	for _, line := range strings.Split(err.Error(), "\n") {
		l.log.Logf("config: %s", line)
	}
	l.log.Logf("config reload failed, keeping the running config")
	return nil
}

// swap makes np, a reloaded plan that load accepted, the serving plan and
// returns it: np's files are opened (commit), then it takes over old's
// knocks in progress and old is closed. Called on the packet goroutine.
//
// If np cannot commit, the running config stays; but np may have opened
// (created, resized) some files before the error, replacing files old's
// detectors hold. So old's config is built and committed again, as a
// restart would do, reading the files as they are now, and takes over
// from old; only if that fails too does old itself go on.
func (l *live) swap(old, np *plan) *plan {
	err := np.commit()
	if err == nil {
		np.adopt(old)
		old.close()
		l.plan.Store(np)
		l.limit.set(np.cfg)
		return np
	}
	np.close()
	l.log.Logf("config: %v", err)
	l.log.Logf("config reload failed, keeping the running config")
	again, err := startPlan(old.cfg, l.env, l.route)
	if err != nil {
		l.log.Logf("config: reopening the running config's files: %v", err)
		return old
	}
	again.adopt(old)
	old.close()
	l.plan.Store(again)
	return again
}

// read runs packets from one source through the detectors in batches
// (batch.go). When the interface goes away it logs, waits and reopens it
// instead of exiting (knockd #69).
func (l *live) read(ctx context.Context, s *liveSource) {
	b := newBatch(batchSize, maxPayload)
	for {
		s.mu.Lock()
		src := s.src
		s.mu.Unlock()
		if src == nil {
			if !l.reopen(ctx, s) {
				return
			}
			continue
		}
		ok, err := l.pump(ctx, src, b)
		if err != nil {
			if errors.Is(err, detectors.ErrClosed) || ctx.Err() != nil {
				return
			}
			l.log.Logf("%v; will reopen", err)
			s.mu.Lock()
			s.src.Close()
			s.src = nil
			s.mu.Unlock()
			continue
		}
		if !ok {
			return
		}
	}
}

// pump reads the next batch from src into b and runs it through the
// detectors; false on shutdown.
func (l *live) pump(ctx context.Context, src *capture.Source, b *batch) (bool, error) {
	n, err := src.ReadBatch(b.pkts)
	if err != nil {
		return false, err
	}
	b.n = n
	return l.run(ctx, b), nil
}

func (l *live) reopen(ctx context.Context, s *liveSource) bool {
	for {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(time.Second):
		}
		l.owner.Lock() // rulesFor reads the detectors' rules
		s.mu.Lock()
		src, err := capture.Open(s.iface, l.rulesFor(s), capture.Options{})
		if err == nil {
			s.src, s.dropped = src, 0 // a new socket counts from zero
		}
		s.mu.Unlock()
		l.owner.Unlock()
		if err == nil {
			l.log.Logf("capture %s: listening again", s.iface)
			return true
		}
	}
}

func (l *live) closeSources() {
	for _, s := range l.sources {
		s.mu.Lock()
		if s.src != nil {
			s.src.Close()
		}
		s.mu.Unlock()
	}
}

func (o *Options) pidFile(cfg *knockd.Config) string {
	if o.PidFile != "" {
		return o.PidFile
	}
	if cfg.Options.PidFile != "" {
		return cfg.Options.PidFile
	}
	return knockd.DefaultPidFile
}

func (o *Options) logFile(cfg *knockd.Config) string {
	if o.LogFile != "" {
		return o.LogFile
	}
	return cfg.Options.LogFile
}

func (o *Options) stateDir(cfg *knockd.Config) string {
	if o.StateDir != "" {
		return o.StateDir
	}
	if cfg.Options.StateDir != "" {
		return cfg.Options.StateDir
	}
	return knockd.DefaultStateDir
}

func writePid(path string) error {
	return os.WriteFile(path, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644)
}
