package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"time"

	"github.com/doorward/doorward/actions"
	"github.com/doorward/doorward/actions/engine"
	"github.com/doorward/doorward/detectors"
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
	log := o.logger(cfg, func() time.Time { return *now })
	defer log.Close()
	eng := engine.New(o.Runner, nil, log.Logf)
	acts := &actionSet{env: &Env{Logf: log.Logf, Replay: true, Run: o.Runner, Ifaces: captureIfaces(o, cfg)}}
	route := func(kind string, ev actions.Event) {
		if a := acts.acts[kind]; a != nil {
			a.Handle(ctx, ev)
			return
		}
		eng.Open(ctx, ev)
	}
	p, err := newPlan(cfg, acts.env, route)
	if err == nil {
		err = acts.apply(p)
	}
	if err != nil {
		fmt.Fprintf(o.Stderr, "knockd: %v\n", err)
		return 1
	}
	eng.SetDoors(p.doors)

	src, err := openReplay(path, cfg, log.Logf) // a capture, or a firewall log (logtail.go)
	if err != nil {
		fmt.Fprintf(o.Stderr, "replay: %v\n", err)
		return 1
	}
	defer src.Close()
	log.Logf("starting up, replaying %s", path)
	var pkt detectors.Packet
	for {
		err := src.ReadPacket(&pkt)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			fmt.Fprintf(o.Stderr, "replay: %v\n", err)
			return 1
		}
		*now = pkt.Time
		eng.Advance(ctx, *now)
		acts.advance(ctx, *now)
		p.tick(*now)
		if o.OnlyIPv4 && pkt.Src.Is6() {
			continue
		}
		if log.Debugging() && p.disp.Wants(pkt.Proto, pkt.DstPort) {
			debugPacket(log, &pkt)
		}
		p.disp.Dispatch(&pkt)
		p.settle()
	}
	// Run out the clock: every stop command is due at most Cmd_Timeout after
	// the last packet, and a protocol's own actions finish within a day.
	// What is due runs in time order up to then (retries included), then
	// everything still open gets one last try.
	engHorizon, actHorizon := now.Add(p.maxCmdTimeout), now.Add(24*time.Hour)
	for {
		t, ok := eng.Next()
		if !ok || t.After(engHorizon) {
			ok = false
		}
		if at, aok := acts.next(); aok && !at.After(actHorizon) && (!ok || at.Before(t)) {
			t, ok = at, true
		}
		if !ok {
			break
		}
		*now = t
		p.disp.Expire(*now)
		eng.Advance(ctx, *now)
		acts.advance(ctx, *now)
	}
	if !now.IsZero() {
		*now = now.Add(p.maxTimeout)
		p.disp.Expire(*now)
	}
	eng.CloseAll(ctx)
	acts.close(ctx)
	log.Logf("shutting down")
	return 0
}

// debugPacket prints knockd's -D packet line (with the month right: knockd's
// is off by one).
func debugPacket(log *Logger, p *detectors.Packet) {
	log.Debugf("%s: %s: %s -> %s %d bytes", p.Time.Local().Format("2006-01-02 15:04:05"), p.Proto,
		netip.AddrPortFrom(p.Src, p.SrcPort), netip.AddrPortFrom(p.Dst, p.DstPort), p.Length)
}
