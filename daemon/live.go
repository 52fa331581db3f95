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
	"github.com/doorward/doorward/actions/engine"
	"github.com/doorward/doorward/config/knockd"
	"github.com/doorward/doorward/detectors"
	"github.com/doorward/doorward/detectors/capture"
)

// slots bounds the packets in flight between capture and dispatch. When the
// dispatcher falls behind, readers wait and the kernel ring absorbs (and
// counts) the excess: memory never grows with a flood.
const slots = 256

// maxPayload is what a slot keeps of a packet's payload. Sequence knocks
// carry none; single-packet knocks fit easily.
const maxPayload = 512

// Live runs the daemon on live capture until ctx is done. Each value on hup
// reloads the config. It returns the process exit code.
func Live(ctx context.Context, o Options, hup <-chan os.Signal) int {
	o.defaults()
	cfg, ok := o.load()
	if !ok {
		return 1
	}
	log := o.logger(cfg, nil)
	defer log.Close()

	ifaces := o.Interfaces
	if len(ifaces) == 0 {
		ifaces = cfg.Options.Interfaces
	}
	if len(ifaces) == 0 {
		ifaces = []string{knockd.DefaultInterface}
	}

	events := make(chan actions.Event, 1024)
	var dropped atomic.Uint64
	emit := func(ev actions.Event) {
		select {
		case events <- ev:
		default:
			if n := dropped.Add(1); n&(n-1) == 0 {
				log.Logf("event queue full, dropped %d knocks", n)
			}
		}
	}
	eng := engine.New(o.Runner, log.Logf)
	p := newPlan(cfg, log.Logf, emit)
	eng.SetDoors(p.doors)
	doorsCh := make(chan map[string]engine.Door, 1)
	engCtx, stopEngine := context.WithCancel(context.WithoutCancel(ctx))
	engDone := make(chan struct{})
	go func() { defer close(engDone); eng.Run(engCtx, events, doorsCh) }()

	l := &live{o: o, log: log, pkts: make(chan *detectors.Packet, slots), free: make(chan *detectors.Packet, slots)}
	for range slots {
		l.free <- &detectors.Packet{Payload: make([]byte, 0, maxPayload)}
	}
	l.setRules(p)
	for _, ifc := range ifaces {
		src, err := capture.Open(ifc, l.rulesFor(ifc), capture.Options{})
		if err != nil {
			fmt.Fprintf(o.Stderr, "could not open %s: %v\n", ifc, err)
			l.closeSources()
			stopEngine()
			<-engDone
			return 1
		}
		l.sources = append(l.sources, &liveSource{iface: ifc, src: src})
	}
	if o.Daemon {
		if err := writePid(o.pidFile(cfg)); err != nil {
			log.Logf("could not create pid file %s: %v", o.pidFile(cfg), err)
		} else {
			defer os.Remove(o.pidFile(cfg))
		}
	}
	readCtx, stopReading := context.WithCancel(context.Background())
	var readers sync.WaitGroup
	for _, s := range l.sources {
		readers.Add(1)
		go func() { defer readers.Done(); l.read(readCtx, s) }()
	}
	log.Logf("starting up, listening on %s", strings.Join(ifaces, ","))

	tick := time.NewTicker(time.Second)
	defer tick.Stop()
loop:
	for {
		select {
		case pkt := <-l.pkts:
			if !(o.OnlyIPv4 && pkt.Src.Is6()) {
				if log.Debugging() {
					debugPacket(log, pkt)
				}
				p.disp.Dispatch(pkt)
			}
			l.free <- pkt
		case now := <-tick.C:
			p.disp.Expire(now)
		case <-hup:
			log.Logf("re-reading config file: %s", o.Config)
			np, err := l.reload(emit)
			if err != nil {
				log.Logf("config reload failed, keeping the running config: %v", err)
				continue
			}
			p = np
			doorsCh <- p.doors
			log.Reopen(o.logFile(p.cfg))
		case <-ctx.Done():
			break loop
		}
	}
	log.Logf("shutting down")
	stopReading()
	l.closeSources()
	readers.Wait()
	// Sources are closed: no new event can come. The engine now runs every
	// pending stop command before it returns.
	stopEngine()
	<-engDone
	return 0
}

type liveSource struct {
	iface string
	mu    sync.Mutex
	src   *capture.Source
}

type live struct {
	o       Options
	log     *Logger
	sources []*liveSource
	pkts    chan *detectors.Packet
	free    chan *detectors.Packet
	plan    atomic.Pointer[plan]
}

func (l *live) setRules(p *plan) { l.plan.Store(p) }

// rulesFor limits rules without a Target to the interface's addresses, read
// now, so an address added since start-up (DHCP) is used after a reopen.
func (l *live) rulesFor(iface string) []detectors.Rule {
	local, err := capture.LocalAddrs(iface)
	if err != nil {
		l.log.Logf("could not read the addresses of %s: %v", iface, err)
	}
	if l.o.OnlyIPv4 {
		local = slices.DeleteFunc(local, func(a netip.Addr) bool { return a.Is6() })
	}
	return l.plan.Load().rules(local)
}

func (l *live) reload(emit func(actions.Event)) (*plan, error) {
	cfg, err := knockd.Load(l.o.Config)
	if err != nil {
		return nil, err
	}
	np := newPlan(cfg, l.log.Logf, emit)
	l.setRules(np)
	for _, s := range l.sources {
		s.mu.Lock()
		if s.src != nil {
			if err := s.src.SetFilter(l.rulesFor(s.iface)); err != nil {
				l.log.Logf("capture %s: could not set filter: %v", s.iface, err)
			}
		}
		s.mu.Unlock()
	}
	return np, nil
}

// read copies packets from one source into free slots. When the interface
// goes away it logs, waits and reopens it instead of exiting (knockd #69).
func (l *live) read(ctx context.Context, s *liveSource) {
	var pkt detectors.Packet
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
		err := src.ReadPacket(&pkt)
		if err != nil {
			if errors.Is(err, detectors.ErrClosed) || ctx.Err() != nil {
				return
			}
			l.log.Logf("capture %s: %v; will reopen", s.iface, err)
			s.mu.Lock()
			s.src.Close()
			s.src = nil
			s.mu.Unlock()
			continue
		}
		var slot *detectors.Packet
		select {
		case slot = <-l.free:
		case <-ctx.Done():
			return
		}
		buf := slot.Payload[:0]
		*slot = pkt
		slot.Payload = append(buf, pkt.Payload[:min(len(pkt.Payload), cap(buf))]...)
		l.pkts <- slot
	}
}

func (l *live) reopen(ctx context.Context, s *liveSource) bool {
	for {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(time.Second):
		}
		src, err := capture.Open(s.iface, l.rulesFor(s.iface), capture.Options{})
		if err != nil {
			continue
		}
		s.mu.Lock()
		s.src = src
		s.mu.Unlock()
		l.log.Logf("capture %s: listening again", s.iface)
		return true
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

func writePid(path string) error {
	return os.WriteFile(path, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644)
}
