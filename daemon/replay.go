package daemon

import (
	"context"
	"fmt"
	"time"

	"github.com/doorward/doorward/actions"
	"github.com/doorward/doorward/actions/engine"
	"github.com/doorward/doorward/actions/filestore"
	"github.com/doorward/doorward/detectors"
	replaysrc "github.com/doorward/doorward/detectors/replay"
)

// Replay feeds a pcap or pcapng file through the same decode, dispatch and
// engine path as live capture, with packet time as the only clock: knocks,
// sequence timeouts, Cmd_Timeout and the log file's timestamps all follow
// the capture, so a replay gives the same result every time. At the end of
// the file time is advanced past every deadline, so every stop command runs.
func Replay(ctx context.Context, o Options, path string) int {
	var now time.Time
	return replay(ctx, o, path, &now)
}

// replay is Replay with the virtual clock exposed, for tests.
func replay(ctx context.Context, o Options, path string, clock *time.Time) int {
	o.defaults()
	cfg, ok := o.load()
	if !ok {
		return 1
	}
	now := clock
	// Log lines follow capture time. Start-up lines carry the first
	// packet's time (read before anything is logged); only a line written
	// before it is known, or for a capture without packets, takes the wall
	// clock, never the zero time.
	log := o.logger(cfg, func() time.Time {
		if now.IsZero() {
			return time.Now()
		}
		return *now
	})
	defer log.Close()
	src, err := openReplay(path, cfg, log.Logf) // a capture, or a firewall log (logtail.go)
	if err != nil {
		fmt.Fprintf(o.Stderr, "replay: %v\n", err)
		return 1
	}
	defer src.Close()
	loop := replaysrc.NewLoop(src, now)
	if err := loop.Peek(); err != nil { // start-up lines carry the first packet's time
		fmt.Fprintf(o.Stderr, "replay: %v\n", err)
		return 1
	}
	run := o.runner(cfg)
	eng := engine.New(run, nil, log.Logf)
	eng.SetLogRate(float64(cfg.Options.LogRate))
	eng.SetSets(engine.Pretend{}) // a replay logs what Nft_Set doors would do, and touches no set
	acts := &actionSet{env: &Env{Logf: log.Logf, Replay: true, Store: filestore.New(filestore.Options{Memory: true, Logf: log.Logf}), Run: run, Ifaces: captureIfaces(o, cfg)}}
	route := func(kind string, ev actions.Event) {
		if a := acts.acts[kind]; a != nil {
			a.Handle(ctx, ev)
			return
		}
		eng.Open(ctx, ev)
	}
	p, err := startPlan(cfg, acts.env, route)
	if err == nil {
		defer p.close()
		err = acts.apply(p)
	}
	if err != nil {
		fmt.Fprintf(o.Stderr, "knockd: %v\n", err)
		return 1
	}
	eng.SetDoors(p.doors)

	log.Logf("starting up, replaying %s", path)
	advance := func(now time.Time) {
		eng.Advance(ctx, now)
		acts.advance(ctx, now)
	}
	// Run out the clock: every stop command is due at most Cmd_Timeout after
	// the last packet, and a protocol's own actions finish within a day.
	// What is due runs in time order up to then (retries included), then
	// everything still open gets one last try.
	due := func(end time.Time) (time.Time, bool) {
		t, ok := eng.Next()
		if !ok || t.After(end.Add(p.maxCmdTimeout)) {
			ok = false
		}
		if at, aok := acts.next(); aok && !at.After(end.Add(24*time.Hour)) && (!ok || at.Before(t)) {
			t, ok = at, true
		}
		return t, ok
	}
	err = loop.Run(replaysrc.Hooks{
		Advance: advance,
		Tick:    func(now time.Time) { p.tick(now) },
		Packet: func(pkt *detectors.Packet) {
			if o.OnlyIPv4 && pkt.Src.Is6() {
				return
			}
			if log.Debugging() && p.disp.Wants(pkt.Proto, pkt.DstPort) {
				traceOf(pkt).write(log) // in step with the other lines: replay has no rate to keep
			}
			p.disp.Dispatch(pkt)
			p.settle()
		},
		Due:    due,
		Expire: p.disp.Expire,
		Linger: p.maxTimeout,
	})
	if err != nil {
		fmt.Fprintf(o.Stderr, "replay: %v\n", err)
		return 1
	}
	eng.CloseAll(ctx)
	acts.close(ctx)
	log.Logf("shutting down")
	return 0
}
