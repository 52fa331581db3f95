package expr

import (
	"errors"
	"strings"
	"testing"

	"github.com/doorward/doorward/formats/srcpos"
)

var pos = srcpos.Pos{File: "knockd.conf", Line: 7}

// mapEnv is an Env over maps; state keys are joined with "/".
type mapEnv struct {
	names map[string]string
	state map[string]string
}

func (m *mapEnv) Lookup(name string) Value {
	if v, ok := m.names[name]; ok {
		return FromText(v)
	}
	return Undefined()
}

func (m *mapEnv) State(key []string) Value {
	if v, ok := m.state[strings.Join(key, "/")]; ok {
		return FromText(v)
	}
	return Undefined()
}

func (m *mapEnv) SetState(key []string, v Value) error {
	k := strings.Join(key, "/")
	if !v.Defined() {
		delete(m.state, k)
		return nil
	}
	m.state[k] = v.String()
	return nil
}

func knock() *mapEnv {
	return &mapEnv{
		names: map[string]string{"IP": "10.1.1.1", "PORT": "22", "FLAG0": "5", "FLAG10": "9", "CHECKSUM": "36",
			"LOGIP": "192.0.2.7", "TIME": "1000000", "NOW": "1000000", "THISHOUR": "13", "THISDAY": "24"},
		state: map[string]string{},
	}
}

func TestEval(t *testing.T) {
	tests := []struct {
		name, src string
		state     map[string]string
		want      string // GoString of the value, or "error: …"
	}{
		{"int", "42", nil, "42"},
		{"string", `"a b\"c\\"`, nil, `"a b\"c\\"`},
		{"field int", "PORT", nil, "22"},
		{"field address", "IP", nil, `"10.1.1.1"`},
		{"missing field", "FLAG3", nil, "undef"},
		{"precedence", "1 + 2 * 3 - 4 / 2", nil, "5"},
		{"parens", "(1 + 2) * 3", nil, "9"},
		{"unary minus", "-PORT + 2", nil, "-20"},
		{"double negation", "- -3", nil, "3"},
		{"division truncates", "-7 / 2", nil, "-3"},
		{"not", "!0", nil, "1"},
		{"not string", `!"0"`, nil, "1"},
		{"not empty string", `!""`, nil, "1"},
		{"not address", "!IP", nil, "0"},
		{"and short circuit", "0 && 1/0", nil, "0"},
		{"or short circuit", "1 || 1/0", nil, "1"},
		{"and yields 1", "2 && 3", nil, "1"},
		{"relational below additive", "1 + 1 == 2", nil, "1"},
		{"equality below relational", "1 < 2 == 1", nil, "1"},
		{"int equals int string", `PORT == "22"`, nil, "1"},
		{"leading zeros are the number", `"007" == 7`, nil, "1"},
		{"address vs string", `IP == "10.1.1.1"`, nil, "1"},
		{"address vs int is a string comparison", "IP == 10", nil, "0"},
		{"string order", `"abc" < "abd"`, nil, "1"},
		{"int renders in string comparison", `IP > 9`, nil, "0"},
		{"undefined is 0 in comparison", "state(IP,x) == 0", nil, "1"},
		{"undefined is 0 below int", "state(IP,x) < 2", nil, "1"},
		{"undefined is \"0\" against a string", `state(IP,x) == "0"`, nil, "1"},
		{"undefined is 0 in arithmetic", "state(IP,x) + 5", nil, "5"},
		{"undefined is false", "!state(IP,x)", nil, "1"},
		{"defined entry", "state(IP,visits,num)", map[string]string{"10.1.1.1/visits/num": "2"}, "2"},
		{"literal keys", "state(a,b)", map[string]string{"a/b": "x"}, `"x"`},
		{"keys from fields", "state(LOGIP,FLAG0,PORT)", map[string]string{"192.0.2.7/5/22": "1"}, "1"},
		{"key expression", "state(IP,THISHOUR-1)", map[string]string{"10.1.1.1/12": "7"}, "7"},
		{"string key", `state("IP")`, map[string]string{"IP": "3"}, "3"},
		{"FLAG10 is its own field", "FLAG10", nil, "9"},
		{"nested state", "state(state(p))", map[string]string{"p": "q", "q": "r"}, `"r"`},
		{"division by zero", "1 / (PORT - 22)", nil, "error: knockd.conf:7: condition: division by zero at column 3"},
		{"overflow", "9223372036854775807 + 1", nil, "error: knockd.conf:7: condition: integer overflow at column 21"},
		{"overflow mul", "4611686018427387904 * 2", nil, "error: knockd.conf:7: condition: integer overflow at column 21"},
		{"overflow neg", "-(-9223372036854775807 - 1)", nil, "error: knockd.conf:7: condition: integer overflow at column 1"},
		{"min / -1", "(-9223372036854775807 - 1) / -1", nil, "error: knockd.conf:7: condition: integer overflow at column 28"},
		{"arithmetic on address", "IP + 1", nil, `error: knockd.conf:7: condition: "10.1.1.1" is not an integer at column 4`},
		{"undefined key", "state(IP,FLAG3)", nil, "error: knockd.conf:7: condition: state(…) key 2 is undefined at column 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := Parse(tt.src, pos, "condition")
			if err != nil {
				t.Fatal(err)
			}
			env := knock()
			for k, v := range tt.state {
				env.state[k] = v
			}
			v, err := e.Eval(env)
			got := v.GoString()
			if err != nil {
				got = "error: " + err.Error()
			}
			if got != tt.want {
				t.Errorf("%s = %s, want %s", tt.src, got, tt.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct{ src, want string }{
		{"", "expression ends too early at column 1"},
		{"PORT ==", "expression ends too early at column 8"},
		{"PORT = 22", `unexpected "=" (comparison is "==") at column 6`},
		{"port == 22", `unknown name "port" (fields and keywords are upper case: IP, PORT, TIME, FLAG0…, CHECKSUM, LOGIP, KNOCKTIME, NOW, THISYEAR, THISMONTH, THISDAY, THISHOUR; other words only as state(…) keys) at column 1`},
		{"FLAG01", `unknown name "FLAG01"`},
		{"PORT == 22 & 1", `unexpected "&" (did you mean "&&"?) at column 12`},
		{"(1 + 2", `expected ")", found end of expression at column 7`},
		{"1 + 2)", `unexpected ")" at column 6`},
		{"state", `expected "(", found end of expression at column 6`},
		{"state()", "state() needs at least one key at column 7"},
		{"state(IP visits)", `expected "," or ")" in state(…), found "visits" at column 10`},
		{"state(IP,visits + 1)", `unknown name "visits" (a lower-case word is a literal key only as a whole state(…) argument) at column 10`},
		{"state(IP,x)++", `"++" changes state: it belongs in a State statement at column 12`},
		{`"abc`, "unterminated string at column 1"},
		{`"a\n"`, `bad escape in string (only \" and \\) at column 3`},
		{"99999999999999999999", "integer 99999999999999999999 out of range at column 1"},
		{"12ab", `bad number "12ab" at column 1`},
		{"PORT == 22 ; rm", `unexpected character ";" at column 12`},
		{"é", `unexpected character "é" at column 1`},
		{"$x", `unexpected character "$" at column 1`},
		{strings.Repeat("(", 60) + "1" + strings.Repeat(")", 60), "nested more than 50 deep at column 51"},
		{strings.Repeat("!", 60) + "1", "nested more than 50 deep at column 51"},
		{"state(" + strings.Repeat("a,", 16) + "a)", "state(…) takes at most 16 keys at column 39"},
		{strings.Repeat("1+", MaxLen), "longer than 4096 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.src[:min(len(tt.src), 30)], func(t *testing.T) {
			_, err := Parse(tt.src, pos, "condition")
			if err == nil {
				t.Fatalf("Parse(%q) succeeded", tt.src)
			}
			want := "knockd.conf:7: condition: " + tt.want
			if !strings.HasPrefix(err.Error(), want) {
				t.Errorf("Parse(%q):\n got %s\nwant %s", tt.src, err, want)
			}
			var ce *srcpos.Error
			if !errors.As(err, &ce) || ce.Pos != pos {
				t.Errorf("error %v is not a *srcpos.Error at %v", err, pos)
			}
		})
	}
}

func TestStatements(t *testing.T) {
	tests := []struct {
		name, src string
		before    map[string]string
		after     string // the state after, as k=v pairs sorted, or "error: …"
	}{
		{"increment missing is 1", "state(IP,visits,num)++", nil, "10.1.1.1/visits/num=1"},
		{"increment", "state(IP,visits,num)++", map[string]string{"10.1.1.1/visits/num": "1"}, "10.1.1.1/visits/num=2"},
		{"decrement missing is -1", "state(a)--", nil, "a=-1"},
		{"assign time", "state(IP,visits,prevtime) = TIME", nil, "10.1.1.1/visits/prevtime=1000000"},
		{"assign address", "state(last) = LOGIP", nil, "last=192.0.2.7"},
		{"assign expression", "state(a) = state(a) * 2 + 1", map[string]string{"a": "4"}, "a=9"},
		{"add to missing", "state(a) += 5", nil, "a=5"},
		{"subtract", "state(a) -= PORT", map[string]string{"a": "30"}, "a=8"},
		{"assign undefined deletes", "state(a) = state(b)", map[string]string{"a": "1"}, ""},
		{"assign string", `state(a) = "on"`, nil, "a=on"},
		{"increment a string", "state(a)++", map[string]string{"a": "x"}, `error: knockd.conf:7: state: "x" is not an integer at column 1`},
		{"increment overflows", "state(a)++", map[string]string{"a": "9223372036854775807"}, "error: knockd.conf:7: state: integer overflow at column 1"},
		{"right side error leaves state", "state(a) = 1/0", map[string]string{"a": "1"}, "error: knockd.conf:7: state: division by zero at column 13"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := ParseStatement(tt.src, pos, "state")
			if err != nil {
				t.Fatal(err)
			}
			env := knock()
			for k, v := range tt.before {
				env.state[k] = v
			}
			got := ""
			if err := s.Exec(env); err != nil {
				got = "error: " + err.Error()
			} else {
				got = dumpState(env.state)
			}
			if got != tt.after {
				t.Errorf("%s: got %q, want %q", tt.src, got, tt.after)
			}
		})
	}
}

func dumpState(m map[string]string) string {
	var out []string
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	return strings.Join(sortStrings(out), " ")
}

func sortStrings(s []string) []string {
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[j] < s[i] {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
	return s
}

func TestStatementErrors(t *testing.T) {
	tests := []struct{ src, want string }{
		{"PORT = 1", "a State statement starts with state(…), found \"PORT\" at column 1"},
		{"state(a) == 1", `expected =, ++, --, += or -= after state(…), found "==" at column 10`},
		{"state(a)", "expected =, ++, --, += or -= after state(…), found end of expression at column 9"},
		{"state(a)++ 1", `unexpected "1" at column 12`},
		{"state(a) = ", "expression ends too early at column 12"},
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			_, err := ParseStatement(tt.src, pos, "state")
			want := "knockd.conf:7: state: " + tt.want
			if err == nil || err.Error() != want {
				t.Errorf("ParseStatement(%q):\n got %v\nwant %s", tt.src, err, want)
			}
		})
	}
}

func TestCommand(t *testing.T) {
	tests := []struct {
		name, src string
		state     map[string]string
		want      string
	}{
		{"manual example", "/sbin/iptables -I INPUT -p tcp -s IP/32 -d 0/0 --dport PORT --syn -j ACCEPT", nil,
			"/sbin/iptables -I INPUT -p tcp -s 10.1.1.1/32 -d 0/0 --dport 22 --syn -j ACCEPT"},
		{"LOGIP is not LOG+IP", "-j LOG --log-prefix x LOGIP", nil, "-j LOG --log-prefix x 192.0.2.7"},
		{"FLAG10 is not FLAG1+0", "FLAG10 FLAG0", nil, "9 5"},
		{"words containing names stay", "SOMEIP IPS IP_ADDR myIP 2IP", nil, "SOMEIP IPS IP_ADDR myIP 2IP"},
		{"punctuation delimits", "x=IP,PORT;echo TIME", nil, "x=10.1.1.1,22;echo 1000000"},
		{"state value", "echo state(IP,visits,num) visits", map[string]string{"10.1.1.1/visits/num": "3"}, "echo 3 visits"},
		{"undefined state is empty", "echo [state(IP,nope)]", nil, "echo []"},
		{"state with keys from fields", "echo state(IP, FLAG0)!", map[string]string{"10.1.1.1/5": "ok"}, "echo ok!"},
		{"mystate( is text", "mystate(IP)", nil, "mystate(10.1.1.1)"},
		{"missing field", "echo FLAG3", nil, "error: knockd.conf:7: system: FLAG3 is not set for this knock"},
		{"unsafe state value", "echo state(a)", map[string]string{"a": "x; rm -rf /"}, `error: knockd.conf:7: system: value "x; rm -rf /" of state(…) has a character unsafe in a shell command (";")`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ParseCommand(tt.src, pos, "system")
			if err != nil {
				t.Fatal(err)
			}
			env := knock()
			for k, v := range tt.state {
				env.state[k] = v
			}
			got, err := c.Render(env)
			if err != nil {
				got = "error: " + err.Error()
			}
			if got != tt.want {
				t.Errorf("Render(%q):\n got %q\nwant %q", tt.src, got, tt.want)
			}
		})
	}
}

func TestCommandErrors(t *testing.T) {
	_, err := ParseCommand("echo state(IP, visits", pos, "system")
	want := `knockd.conf:7: system: expected "," or ")" in state(…), found end of expression at column 22`
	if err == nil || err.Error() != want {
		t.Errorf("got %v, want %s", err, want)
	}
}

// TestRecipes evaluates every condition and statement of the spec's §8
// recipes over a sequence of knocks and checks which were admitted. The
// knockdaemon package replays the same recipes end to end with commands.
func TestRecipes(t *testing.T) {
	type knockAt struct {
		at       int64  // epoch seconds
		port     string // PORT
		flag0    string
		thishour string
		thisday  string
	}
	hour, t0 := int64(3600), int64(1_100_000_000)
	tests := []struct {
		name  string
		cond  string
		stmts []string
		seq   []knockAt
		want  string // one letter per knock: y admitted, n refused
	}{
		{
			name:  "throttle once per hour per IP",
			cond:  "PORT == 22 && ( ! state(IP,visits,prevtime) || TIME-state(IP,visits,prevtime) > 3600)",
			stmts: []string{"state(IP,visits,prevtime) = TIME"},
			seq:   []knockAt{{at: t0, port: "22"}, {at: t0 + 10, port: "22"}, {at: t0 + hour, port: "22"}, {at: t0 + hour + 1, port: "22"}, {at: t0 + hour + 2, port: "22"}, {at: t0 + 3*hour, port: "80"}},
			want:  "ynnynn",
		},
		{
			name:  "at most two openings per IP",
			cond:  "PORT == 22 && state(IP,visits,num) < 2",
			stmts: []string{"state(IP,visits,num)++"},
			seq:   []knockAt{{port: "22"}, {port: "80"}, {port: "22"}, {port: "22"}, {port: "22"}},
			want:  "ynynn",
		},
		{
			name:  "one-time knocks by counter",
			cond:  "PORT == 22 && state(IP,visits,PORT,num) < FLAG0",
			stmts: []string{"state(IP,visits,PORT,num)++"},
			seq:   []knockAt{{port: "22", flag0: "1"}, {port: "22", flag0: "1"}, {port: "22", flag0: "2"}, {port: "22", flag0: "2"}, {port: "22", flag0: "4"}, {port: "22", flag0: "3"}},
			want:  "ynynyn",
		},
		{
			name:  "one-time knocks by unique value",
			cond:  "PORT == 22 && ! state(IP,uniqueval,FLAG0)",
			stmts: []string{"state(IP,uniqueval,FLAG0)++"},
			seq:   []knockAt{{port: "22", flag0: "7"}, {port: "22", flag0: "7"}, {port: "22", flag0: "8"}, {port: "22", flag0: "7"}},
			want:  "ynyn",
		},
		{
			name:  "unique value expiring per hour",
			cond:  "PORT == 22 && ! state(IP,uniqueval,THISHOUR,FLAG0)",
			stmts: []string{"state(IP,uniqueval,THISHOUR,FLAG0)++"},
			seq:   []knockAt{{port: "22", flag0: "7", thishour: "13"}, {port: "22", flag0: "7", thishour: "13"}, {port: "22", flag0: "7", thishour: "14"}, {port: "22", flag0: "7", thishour: "14"}},
			want:  "ynyn",
		},
		{
			name:  "unique value expiring per day",
			cond:  "PORT == 22 && ! state(IP,uniqueval,THISDAY,FLAG0)",
			stmts: []string{"state(IP,uniqueval,THISDAY,FLAG0)++"},
			seq:   []knockAt{{port: "22", flag0: "7", thisday: "24"}, {port: "22", flag0: "7", thisday: "24"}, {port: "22", flag0: "7", thisday: "25"}},
			want:  "yny",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cond, err := Parse(tt.cond, pos, "condition")
			if err != nil {
				t.Fatal(err)
			}
			if !cond.UsesState() {
				t.Errorf("recipe condition does not use state")
			}
			var stmts []*Stmt
			for _, s := range tt.stmts {
				st, err := ParseStatement(s, pos, "state")
				if err != nil {
					t.Fatal(err)
				}
				stmts = append(stmts, st)
			}
			state := map[string]string{}
			var got strings.Builder
			for _, k := range tt.seq {
				env := &mapEnv{state: state, names: map[string]string{"IP": "10.1.1.1", "PORT": k.port, "TIME": itoa(k.at)}}
				for n, v := range map[string]string{"FLAG0": k.flag0, "THISHOUR": k.thishour, "THISDAY": k.thisday} {
					if v != "" {
						env.names[n] = v
					}
				}
				ok, err := cond.True(env)
				if err != nil {
					t.Fatal(err)
				}
				if !ok {
					got.WriteByte('n')
					continue
				}
				got.WriteByte('y')
				for _, s := range stmts {
					if err := s.Exec(env); err != nil {
						t.Fatal(err)
					}
				}
			}
			if got.String() != tt.want {
				t.Errorf("admitted %s, want %s (state %v)", got.String(), tt.want, state)
			}
		})
	}
}

func itoa(i int64) string { return Int(i).String() }

func TestNames(t *testing.T) {
	e, err := Parse("PORT == 22 && state(IP,visits,FLAG0) < TIME", pos, "condition")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(e.Names(), ","); got != "FLAG0,IP,PORT,TIME" {
		t.Errorf("Names() = %s", got)
	}
	if e2, _ := Parse("PORT == 22", pos, "condition"); e2.UsesState() {
		t.Errorf("PORT == 22 uses state?")
	}
	c, err := ParseCommand("iptables -s IP --dport state(a,FLAG1)", pos, "system")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(c.Names(), ","); got != "FLAG1,IP" || !c.UsesState() {
		t.Errorf("command Names() = %s, UsesState %v", got, c.UsesState())
	}
}

func TestIsName(t *testing.T) {
	for w, want := range map[string]bool{
		"IP": true, "FLAG0": true, "FLAG10": true, "FLAG999": true, "FLAG1000": false, "FLAG01": false,
		"FLAG": false, "ip": false, "LOG": false, "THISHOUR": true, "KNOCKTIME": true, "NOW": true, "CLIENT": false,
	} {
		if IsName(w) != want {
			t.Errorf("IsName(%q) = %v", w, !want)
		}
	}
}
