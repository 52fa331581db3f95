package expr

import (
	"strings"
	"testing"
)

// seeds are the spec's §8 conditions and statements plus edge cases.
var seeds = []string{
	"PORT == 22 && ( ! state(IP,visits,prevtime) || TIME-state(IP,visits,prevtime) > 3600)",
	"PORT == 22 && state(IP,visits,num) < 2",
	"PORT == 22 && state(IP,visits,PORT,num) < FLAG0",
	"PORT == 22 && ! state(IP,uniqueval,FLAG0)",
	"! state(IP,uniqueval,THISHOUR,FLAG0)",
	"! state(IP,uniqueval,THISDAY,FLAG0)",
	"state(IP,visits,prevtime) = TIME",
	"state(IP,visits,num)++",
	"state(a) -= 1/0",
	`IP == "10.1.1.1" || -9223372036854775807 - 1 < LOGIP`,
	"/sbin/iptables -I INPUT -p tcp -s IP/32 -d 0/0 --dport PORT --syn -j ACCEPT",
	"echo state(IP,state(x),FLAG10) LOGIP",
}

// FuzzParse: no source makes a parser panic or loop, every error carries
// the position, and what parses evaluates without panicking.
func FuzzParse(f *testing.F) {
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		env := knock()
		if e, err := Parse(src, pos, "condition"); err != nil {
			if !strings.HasPrefix(err.Error(), "knockd.conf:7: condition: ") {
				t.Fatalf("error without position: %v", err)
			}
		} else {
			e.Eval(env)
		}
		if s, err := ParseStatement(src, pos, "state"); err != nil {
			if !strings.HasPrefix(err.Error(), "knockd.conf:7: state: ") {
				t.Fatalf("error without position: %v", err)
			}
		} else {
			s.Exec(env)
		}
		if c, err := ParseCommand(src, pos, "system"); err != nil {
			if !strings.HasPrefix(err.Error(), "knockd.conf:7: system: ") {
				t.Fatalf("error without position: %v", err)
			}
		} else if out, err := c.Render(env); err == nil && !strings.Contains(src, "state(") && strings.IndexFunc(src, func(r rune) bool { return r == ';' }) < 0 && strings.Count(out, ";") != 0 {
			t.Fatalf("a substitution added a ';': %q → %q", src, out)
		}
	})
}

// FuzzEval: evaluation over arbitrary field and state values never panics,
// is deterministic, and a statement leaves a value that reads back.
func FuzzEval(f *testing.F) {
	for _, s := range seeds {
		f.Add(s, "22", "5", "7")
	}
	f.Add("state(a) = PORT / FLAG0", "-9223372036854775808", "-1", "x")
	f.Add("PORT * FLAG0 + state(a)", "4611686018427387904", "2", "9223372036854775807")
	f.Fuzz(func(t *testing.T, src, port, flag0, st string) {
		env := func() *mapEnv {
			e := knock()
			e.names["PORT"], e.names["FLAG0"] = port, flag0
			e.state["a"], e.state["10.1.1.1/visits/num"] = st, st
			return e
		}
		if e, err := Parse(src, pos, "condition"); err == nil {
			v1, err1 := e.Eval(env())
			v2, err2 := e.Eval(env())
			if v1 != v2 || (err1 == nil) != (err2 == nil) {
				t.Fatalf("%q: not deterministic: %#v/%v vs %#v/%v", src, v1, err1, v2, err2)
			}
		}
		if s, err := ParseStatement(src, pos, "state"); err == nil {
			e := env()
			if err := s.Exec(e); err == nil && s.op != "=" {
				key, err := s.target.key(e)
				if err != nil {
					t.Fatalf("%q: key failed after Exec succeeded: %v", src, err)
				}
				if _, ok := e.State(key).Int(); !ok {
					t.Fatalf("%q: %s left a non-integer", src, s.op)
				}
			}
		}
	})
}
