package daemon

import (
	"cmp"
	"net"
	"net/netip"
	"time"

	dmaction "github.com/doorward/doorward/actions/doorman"
	dmconfig "github.com/doorward/doorward/config/doorman"
	"github.com/doorward/doorward/config/knockd"
	"github.com/doorward/doorward/detectors"
	dmdetect "github.com/doorward/doorward/detectors/doorman"
)

// Doorman single-packet knocks (J.B. Ward's doormand): the detector checks
// the knock and watches for the client's SYN; the action runs doormand's
// broad → narrow → delete firewall lifecycle. See docs/doorman.md.
func init() {
	registerKind("doorman", Kind{Detector: newDoormanDetector, Action: newDoormanAction})
}

func newDoormanDetector(doors []*knockd.Door, env *Env) (detectors.Detector, error) {
	ds, err := dmdetect.FromDoors(doors, doormanKey(env), dmdetect.SetupOptions{
		Resolver: dmconfig.SystemResolver(),
		// Replay and --check: archives in memory, no file checks.
		Memory:             env.Replay,
		NoPermissionChecks: env.Replay,
		Logf:               env.Logf,
	})
	if err != nil {
		return nil, err
	}
	return dmdetect.New(ds, dmdetect.Options{Logf: env.Logf, LogRate: env.LogRate, LogBurst: int(10 * env.LogRate), MaxPending: env.MaxSources, Store: env.Store}), nil
}

// doormanKey is env.Key, falling back to the door's name for doors of a
// reloaded config (Reconfigure gets no key function of its own).
func doormanKey(env *Env) func(*knockd.Door) string {
	return func(d *knockd.Door) string {
		if env.Key != nil {
			if k := env.Key(d); k != "" {
				return k
			}
		}
		return d.Name
	}
}

// doormanAction adapts actions/doorman to the daemon's Action.
type doormanAction struct {
	*dmaction.Action
	key func(*knockd.Door) string
}

func newDoormanAction(doors []*knockd.Door, env *Env) (Action, error) {
	key := doormanKey(env)
	ds, err := doormanDoors(doors, key)
	if err != nil {
		return nil, err
	}
	opt := dmaction.Options{
		Script: dmaction.Shell(cmp.Or(env.CommandTimeout, dmaction.DefaultScriptTimeout)),
		Logf:   env.Logf,
	}
	if env.Journal != nil {
		opt.Store = env.Journal
	}
	if !env.Replay {
		opt.Sockets = dmaction.ProcNet{Root: "/proc"}
		opt.Now = time.Now
		opt.IfaceOf = interfaceOf
	}
	// One capture interface is $1, live and in --replay alike, as
	// doormand passes its configured one (-i included: it is what is
	// captured, so what the rule must name).
	if len(env.Ifaces) == 1 && env.Ifaces[0] != "any" {
		ifc := env.Ifaces[0]
		opt.IfaceOf = func(netip.Addr) string { return ifc }
	}
	return &doormanAction{Action: dmaction.New(ds, opt), key: key}, nil
}

func (a *doormanAction) Reconfigure(doors []*knockd.Door) error {
	ds, err := doormanDoors(doors, a.key)
	if err != nil {
		return err
	}
	a.SetDoors(ds)
	return nil
}

func doormanDoors(doors []*knockd.Door, key func(*knockd.Door) string) ([]dmaction.Door, error) {
	var out []dmaction.Door
	for _, kd := range doors {
		d, err := dmconfig.FromDoor(kd)
		if err != nil {
			return nil, err
		}
		out = append(out, dmaction.Door{
			Key: key(kd), Name: d.Name, Add: d.FirewallAdd, Del: d.FirewallDel, Interface: d.Interface,
			Waitfor: d.Waitfor, Delay1: d.Delay1, Delay2: d.Delay2, LogLevel: int(d.LogLevel),
		})
	}
	return out, nil
}

// interfaceOf names the interface that has addr: $1 of the firewall
// scripts, as doormand passes its configured interface.
func interfaceOf(addr netip.Addr) string {
	ifs, err := net.Interfaces()
	if err != nil {
		return ""
	}
	for _, ifc := range ifs {
		addrs, err := ifc.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			if pfx, err := netip.ParsePrefix(a.String()); err == nil && pfx.Addr().Unmap() == addr {
				return ifc.Name
			}
		}
	}
	return ""
}
