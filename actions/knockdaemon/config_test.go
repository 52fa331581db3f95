package knockdaemon

import (
	"slices"
	"strings"
	"testing"

	"github.com/doorward/doorward/config/knockd"
)

const spanDoor = `
[ssh]
	Type = knockdaemon
	knock = IP,PORT,FLAG0,CHECKSUM
`

func parseConf(t *testing.T, conf string) []*knockd.Door {
	t.Helper()
	cfg, err := knockd.Parse("k.conf", []byte(conf))
	if err != nil {
		t.Fatal(err)
	}
	return cfg.Doors
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name, conf string
		want       []string // every error, in order
	}{
		{"bad condition", spanDoor + `
[a]
	Type = action
	Condition = PORT = 22
	System = x
`, []string{`k.conf:8: condition: unexpected "=" (comparison is "==") at column 6`}},
		{"bad statement and command in one pass", spanDoor + `
[a]
	Type = action
	State = state(IP,n) + 1
	System = echo state(IP
	Delay = 1m
	Use = maybe
	Time_Buckets = weekly
	Colour = blue
`, []string{
			`k.conf:8: state: expected =, ++, --, += or -= after state(…), found "+" at column 13`,
			`k.conf:9: system: expected "," or ")" in state(…), found end of expression at column 14`,
			`k.conf:10: Delay: want whole seconds from 0 to 86400, got "1m"`,
			`k.conf:11: Use: want yes or no, got "maybe"`,
			`k.conf:12: Time_Buckets: want calendar or absolute, got "weekly"`,
			`k.conf:13: Colour: not an action directive (have: Door, Condition, State, System, Delay, Use, Time_Buckets)`,
			`k.conf:6: action "a" has no State or System line`,
		}},
		{"delay too long", spanDoor + `
[a]
	Type = action
	Delay = 86401
	System = x
`, []string{`k.conf:8: Delay: want whole seconds from 0 to 86400, got "86401"`}},
		{"twice", spanDoor + `
[a]
	Type = action
	condition = 1
	CONDITION = 2
	System = x
`, []string{`k.conf:9: CONDITION: given twice (first at line 8)`}},
		{"no door", `
[a]
	Type = action
	System = x
`, []string{`k.conf:2: action "a": no door with Type = knockdaemon for it to act on`}},
		{"which door", spanDoor + `
[web]
	Type = knockdaemon
[a]
	Type = action
	System = x
`, []string{`k.conf:8: action "a": 2 doors with Type = knockdaemon; say which with Door = NAME`}},
		{"unknown door", spanDoor + `
[a]
	Type = action
	Door = web
	System = x
`, []string{`k.conf:8: Door: no door [web] with Type = knockdaemon`}},
		{"empty system", spanDoor + `
[a]
	Type = action
	System =
`, []string{`k.conf:8: system: empty command`, `k.conf:6: action "a" has no State or System line`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Check(parseConf(t, tt.conf))
			if err == nil {
				t.Fatal("Check accepted the config")
			}
			if got, want := err.Error(), strings.Join(tt.want, "\n"); got != want {
				t.Errorf("errors:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

// TestRepeatedDoorNames: a repeated [web] is web#2, as events name it.
func TestRepeatedDoorNames(t *testing.T) {
	conf := spanDoor + `
[web]
	Type = knockdaemon
[web]
	Type = knockdaemon
[a]
	Type = action
	Door = web
	System = echo a
[b]
	Type = action
	Door = web#2
	System = echo b
`
	if err := Check(parseConf(t, conf)); err != nil {
		t.Fatal(err)
	}
	doors := parseConf(t, conf)
	keys := (&knockd.Config{Doors: doors}).Keys()
	c, err := Parse(doors, func(d *knockd.Door) string { return keys[d] })
	if err != nil {
		t.Fatal(err)
	}
	if c.Actions[0].Door != "web" || c.Actions[1].Door != "web#2" || c.Doors["web#2"] != doors[2] {
		t.Errorf("doors %s, %s", c.Actions[0].Door, c.Actions[1].Door)
	}
}

func TestConfigValues(t *testing.T) {
	conf := spanDoor + `
[web]
	Type = knockdaemon
	knock = IP,PORT,CHECKSUM
[a]
	Type = action
	Door = web
	use = No
	delay = 90
	time_buckets = Absolute
	state = state(IP,n)++
	system = echo IP
	State = state(IP,m) = 1
[b]
	Type = action
	Door = ssh
	Condition = ! state(IP,x)
	System = echo FLAG0
`
	c, err := Parse(parseConf(t, conf), func(d *knockd.Door) string { return d.Name })
	if err != nil {
		t.Fatal(err)
	}
	a, b := c.Actions[0], c.Actions[1]
	got := []any{a.Name, a.Door, a.Use, a.Delay.String(), a.Buckets.String(), len(a.Steps), a.Steps[0].Stmt != nil, a.Steps[1].Cmd != nil, a.Steps[2].Stmt != nil, a.Cond == nil,
		b.Door, b.Use, b.Buckets.String(), b.Cond.UsesState()}
	want := []any{"a", "web", false, "1m30s", "absolute", 3, true, true, true, true,
		"ssh", true, "calendar", true}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("field %d = %v, want %v", i, got[i], want[i])
		}
	}
	wantWarn := []string{"door web: no enabled action; its knocks are only logged"}
	if strings.Join(c.Warnings, "\n") != strings.Join(wantWarn, "\n") {
		t.Errorf("warnings %q, want %q", c.Warnings, wantWarn)
	}
}

// TestReplayWarning: an unguarded door is only warned about when it turns
// the detector's spent store off; otherwise replays never reach it.
func TestReplayWarning(t *testing.T) {
	conf := `
[on]
	Type = knockdaemon
	knock = IP,PORT,CHECKSUM
[off]
	Type = knockdaemon
	knock = IP,PORT,CHECKSUM
	spent_knocks = 0
[a]
	Type = action
	Door = on
	System = echo IP
[b]
	Type = action
	Door = off
	System = echo IP
`
	c, err := Parse(parseConf(t, conf), func(d *knockd.Door) string { return d.Name })
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"door off: Spent_Knocks = 0 and no condition guards against replayed knocks"}
	if !slices.Equal(c.Warnings, want) {
		t.Errorf("warnings %q, want %q", c.Warnings, want)
	}
}
