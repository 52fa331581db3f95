package daemon

import (
	"slices"
	"sync/atomic"
	"time"

	"github.com/doorward/doorward/actions"
	"github.com/doorward/doorward/actions/redisstore"
	"github.com/doorward/doorward/config"
	"github.com/doorward/doorward/config/knockd"
	"github.com/doorward/doorward/detectors"
)

// Door groups (docs/fleet.md): a door that names a Group is opened on
// every host whose config has a door of that name in the group. The
// runtime knows them only by name, key and protocol: a knock seen here
// that opened a grouped door (actions.Opened) is published; an opening
// another host published becomes an event for the door here, with the
// publisher's expiry as its Until, routed as a knock would be.

// groupDoor names a door across the hosts of a group.
type groupDoor struct{ group, name string }

// groupMember is a grouped door of this host's config.
type groupMember struct{ kind, key string }

// groupPlan is a plan's grouped doors, both ways.
type groupPlan struct {
	of      map[string]groupDoor // door key → its group and name
	members map[groupDoor]groupMember
	names   []string // the groups, sorted
}

// planGroups reads the Group lines of cfg's doors. A group needs State
// (the Redis its hosts share), a protocol that can open a door for what
// is left of another host's opening, a door that closes (else a member
// could not close it at the expiry), and one door of a name per group.
func planGroups(cfg *knockd.Config, keys map[*knockd.Door]string, kindOf map[string]string) (*groupPlan, []error) {
	gp := &groupPlan{of: map[string]groupDoor{}, members: map[groupDoor]groupMember{}}
	var errs []error
	bad := func(d *knockd.Door, format string, args ...any) {
		errs = append(errs, config.Errorf(d.GroupPos, "Group", format, args...))
	}
	for _, d := range cfg.Doors {
		if d.Group == "" {
			continue
		}
		kind, isDoor := kindOf[keys[d]]
		proto, _ := detectors.Lookup(kind)
		gd := groupDoor{d.Group, d.Name}
		switch {
		case cfg.Options.State == "":
			bad(d, "a door group needs [options] State, the Redis server the group's hosts share (docs/fleet.md)")
			continue
		case !isDoor:
			bad(d, "a [%s] section of type %s is not a door", d.Name, d.Type)
			continue
		case !proto.Commands && !proto.Groups:
			bad(d, "doors of type %s cannot be grouped (sequence and fwknop doors can: docs/fleet.md)", kind)
			continue
		case proto.Commands && d.Stop(false) == "" && d.Stop(true) == "" && d.NftSet.IsZero() && d.NftSet6.IsZero():
			bad(d, "a grouped door needs a Stop_Command or an Nft_Set: every host closes it at the expiry the knocked host published")
			continue
		}
		if _, dup := gp.members[gd]; dup {
			bad(d, "group %s has a door [%s] already: hosts find a group's door by its name", d.Group, d.Name)
			continue
		}
		gp.of[keys[d]] = gd
		gp.members[gd] = groupMember{kind: kind, key: keys[d]}
		if !slices.Contains(gp.names, d.Group) {
			gp.names = append(gp.names, d.Group)
		}
	}
	slices.Sort(gp.names)
	return gp, errs
}

// groupNames are the groups cfg's doors name, sorted, before its plan is
// built: what a daemon follows from its start.
func groupNames(cfg *knockd.Config) []string {
	var out []string
	for _, d := range cfg.Doors {
		if d.Group != "" && !slices.Contains(out, d.Group) {
			out = append(out, d.Group)
		}
	}
	slices.Sort(out)
	return out
}

// fleetGroups publishes the openings of this host's grouped doors and
// delivers the others'. Its Opened hook is handed to the engine and the
// actions before the groups are followed, so it reads the serving plan's
// groups through an atomic pointer; until start, and without State,
// there is nothing to publish to.
type fleetGroups struct {
	plan atomic.Pointer[groupPlan]
	g    atomic.Pointer[redisstore.Groups]
}

// opened is the actions.Opened of the engine and the actions: a door
// opened by a knock seen here is published if it is grouped.
func (f *fleetGroups) opened(ev actions.Event, due time.Time) {
	gp, g := f.plan.Load(), f.g.Load()
	if gp == nil || g == nil {
		return
	}
	gd, ok := gp.of[ev.Door]
	if !ok {
		return
	}
	g.Publish(redisstore.Opening{Group: gd.group, Door: gd.name, Addr: ev.Addr, Port: ev.Port, Record: ev.Record, Expires: due})
}

// event is what an opening another host published does here: an event
// for this host's door of that group and name, closing at the
// publisher's expiry; ok is false for a door this host does not have.
func (gp *groupPlan) event(o redisstore.Opening, now time.Time) (kind string, ev actions.Event, ok bool) {
	m, ok := gp.members[groupDoor{o.Group, o.Door}]
	if !ok {
		return "", ev, false
	}
	return m.kind, actions.Event{Kind: actions.Knock, Door: m.key, Addr: o.Addr, Sender: o.Addr, Port: o.Port,
		Record: o.Record, Time: now, Until: o.Expires}, true
}
