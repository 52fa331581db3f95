package knockdaemon

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// dump prints a tree one item a line, values quoted, with positions.
func dump(t *Tree) string {
	var b strings.Builder
	var walk func(n *Node, indent string)
	walk = func(n *Node, indent string) {
		for _, it := range n.Items {
			switch {
			case it.Block != nil:
				fmt.Fprintf(&b, "%s<%s", indent, it.Block.Name)
				if it.Block.Label != "" {
					fmt.Fprintf(&b, " %q", it.Block.Label)
				}
				fmt.Fprintf(&b, "> @%s\n", it.Pos)
				walk(it.Block, indent+"  ")
				fmt.Fprintf(&b, "%s</%s>\n", indent, it.Block.Name)
			case it.NoValue:
				fmt.Fprintf(&b, "%s%s (no value) @%s\n", indent, it.Key, it.Pos)
			default:
				fmt.Fprintf(&b, "%s%s = %q @%s\n", indent, it.Key, it.Value, it.Pos)
			}
		}
	}
	walk(t.Root, "")
	for _, w := range t.Warnings {
		fmt.Fprintf(&b, "warning: %v\n", w)
	}
	return b.String()
}

// memOpener serves includes from a map, as the Perl would from the
// working directory.
func memOpener(files map[string]string) Opener {
	return func(name, from string) (string, []byte, error) {
		src, ok := files[name]
		if !ok {
			return name, nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
		}
		return name, []byte(src), nil
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		name  string
		src   string
		files map[string]string
		want  string
	}{
		{"split at = or blanks", strings.Join([]string{
			"state = state(IP,x) = TIME",
			"system /sbin/iptables -I INPUT",
			"key=value",
			"key value = x",
			"  indented   =   spaced out  ",
			"alone",
			"empty =",
			"Key = case kept",
		}, "\n"), nil, strings.Join([]string{
			`state = "state(IP,x) = TIME" @t.conf:1`,
			`system = "/sbin/iptables -I INPUT" @t.conf:2`,
			`key = "value" @t.conf:3`,
			`key = "value = x" @t.conf:4`,
			`indented = "spaced out" @t.conf:5`,
			`alone (no value) @t.conf:6`,
			`empty = "" @t.conf:7`,
			`Key = "case kept" @t.conf:8`,
		}, "\n") + "\n"},
		{"comments", strings.Join([]string{
			"# a comment",
			"   # indented comment",
			"a = one # comment",
			"b = one#two",
			`c = one \# two`,
			"d = ends with #",
			`e = "in # quotes"`,
			"#",
			`f = back\\#slash`,
		}, "\n"), nil, strings.Join([]string{
			`a = "one" @t.conf:3`,
			`b = "one" @t.conf:4`,
			`c = "one # two" @t.conf:5`,
			`d = "ends with #" @t.conf:6`,
			`e = "\"in" @t.conf:7`,
			`f = "back\\#slash" @t.conf:9`,
		}, "\n") + "\n"},
		{"c comments", strings.Join([]string{
			"a = x /* gone */ y",
			"/* a comment",
			"b = inside",
			"*/ c = after",
			"  /* whole line */",
			"d = e */ f",
			"/*",
			"  /* nested start */",
			"g = still inside",
			"*/",
			"h = x/y*z",
		}, "\n"), nil, strings.Join([]string{
			`a = "xy" @t.conf:1`,
			`c = "after" @t.conf:4`,
			`f (no value) @t.conf:6`,
			`h = "x/y*z" @t.conf:11`,
			`warning: t.conf:6: end of a /* comment without its start: the text up to */ is dropped`,
		}, "\n") + "\n"},
		{"quotes", strings.Join([]string{
			`system = "/sbin/iptables -I INPUT -s IP/32 -j ACCEPT"`,
			`single = 'kept'`,
			`half = "open`,
			`inner = a "b" c`,
			`both = "a" "b"`,
			`lone = "`,
		}, "\n"), nil, strings.Join([]string{
			`system = "/sbin/iptables -I INPUT -s IP/32 -j ACCEPT" @t.conf:1`,
			`single = "'kept'" @t.conf:2`,
			`half = "\"open" @t.conf:3`,
			`inner = "a \"b\" c" @t.conf:4`,
			`both = "a\" \"b" @t.conf:5`,
			`lone = "" @t.conf:6`,
		}, "\n") + "\n"},
		{"continuation", strings.Join([]string{
			`system = /sbin/iptables -I INPUT \`,
			`         -s IP/32 \`,
			`   -j ACCEPT`,
			`path = C:\\`,
			`next = 1`,
		}, "\n"), nil, strings.Join([]string{
			`system = "/sbin/iptables -I INPUT -s IP/32 -j ACCEPT" @t.conf:1`,
			`path = "C:\\\\" @t.conf:4`,
			`next = "1" @t.conf:5`,
		}, "\n") + "\n"},
		{"here-docs", strings.Join([]string{
			"<template open>",
			"  system <<EOT",
			"    /sbin/iptables -I INPUT # kept, no comments here",
			"      -s IP/32",
			"    EOT",
			"  state = <<END",
			"state(IP,x)++",
			"END",
			"</template>",
		}, "\n"), nil, strings.Join([]string{
			`<template "open"> @t.conf:1`,
			`  system = "/sbin/iptables -I INPUT # kept, no comments here\n  -s IP/32" @t.conf:2`,
			`  state = "state(IP,x)++" @t.conf:6`,
			`</template>`,
		}, "\n") + "\n"},
		{"blocks", strings.Join([]string{
			"<actions>",
			"  <action>",
			"    condition = PORT == 22",
			"    template = a",
			"    template = b",
			"  </action>",
			"  <action second>",
			"    use = no",
			"  </action>",
			"</actions>",
			`<logformat "with space">`,
			"</logformat>",
			"<empty/>",
			"<ethfilter syn/>",
			"<outer><weird>",
			"</outer>",
			"<x>",
			"</y>",
		}, "\n"), nil, strings.Join([]string{
			`<actions> @t.conf:1`,
			`  <action> @t.conf:2`,
			`    condition = "PORT == 22" @t.conf:3`,
			`    template = "a" @t.conf:4`,
			`    template = "b" @t.conf:5`,
			`  </action>`,
			`  <action "second"> @t.conf:7`,
			`    use = "no" @t.conf:8`,
			`  </action>`,
			`</actions>`,
			`<logformat "with space"> @t.conf:11`,
			`</logformat>`,
			`<empty> @t.conf:13`,
			`</empty>`,
			`<ethfilter "syn"> @t.conf:14`,
			`</ethfilter>`,
			`<outer><weird> @t.conf:15`,
			`</outer><weird>`,
			`<x> @t.conf:17`,
			`</x>`,
			`warning: t.conf:16: </outer> ends <outer><weird> (line 15)`,
			`warning: t.conf:18: </y> ends <x> (line 17)`,
		}, "\n") + "\n"},
		{"includes", strings.Join([]string{
			"a = 1",
			"<<include part.conf>>",
			`<<INCLUDE "quoted name.conf">>`,
			"c = 3",
		}, "\n"), map[string]string{
			"part.conf":        "<template t>\n<<include inner.conf>>\n</template>\n",
			"inner.conf":       "state = state(IP,n)++\n",
			"quoted name.conf": "b = 2\n",
		}, strings.Join([]string{
			`a = "1" @t.conf:1`,
			`<template "t"> @part.conf:1`,
			`  state = "state(IP,n)++" @inner.conf:1`,
			`</template>`,
			`b = "2" @quoted name.conf:1`,
			`c = "3" @t.conf:4`,
		}, "\n") + "\n"},
		{"windows line ends", "a = 1\r\nb = 2\r\n", nil, "a = \"1\" @t.conf:1\nb = \"2\" @t.conf:2\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tree, err := Parse("t.conf", []byte(tt.src), memOpener(tt.files))
			if err != nil {
				t.Fatal(err)
			}
			if got := dump(tree); got != tt.want {
				t.Errorf("got:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name  string
		src   string
		files map[string]string
		want  string
	}{
		{"unclosed blocks", "<actions>\n<action>\n", nil, "t.conf:1: <actions> has no </actions>\nt.conf:2: <action> has no </action>"},
		{"stray end", "a = 1\n</action>\n", nil, "t.conf:2: </action> has no <action> before it"},
		{"here-doc without end", "system <<EOT\nfoo\n", nil, "t.conf:1: system: here-doc <<EOT has no end line \"EOT\""},
		{"missing include", "<<include nothere.conf>>\n", nil, "t.conf:1: include: nothere.conf: file does not exist"},
		{"include loop", "<<include self.conf>>\n", map[string]string{"self.conf": "<<include self.conf>>\n"},
			"self.conf:1: include: includes nested more than 16 deep (does self.conf include itself?)"},
		{"every error at once", "</a>\n<<include x>>\n<b>\n", nil, "t.conf:2: include: x: file does not exist\nt.conf:1: </a> has no <a> before it\nt.conf:3: <b> has no </b>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("t.conf", []byte(tt.src), memOpener(tt.files))
			if err == nil || err.Error() != tt.want {
				t.Fatalf("error:\n%v\nwant:\n%s", err, tt.want)
			}
		})
	}
}

// TestReadIncludes: includes are relative to the working directory, as in
// the Perl, and else to the including file.
func TestReadIncludes(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "main.conf"), []byte("<<include keys.conf>>\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "keys.conf"), []byte("key = secret\n"), 0o644)
	tree, err := Read(filepath.Join(dir, "main.conf"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := dump(tree), fmt.Sprintf("key = \"secret\" @%s:1\n", filepath.Join(dir, "keys.conf")); got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if _, err := Read(filepath.Join(dir, "none.conf")); err == nil || !strings.Contains(err.Error(), "none.conf: read: no such file or directory") {
		t.Errorf("Read(missing) = %v", err)
	}
}

// FuzzReader: no input panics or hangs; what parses dumps, and every item
// has a position inside the file.
func FuzzReader(f *testing.F) {
	for _, s := range []string{
		"state = state(IP,x) = TIME\n<actions>\n<action>\ncondition = PORT == 22\n</action>\n</actions>\n",
		"a = 1 # c\n/* x\n*/ b = 2\nsys <<EOT\n  x\n  EOT\n<e x/>\n",
		"k = a \\\n  b\n<<include f>>\n",
		"<logformat iptables>\nport = DPT=([0-9]+)\n</logformat>\n",
	} {
		f.Add(s)
	}
	if b, err := os.ReadFile("testdata/migrate/manual.conf"); err == nil {
		f.Add(string(b))
	}
	f.Fuzz(func(t *testing.T, src string) {
		files := map[string]string{"f": "<b>\nx = 1\n</b>\n", "self": "<<include self>>\n"}
		tree, err := Parse("t.conf", []byte(src), memOpener(files))
		if err != nil {
			return
		}
		lines := strings.Count(src, "\n") + 1
		var walk func(n *Node)
		walk = func(n *Node) {
			for _, it := range n.Items {
				if it.Pos.File == "t.conf" && (it.Pos.Line < 1 || it.Pos.Line > lines) {
					t.Fatalf("item %q at line %d of a %d-line file", it.Key, it.Pos.Line, lines)
				}
				if it.Block != nil {
					walk(it.Block)
				}
			}
		}
		walk(tree.Root)
		_ = dump(tree)
	})
}

// FuzzMigrate: whatever legacy file parses, the migration does not panic
// and its output keeps the INI's shape: every line blank, a comment, a
// section header or one "key = value" directive, so no value can spill
// into a directive of its own.
func FuzzMigrate(f *testing.F) {
	for _, s := range []string{
		"runmode = file\nlogfile <<EOT\n/x\n[evil]\nEOT\n<logformat a>\nport = DPT=(\\d+)\n</logformat>\n",
		"knock = IP,PORT\n<template t>\nsystem <<X\na\nb\nX\n</template>\n<action>\ntemplate = t\ncondition = PORT == 1\n</action>\n",
		"interface eth0\nfirewall-add /x\n",
	} {
		f.Add(s)
	}
	for _, name := range []string{"manual.conf", "syntax.conf", "filemode.conf", "doormand.cf"} {
		if b, err := os.ReadFile(filepath.Join(migrateDir, name)); err == nil {
			f.Add(string(b))
		}
	}
	f.Fuzz(func(t *testing.T, src string) {
		var res *Result
		if IsDoormandCF([]byte(src)) {
			res = MigrateDoormand("t.cf", []byte(src))
		} else {
			var err error
			res, err = MigrateKnockdaemon("t.conf", []byte(src), memOpener(nil))
			if err != nil {
				return
			}
		}
		for i, l := range strings.Split(strings.TrimSuffix(res.INI, "\n"), "\n") {
			ok := l == "" || strings.HasPrefix(strings.TrimLeft(l, "\t"), "#") ||
				(strings.HasPrefix(l, "[") && strings.HasSuffix(l, "]") && !strings.Contains(l, "\r")) ||
				(strings.HasPrefix(l, "\t") && strings.Contains(l, " = ") && len(l) < 4096)
			if !ok {
				t.Fatalf("output line %d breaks the INI's shape: %q\nfrom:\n%s", i+1, l, src)
			}
		}
	})
}
