package fwknop

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/doorward/doorward/actions"
	"github.com/doorward/doorward/actions/engine"
	"github.com/doorward/doorward/actions/nft"
	"github.com/doorward/doorward/config/knockd"
	"github.com/doorward/doorward/formats/nftset"
)

// Name is the protocol's name (detectors/fwknop registers its detector,
// which validates the doors' keys).
const Name = "fwknop"

func init() {
	actions.Register(Name, newAction)
}

// registered adapts the Action to the actions contract: Reconfigure takes
// the config's doors, and the nftables sets are checked (and the socket
// opened) when a door names one.
type registered struct {
	*Action
	env  *actions.Env
	key  func(*knockd.Door) string
	sets *nft.Backend
}

func newAction(doors []*knockd.Door, env *actions.Env) (actions.Action, error) {
	r := &registered{env: env, key: env.Key}
	if r.key == nil {
		r.key = func(d *knockd.Door) string { return d.Name }
	}
	ds, err := r.fromDoors(doors)
	if err != nil {
		r.closeSets()
		return nil, err
	}
	opt := Options{Run: env.Run, Logf: env.Logf, Store: env.Doors, Sets: engine.Pretend{}, Opened: env.Opened}
	if !env.Replay {
		opt.Sets = lazySets{r}
	}
	r.Action = New(ds, opt)
	if env.Latency != nil && !env.Replay {
		r.eng.SetLatency(env.Latency)
	}
	if env.LogRate != 0 {
		r.eng.SetLogRate(env.LogRate)
	}
	if env.LogSuppressed != nil {
		r.eng.CountSuppressed(env.LogSuppressed)
	}
	if env.Tally != nil {
		// One event per requested port: a knock asking for two ports
		// counts twice, as it opens two doors.
		r.eng.OnKnock(func(door string, o engine.Outcome) {
			if o == engine.Accepted {
				env.Tally.Knock(door, actions.Accepted, "")
			} else {
				env.Tally.Knock(door, actions.Refused, o.Reason())
			}
		})
	}
	return r, nil
}

func (r *registered) Reconfigure(doors []*knockd.Door) error {
	ds, err := r.fromDoors(doors)
	if err != nil {
		return err
	}
	r.SetDoors(ds)
	return nil
}

func (r *registered) Close(ctx context.Context) {
	r.Action.Close(ctx)
	r.closeSets()
}

func (r *registered) closeSets() {
	if r.sets != nil {
		r.sets.Close()
		r.sets = nil
	}
}

// lazySets is the engine's Sets: the backend opened by fromDoors, or an
// error if no door named a set when it was built (a journaled door of a
// door since removed is closed by the daemon's own backend at start).
type lazySets struct{ r *registered }

func (l lazySets) Add(ref nftset.Ref, addr netip.Addr, timeout time.Duration) error {
	if l.r.sets == nil {
		return errors.New("no connection to nftables")
	}
	return l.r.sets.Add(ref, addr, timeout)
}

func (l lazySets) Delete(ref nftset.Ref, addr netip.Addr) error {
	if l.r.sets == nil {
		b, err := nft.Open()
		if err != nil {
			return err
		}
		l.r.sets = b
	}
	return l.r.sets.Delete(ref, addr)
}

// fromDoors reads what the action needs of each door's keys. The
// detector validated them (with file:line); here a value that does not
// read is an error without a line, which only a detector bug lets through.
// A live action checks each set (creating a missing one) and learns
// whether it is keyed by address and port.
func (r *registered) fromDoors(doors []*knockd.Door) ([]Door, error) {
	var out []Door
	var errs []error
	for _, kd := range doors {
		d := Door{Key: r.key(kd), Name: kd.Name}
		for _, p := range kd.Params {
			switch strings.ToUpper(strings.ReplaceAll(p.Key, "-", "_")) {
			case "CMD_CYCLE_OPEN":
				d.CmdOpen = p.Value
			case "CMD_CYCLE_CLOSE":
				if !strings.EqualFold(p.Value, "NONE") {
					d.CmdClose = p.Value
				}
			case "NFT_SET", "NFT_SET_6":
				i := 0
				if strings.HasSuffix(p.Key, "6") {
					i = 1
				}
				ref, err := nftset.Parse(p.Value)
				if err != nil {
					errs = append(errs, fmt.Errorf("%s: %s: %w", p.Pos, p.Key, err))
					continue
				}
				d.Set[i], d.PerPort[i] = ref, true
			}
		}
		for i, ref := range d.Set {
			if ref.IsZero() || d.CmdOpen != "" || r.env.Replay {
				continue
			}
			per, err := r.probe(ref, i == 1)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: [%s]: %w", kd.Pos, kd.Name, err))
				continue
			}
			d.PerPort[i] = per
		}
		out = append(out, d)
	}
	return out, errors.Join(errs...)
}

// probe checks the set r, creating it if missing, and says whether it is
// keyed by address . inet_service (an element per port: what a set made
// here is) or by address alone (an element per address: every port the
// admin's rule lets through).
func (r *registered) probe(ref nftset.Ref, v6 bool) (perPort bool, err error) {
	if r.sets == nil {
		if r.sets, err = nft.Open(); err != nil {
			return false, err
		}
	}
	withPort := ref
	withPort.Port = 1 // any port: Ensure wants the address . inet_service type
	first := r.sets.Ensure(withPort, v6)
	if first == nil {
		return true, nil
	}
	if r.sets.Ensure(ref, v6) == nil {
		return false, nil
	}
	return false, first
}
