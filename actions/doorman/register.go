package doorman

import (
	"cmp"
	"net"
	"net/netip"
	"time"

	"github.com/doorward/doorward/actions"
	dmconfig "github.com/doorward/doorward/config/doorman"
	"github.com/doorward/doorward/config/knockd"
)

// Name is the protocol's name (detectors/doorman registers its detector).
const Name = "doorman"

func init() {
	actions.Register(Name, newAction)
}

// registered adapts the Action to the actions contract: Reconfigure takes
// the config's doors.
type registered struct {
	*Action
	key func(*knockd.Door) string
}

func newAction(doors []*knockd.Door, env *actions.Env) (actions.Action, error) {
	key := dmconfig.KeyOrName(env.Key)
	ds, err := fromDoors(doors, key)
	if err != nil {
		return nil, err
	}
	opt := Options{
		Script: Shell(cmp.Or(env.CommandTimeout, DefaultScriptTimeout)),
		Logf:   env.Logf,
		Store:  env.Doors,
		Tally:  env.Tally,
	}
	if !env.Replay {
		opt.Sockets = ProcNet{Root: "/proc"}
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
	return &registered{Action: New(ds, opt), key: key}, nil
}

func (a *registered) Reconfigure(doors []*knockd.Door) error {
	ds, err := fromDoors(doors, a.key)
	if err != nil {
		return err
	}
	a.SetDoors(ds)
	return nil
}

func fromDoors(doors []*knockd.Door, key func(*knockd.Door) string) ([]Door, error) {
	var out []Door
	for _, kd := range doors {
		d, err := dmconfig.FromDoor(kd)
		if err != nil {
			return nil, err
		}
		out = append(out, Door{
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
