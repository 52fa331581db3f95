package getopt

import (
	"reflect"
	"slices"
	"strings"
	"testing"
)

// opts is a set shaped like the programs': short and long, short only,
// long only, with and without an argument, and two long names sharing a
// prefix.
var opts = []Option{
	{Short: 'v', Long: "verbose"},
	{Short: 'd', Long: "delay", HasArg: true},
	{Short: 'h'},
	{Short: 'f', HasArg: true},
	{Long: "check"},
	{Long: "replay", HasArg: true},
	{Long: "state-dir", HasArg: true},
	{Long: "state-file", HasArg: true},
}

type result struct {
	Found    []Found
	Operands []string
	Err      string
}

func TestParse(t *testing.T) {
	v := Found{0, 'v', ""}
	d := func(arg string) Found { return Found{1, 'd', arg} }
	h := Found{2, 'h', ""}
	f := func(arg string) Found { return Found{3, 'f', arg} }
	check := Found{4, 0, ""}
	replay := func(arg string) Found { return Found{5, 0, arg} }
	dir := func(arg string) Found { return Found{6, 0, arg} }

	type mode struct{ abbrev, inOrder bool }
	permute, knockd := mode{true, false}, mode{false, true}
	tests := []struct {
		name string
		mode mode
		args []string
		want result
	}{
		{"nothing", permute, nil, result{}},
		{"cluster", permute, []string{"-vh"}, result{Found: []Found{v, h}}},
		{"attached argument", permute, []string{"-d400"}, result{Found: []Found{d("400")}}},
		{"separate argument", permute, []string{"-d", "400"}, result{Found: []Found{d("400")}}},
		{"argument ends a cluster", permute, []string{"-vd400", "x"}, result{Found: []Found{v, d("400")}, Operands: []string{"x"}}},
		{"argument that looks like an option", permute, []string{"-d", "-v"}, result{Found: []Found{d("-v")}}},
		{"empty argument", permute, []string{"-d", ""}, result{Found: []Found{d("")}}},
		{"long", permute, []string{"--verbose", "--check"}, result{Found: []Found{v, check}}},
		{"long with =", permute, []string{"--delay=400", "--replay=a=b"}, result{Found: []Found{d("400"), replay("a=b")}}},
		{"long with empty =", permute, []string{"--delay="}, result{Found: []Found{d("")}}},
		{"long separate", permute, []string{"--delay", "400"}, result{Found: []Found{d("400")}}},
		{"abbreviation", permute, []string{"--del=5", "--ver", "--ch"}, result{Found: []Found{d("5"), v, check}}},
		{"abbreviation reports the whole name", permute, []string{"--del"}, result{Err: "option '--delay' requires an argument"}},
		{"exact name beats a longer one", permute, []string{"--state-dir", "x"}, result{Found: []Found{dir("x")}}},
		{"ambiguous", permute, []string{"-v", "--state", "x"}, result{Found: []Found{v}, Err: "option '--state' is ambiguous; possibilities: '--state-dir' '--state-file'"}},
		{"abbreviation refused", knockd, []string{"-v", "--verb"}, result{Found: []Found{v}, Err: "unrecognized option '--verb'"}},
		{"unknown long", permute, []string{"--bogus"}, result{Err: "unrecognized option '--bogus'"}},
		{"empty long", permute, []string{"--=x"}, result{Err: "unrecognized option '--'"}},
		{"long argument not allowed", permute, []string{"--check=yes"}, result{Err: "option '--check' doesn't allow an argument"}},
		{"long argument missing", permute, []string{"--replay"}, result{Err: "option '--replay' requires an argument"}},
		{"short argument missing", permute, []string{"-v", "-d"}, result{Found: []Found{v}, Err: "option requires an argument -- 'd'"}},
		{"unknown short in a cluster", permute, []string{"-vxh"}, result{Found: []Found{v}, Err: "invalid option -- 'x'"}},
		{"short only has no long", permute, []string{"--f", "x"}, result{Err: "unrecognized option '--f'"}},
		{"long only has no short", permute, []string{"-c"}, result{Err: "invalid option -- 'c'"}},
		{"NUL is no option", permute, []string{"-\x00"}, result{Err: "invalid option -- '\x00'"}},
		{"stops at the first error", permute, []string{"-x", "-v", "op"}, result{Err: "invalid option -- 'x'"}},
		{"permuted operands", permute, []string{"host", "-v", "1", "-f", "cfg", "2"}, result{Found: []Found{v, f("cfg")}, Operands: []string{"host", "1", "2"}}},
		{"lone dash is an operand", permute, []string{"-", "-v"}, result{Found: []Found{v}, Operands: []string{"-"}}},
		{"double dash ends options", permute, []string{"-v", "--", "-h", "--x"}, result{Found: []Found{v}, Operands: []string{"-h", "--x"}}},
		{"double dash alone", permute, []string{"--"}, result{}},
		{"in order: options end at an operand", knockd, []string{"-v", "op", "-h", "--bogus"}, result{Found: []Found{v}, Operands: []string{"op", "-h", "--bogus"}}},
		{"in order: lone dash", knockd, []string{"-", "-v"}, result{Operands: []string{"-", "-v"}}},
		{"in order: double dash", knockd, []string{"--check", "--", "x"}, result{Found: []Found{check}, Operands: []string{"x"}}},
		{"in order: an error before an operand", knockd, []string{"--bogus", "op"}, result{Err: "unrecognized option '--bogus'"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := Parser{Options: opts, Abbrev: tt.mode.abbrev, InOrder: tt.mode.inOrder}
			found, operands, err := p.Parse(tt.args)
			got := result{Found: found, Operands: operands}
			if err != nil {
				got.Err = err.Error()
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Parse(%q):\n got %+v\nwant %+v", tt.args, got, tt.want)
			}
		})
	}
}

// FuzzParse: no command line panics the parser, every option found is
// one of the set with an argument exactly when it takes one, and nothing
// comes out that was not on the command line.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"-vd400 x", "--del=5 --ver", "--state x", "-- -v", "- -v", "--=x", "-d"} {
		f.Add(s, true, false)
		f.Add(s, false, true)
	}
	f.Fuzz(func(t *testing.T, line string, abbrev, inOrder bool) {
		args := strings.Split(line, " ")
		found, operands, err := Parser{Options: opts, Abbrev: abbrev, InOrder: inOrder}.Parse(args)
		for _, fo := range found {
			if fo.Index < 0 || fo.Index >= len(opts) || fo.Short != opts[fo.Index].Short {
				t.Fatalf("found %+v, not an option of the set", fo)
			}
			if !opts[fo.Index].HasArg && fo.Arg != "" {
				t.Fatalf("found %+v: an argument for an option that takes none", fo)
			}
			if !strings.Contains(line, fo.Arg) {
				t.Fatalf("argument %q is not in %q", fo.Arg, line)
			}
		}
		if err != nil && inOrder && len(operands) > 0 {
			t.Fatalf("in order: operands %q before the error %v", operands, err)
		}
		for _, op := range operands {
			if !slices.Contains(args, op) {
				t.Fatalf("operand %q is not an argument of %q", op, args)
			}
		}
	})
}
