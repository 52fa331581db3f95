package knockdaemon

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/doorward/doorward/config"
	"github.com/doorward/doorward/config/knockd"
	"github.com/doorward/doorward/formats/expr"
)

// Section types this package reads.
const (
	DoorType   = "knockdaemon" // the doors whose knocks the actions handle (alias: portspan)
	ActionType = "action"      // the action sections
)

// MaxDelay bounds Delay. A replay runs the clock out a day past its last
// packet, so a longer delay would never run in a replay; and a command
// postponed by more than a day is better served by cron.
const MaxDelay = 24 * time.Hour

// Buckets says what THISYEAR, THISMONTH, THISDAY and THISHOUR count
// (spec §11.6).
type Buckets uint8

const (
	// Calendar: the fields of local time, as Perl's localtime gives them
	// (year, month 1–12, day of month 1–31, hour 0–23). The default, for
	// compatibility: a key with THISHOUR repeats every day, THISDAY every
	// month.
	Calendar Buckets = iota
	// Absolute: numbers that never repeat: THISHOUR = hours since the
	// epoch, THISDAY = days since 1970-01-01 of the local date, THISMONTH
	// = months since January 1970, THISYEAR = the year.
	Absolute
)

func (b Buckets) String() string {
	if b == Absolute {
		return "absolute"
	}
	return "calendar"
}

// Spec is one action section, parsed.
type Spec struct {
	Name     string
	Pos      config.Pos
	Door     string // key of the port-span door whose knocks it handles
	DoorName string
	Cond     *expr.Expr // nil: always
	Steps    []Step     // State and System lines, in file order
	Delay    time.Duration
	Use      bool
	Buckets  Buckets
}

// Step is one State statement or one System command.
type Step struct {
	Stmt *expr.Stmt
	Cmd  *expr.Command
	Pos  config.Pos
}

// Config is every action of a config, in file order.
type Config struct {
	Actions []*Spec
	// Doors are the port-span doors by key, for log lines and warnings.
	Doors map[string]*knockd.Door
	// Warnings are things worth logging that do not stop the daemon.
	Warnings []string
}

// Known keys of an action section, upper case → canonical spelling.
var actionKeys = []string{"Door", "Condition", "State", "System", "Delay", "Use", "Time_Buckets"}

// ActionKeys are the directives of an action section that Parse accepts
// (besides Type), canonical spelling; the parser looks keys up in the
// same list, so a document can be checked against it.
func ActionKeys() []string { return slices.Clone(actionKeys) }

// Parse reads the action sections among doors (the kind's port-span doors
// and its sections of Type = action), checking every one and returning all
// errors at once, each with file:line. key gives a door's unique key, as
// events carry it.
func Parse(doors []*knockd.Door, key func(*knockd.Door) string) (*Config, error) {
	c := &Config{Doors: map[string]*knockd.Door{}}
	var spans []*knockd.Door
	for _, d := range doors {
		if d.Type == DoorType {
			spans = append(spans, d)
			c.Doors[key(d)] = d
		}
	}
	var errs config.List
	for _, d := range doors {
		if d.Type != ActionType {
			continue
		}
		s, el := parseAction(d, spans, key)
		errs = append(errs, el...)
		if s != nil {
			c.Actions = append(c.Actions, s)
		}
	}
	if err := errs.Err(); err != nil {
		return nil, err
	}
	c.Warnings = c.warnings(spans, key)
	return c, nil
}

// Check validates the action sections among doors, for --check and for a
// detector that wants to report them with the rest of the config.
// Repeated section names are numbered among doors as Config.Keys does.
func Check(doors []*knockd.Door) error {
	keys := (&knockd.Config{Doors: doors}).Keys()
	_, err := Parse(doors, func(d *knockd.Door) string { return keys[d] })
	return err
}

func parseAction(d *knockd.Door, spans []*knockd.Door, key func(*knockd.Door) string) (*Spec, config.List) {
	s := &Spec{Name: d.Name, Pos: d.Pos, Use: true}
	var errs config.List
	seen := map[string]config.Pos{}
	var door *config.Param
	for _, prm := range d.Params {
		i := slices.IndexFunc(actionKeys, func(k string) bool { return asciiUpper(k) == asciiUpper(prm.Key) })
		if i < 0 {
			errs.Add(config.Errorf(prm.Pos, prm.Key, "not an action directive (have: %s)", strings.Join(actionKeys, ", ")))
			continue
		}
		name := actionKeys[i]
		if name != "State" && name != "System" {
			if first, dup := seen[name]; dup {
				errs.Add(config.Errorf(prm.Pos, prm.Key, "given twice (first at line %d)", first.Line))
				continue
			}
			seen[name] = prm.Pos
		}
		switch name {
		case "Door":
			door = &prm
		case "Condition":
			e, err := expr.Parse(prm.Value, prm.Pos, "condition")
			if err != nil {
				errs.Add(err.(*config.Error))
				continue
			}
			s.Cond = e
		case "State":
			st, err := expr.ParseStatement(prm.Value, prm.Pos, "state")
			if err != nil {
				errs.Add(err.(*config.Error))
				continue
			}
			s.Steps = append(s.Steps, Step{Stmt: st, Pos: prm.Pos})
		case "System":
			if prm.Value == "" {
				errs.Add(config.Errorf(prm.Pos, "system", "empty command"))
				continue
			}
			cmd, err := expr.ParseCommand(prm.Value, prm.Pos, "system")
			if err != nil {
				errs.Add(err.(*config.Error))
				continue
			}
			if err := trustProgram(prm.Value); err != nil {
				errs.Add(config.Errorf(prm.Pos, "system", "%v", err))
				continue
			}
			s.Steps = append(s.Steps, Step{Cmd: cmd, Pos: prm.Pos})
		case "Delay":
			n, err := strconv.ParseUint(prm.Value, 10, 32)
			if err != nil || time.Duration(n)*time.Second > MaxDelay {
				errs.Add(config.Errorf(prm.Pos, prm.Key, "want whole seconds from 0 to %d, got %q", int(MaxDelay/time.Second), prm.Value))
				continue
			}
			s.Delay = time.Duration(n) * time.Second
		case "Use":
			switch strings.ToLower(prm.Value) {
			case "yes", "true", "on", "1":
				s.Use = true
			case "no", "false", "off", "0":
				s.Use = false
			default:
				errs.Add(config.Errorf(prm.Pos, prm.Key, "want yes or no, got %q", prm.Value))
			}
		case "Time_Buckets":
			switch strings.ToLower(prm.Value) {
			case "calendar":
				s.Buckets = Calendar
			case "absolute":
				s.Buckets = Absolute
			default:
				errs.Add(config.Errorf(prm.Pos, prm.Key, "want calendar or absolute, got %q", prm.Value))
			}
		}
	}
	if len(s.Steps) == 0 {
		errs.Add(config.Errorf(d.Pos, "", "action %q has no State or System line", d.Name))
	}
	target, err := findDoor(d, door, spans, key)
	if err != nil {
		errs.Add(err)
	} else {
		s.Door, s.DoorName = key(target), target.Name
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return s, nil
}

// findDoor resolves Door = NAME: a section name, or for a repeated section
// its key ("knock#2" is the second [knock]); without it, the only
// port-span door.
func findDoor(d *knockd.Door, prm *config.Param, spans []*knockd.Door, key func(*knockd.Door) string) (*knockd.Door, *config.Error) {
	if prm == nil {
		switch len(spans) {
		case 1:
			return spans[0], nil
		case 0:
			return nil, config.Errorf(d.Pos, "", "action %q: no door with Type = %s for it to act on", d.Name, DoorType)
		}
		return nil, config.Errorf(d.Pos, "", "action %q: %d doors with Type = %s; say which with Door = NAME", d.Name, len(spans), DoorType)
	}
	for _, s := range spans {
		if key(s) == prm.Value {
			return s, nil
		}
	}
	return nil, config.Errorf(prm.Pos, prm.Key, "no door [%s] with Type = %s", prm.Value, DoorType)
}

// warnings finds doors whose knocks can be replayed and fields the knock
// layout does not carry.
func (c *Config) warnings(spans []*knockd.Door, key func(*knockd.Door) string) []string {
	var out []string
	for _, d := range spans {
		k := key(d)
		enabled, guarded := 0, false
		for _, s := range c.Actions {
			if s.Door != k || !s.Use {
				continue
			}
			enabled++
			guarded = guarded || (s.Cond != nil && s.Cond.UsesState())
		}
		switch {
		case enabled == 0:
			out = append(out, fmt.Sprintf("door %s: no enabled action; its knocks are only logged", d.Name))
		case !guarded && spentOff(d):
			// Spec §7: an encrypted knock is replayable unless a condition
			// remembers what it has seen (FLAG counters, unique values).
			// The detector's spent store refuses replays, unless a door
			// turns it off.
			out = append(out, fmt.Sprintf("door %s: Spent_Knocks = 0 and no condition guards against replayed knocks", d.Name))
		}
		layout := knockLayout(d)
		if layout == nil {
			continue
		}
		for _, s := range c.Actions {
			if s.Door != k {
				continue
			}
			for _, n := range s.names() {
				field := n
				switch n {
				case "KNOCKTIME":
					field = "TIME"
				case "TIME":
					continue // now, when the knock has no TIME field
				}
				if needsField(field) && !slices.Contains(layout, field) {
					out = append(out, fmt.Sprintf("%s: action %s: %s is not in door %s's knock (%s): it is always undefined", s.Pos, s.Name, n, d.Name, strings.Join(layout, ",")))
				}
			}
		}
	}
	return out
}

// needsField reports whether name comes only from the knock record (the
// others always have a value: IP falls back to the admitted address, TIME
// to now, LOGIP comes from the packet).
func needsField(name string) bool {
	return name == "PORT" || name == "CHECKSUM" || name == "TIME" || strings.HasPrefix(name, "FLAG")
}

// knockLayout reads the port-span door's "knock = IP,PORT,…" line, if it
// has one, in upper case with CLIENT read as IP.
// spentOff reports whether the door turns the detector's spent store off
// (Spent_Knocks = 0), so replayed knocks reach its actions.
func spentOff(d *knockd.Door) bool {
	for _, p := range d.Params {
		if asciiUpper(p.Key) == "SPENT_KNOCKS" {
			return strings.TrimSpace(p.Value) == "0"
		}
	}
	return false
}

func knockLayout(d *knockd.Door) []string {
	for _, p := range d.Params {
		if asciiUpper(p.Key) != "KNOCK" {
			continue
		}
		var out []string
		for f := range strings.SplitSeq(p.Value, ",") {
			f = strings.ToUpper(strings.TrimSpace(f))
			if f == "CLIENT" {
				f = "IP"
			}
			out = append(out, f)
		}
		return out
	}
	return nil
}

func (s *Spec) names() []string {
	var all []string
	if s.Cond != nil {
		all = append(all, s.Cond.Names()...)
	}
	for _, st := range s.Steps {
		if st.Stmt != nil {
			all = append(all, st.Stmt.Names()...)
		} else {
			all = append(all, st.Cmd.Names()...)
		}
	}
	slices.Sort(all)
	return slices.Compact(all)
}

// asciiUpper folds ASCII letters only, as knockd's toupper does: Unicode
// folding would read "Uſe" (long s) as Use.
func asciiUpper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			b[i] = c - ('a' - 'A')
		}
	}
	return string(b)
}
