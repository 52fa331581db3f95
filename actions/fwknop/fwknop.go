// Package fwknop is the action of fwknop doors: an accepted SPA packet
// opens each port it asked for, for the address it named, for
// FW_ACCESS_TIMEOUT (or the client's timeout, capped by MAX_FW_TIMEOUT),
// and closes it on time, at SIGTERM, and after a crash.
//
// A door opens through the first of these its stanza has:
//
//  1. CMD_CYCLE_OPEN / CMD_CYCLE_CLOSE: the stanza's own commands, with
//     fwknopd's variables ($IP, $SRC, $PKT_SRC, $DST, $PORT, $PROTO,
//     $TIMEOUT, $CLIENT_TIMEOUT) replaced by values the detector parsed
//     and we render (addresses by netip, numbers as integers), so nothing
//     from the packet reaches the shell as text; once per packet, for its
//     first port, as fwknopd does; closed after CMD_CYCLE_TIMER.
//  2. Nft_Set / Nft_Set_6: an element per port in a set of address .
//     inet_service (or per address in a set of addresses), with the
//     timeout as the element's own (actions/nft, docs/nftables.md).
//  3. iptables (ip6tables for IPv6): a rule per port in fwknopd's
//     FWKNOP_INPUT chain of the filter table, jumped to from the top of
//     INPUT, in fwknopd's form ("-p 6 -s ADDR --dport 22 -m comment
//     --comment _exp_<epoch> -j ACCEPT"), so fwknopd's own tools read it.
//
// Opening, journaling, timing out and closing are the command engine's
// (actions/engine): each (door, port, address) is an engine door whose
// start and stop lines (or set element) are rendered here, so every fwknop
// door is in the journal like every other, and the daemon's crash
// recovery closes it.
package fwknop

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/doorward/doorward/actions"
	"github.com/doorward/doorward/actions/command"
	"github.com/doorward/doorward/actions/engine"
	"github.com/doorward/doorward/formats/nftset"
	"github.com/doorward/doorward/formats/proto"
)

// Door is an fwknop door as the action needs it.
type Door struct {
	Key, Name string
	// CmdOpen and CmdClose are CMD_CYCLE_OPEN and CMD_CYCLE_CLOSE, as
	// written ("" CmdClose: NONE).
	CmdOpen, CmdClose string
	// Set holds the door's nftables sets (Nft_Set, Nft_Set_6); PerPort
	// says each set is keyed by address . inet_service.
	Set     [2]nftset.Ref
	PerPort [2]bool
}

// Request is one port an accepted SPA packet asked for, as the detector
// put it in the event's Record (detectors/fwknop.NewRecord).
type Request struct {
	Proto   proto.Proto
	Port    uint16
	Timeout time.Duration
}

// RequestOf reads a Request back from an event; ok is false for an event
// that carries none.
func RequestOf(ev actions.Event) (Request, bool) {
	r := ev.Record
	want := actions.HasPort | actions.HasTime | actions.HasFlag(0)
	if r == nil || r.Has&want != want || r.Time == 0 {
		return Request{}, false
	}
	p := proto.Proto(r.Flags[0])
	if p != proto.TCP && p != proto.UDP {
		return Request{}, false
	}
	return Request{Proto: p, Port: r.Port, Timeout: time.Duration(r.Time) * time.Second}, true
}

// Options are the Action's seams.
type Options struct {
	Run   actions.Runner // nil: command.Shell
	Store actions.Doors  // nil: doors kept in memory only (replay)
	Sets  engine.Sets    // nil: no nftables (doors with sets fail to open)
	Logf  actions.Logf
	// Opened is told of each door a packet seen here opened, under the
	// fwknop door's key (door groups, docs/fleet.md).
	Opened actions.Opened
}

// Action opens fwknop doors through the command engine.
type Action struct {
	eng   *engine.Engine
	doors map[string]Door
	logf  actions.Logf
	// knock is the event Handle is opening, under its door's key: the
	// engine knows the port's door key only, and tells Opened during
	// Open, on this goroutine.
	knock  actions.Event
	opened actions.Opened
}

// New returns an Action for doors.
func New(doors []Door, opt Options) *Action {
	if opt.Run == nil {
		opt.Run = command.Shell
	}
	if opt.Logf == nil {
		opt.Logf = actions.Discard
	}
	a := &Action{eng: engine.New(opt.Run, opt.Store, opt.Logf), logf: opt.Logf, opened: opt.Opened}
	a.eng.SetOpened(func(_ actions.Event, due time.Time) { a.opened.Tell(a.knock, due) })
	if opt.Sets != nil {
		a.eng.SetSets(opt.Sets)
	}
	a.SetDoors(doors)
	return a
}

// Engine is the Action's command engine, for the registration to set
// its log rate.
func (a *Action) Engine() *engine.Engine { return a.eng }

// SetDoors replaces the doors (reload). Doors open keep the lines they
// were opened with.
func (a *Action) SetDoors(doors []Door) {
	a.doors = make(map[string]Door, len(doors))
	for _, d := range doors {
		a.doors[d.Key] = d
	}
}

// Handle opens the door of one requested port (or runs the command cycle).
func (a *Action) Handle(ctx context.Context, ev actions.Event) {
	d, ok := a.doors[ev.Door]
	if !ok || ev.Kind != actions.Knock {
		return
	}
	req, ok := RequestOf(ev)
	if !ok {
		a.logf("%s: %s: SPA event without a port, ignored", ev.Addr, d.Name)
		return
	}
	key, ed := engineDoor(d, ev, req)
	a.eng.SetDoors(map[string]engine.Door{key: ed})
	a.knock = ev
	ev.Door = key
	a.eng.Open(ctx, ev)
}

// engineDoor is the engine's door for one request: its key (the door's,
// with the port: each port is opened and closed on its own, and a packet
// for a port already open keeps it open longer) and its lines.
func engineDoor(d Door, ev actions.Event, req Request) (string, engine.Door) {
	ed := engine.Door{Name: d.Name, CmdTimeout: req.Timeout}
	port := fmt.Sprintf("%s/%d", req.Proto, req.Port)
	key := d.Key + " " + port
	if d.CmdOpen != "" {
		v := Vars{IP: ev.Addr, PktSrc: ev.Sender, Dst: ev.Dst, Port: req.Port, Proto: req.Proto,
			Timeout: expires(ev, req), ClientTimeout: int64(req.Timeout / time.Second)}
		open, close := Cycle(d.CmdOpen, v), ""
		if d.CmdClose != "" {
			close = Cycle(d.CmdClose, v)
		}
		ed.Start = [2]string{open, open}
		ed.Stop = [2]string{close, close}
		return key, ed
	}
	ed.Name = d.Name + " " + port
	if !d.Set[0].IsZero() || !d.Set[1].IsZero() {
		for i, r := range d.Set {
			if !r.IsZero() && d.PerPort[i] {
				r.Port = req.Port
			}
			ed.Set[i] = r
		}
		return key, ed
	}
	exp := expires(ev, req)
	for i, tool := range [2]string{"iptables", "ip6tables"} {
		ed.Start[i], ed.Stop[i] = Rule(tool, ev.Addr, req, exp)
	}
	return key, ed
}

// expires is when the door of req closes, Unix seconds: the request's
// timeout after the packet, or the expiry another host of the door's
// group published (the engine closes the door then).
func expires(ev actions.Event, req Request) int64 {
	if !ev.Until.IsZero() {
		return ev.Until.Unix()
	}
	return ev.Time.Unix() + int64(req.Timeout/time.Second)
}

// Chain is fwknopd's chain in the filter table.
const Chain = "FWKNOP_INPUT"

// Rule renders the command lines that add and delete the rule of one
// request in fwknopd's FWKNOP_INPUT chain, creating the chain and its jump
// from INPUT first if they are missing (as fwknopd does at start). The
// lines hold only the tool, the rendered address and integers.
func Rule(tool string, addr netip.Addr, req Request, expires int64) (add, del string) {
	spec := fmt.Sprintf("%s -p %d -s %s --dport %d -m comment --comment _exp_%d -j ACCEPT",
		Chain, int(req.Proto), addr.WithZone("").String(), req.Port, expires)
	t := tool + " -w -t filter"
	add = fmt.Sprintf("%[1]s -N %[2]s 2>/dev/null; %[1]s -C INPUT -j %[2]s 2>/dev/null || %[1]s -I INPUT 1 -j %[2]s || exit 1; %[1]s -A %[3]s", t, Chain, spec)
	del = t + " -D " + spec
	return add, del
}

// Vars are the values CMD_CYCLE lines may name.
type Vars struct {
	IP            netip.Addr // $IP, $SRC: the address the door opens for
	PktSrc        netip.Addr // $PKT_SRC: the packet's source
	Dst           netip.Addr // $DST: the packet's destination
	Port          uint16     // $PORT
	Proto         proto.Proto
	Timeout       int64 // $TIMEOUT: when the door closes, Unix seconds
	ClientTimeout int64 // $CLIENT_TIMEOUT: how long it stays open, seconds
}

// cycleVars are fwknopd's names in the order its build_cmd tries them: a
// name matches as a prefix ("$IPX" is $IP then "X").
var cycleVars = []string{"IP", "SRC", "PKT_SRC", "DST", "PORT", "PROTO", "TIMEOUT", "CLIENT_TIMEOUT"}

// Cycle substitutes v into a CMD_CYCLE line as fwknopd's build_cmd does:
// each known $NAME becomes its value; any other '$' is dropped (fwknopd
// drops it too), so no shell variable or expansion survives.
func Cycle(tmpl string, v Vars) string {
	var b strings.Builder
	for i := 0; i < len(tmpl); i++ {
		if tmpl[i] != '$' {
			b.WriteByte(tmpl[i])
			continue
		}
		for _, name := range cycleVars {
			if strings.HasPrefix(tmpl[i+1:], name) {
				b.WriteString(v.value(name))
				i += len(name)
				break
			}
		}
	}
	return b.String()
}

func (v Vars) value(name string) string {
	addr := func(a netip.Addr) string {
		if !a.IsValid() {
			return ""
		}
		return a.WithZone("").String()
	}
	switch name {
	case "IP", "SRC":
		return addr(v.IP)
	case "PKT_SRC":
		return addr(v.PktSrc)
	case "DST":
		return addr(v.Dst)
	case "PORT":
		return strconv.Itoa(int(v.Port))
	case "PROTO":
		return strconv.Itoa(int(v.Proto))
	case "TIMEOUT":
		return strconv.FormatInt(v.Timeout, 10)
	}
	return strconv.FormatInt(v.ClientTimeout, 10)
}

// Advance closes the doors due by now.
func (a *Action) Advance(ctx context.Context, now time.Time) { a.eng.Advance(ctx, now) }

// Next is when the next door closes.
func (a *Action) Next() (time.Time, bool) { return a.eng.Next() }

// Close closes every door still open (SIGTERM, end of replay).
func (a *Action) Close(ctx context.Context) { a.eng.CloseAll(ctx) }
