package fwlog

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/doorward/doorward/formats/proto"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// ref is "now" for the fixtures: the day after their lines were logged.
var ref = time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)

// describe prints one Parse result on one line, every field included, so a
// golden diff shows any change.
func describe(fmtName string, f *Fields, err error) string {
	switch {
	case errors.Is(err, ErrNotPacket):
		return "not a packet line"
	case errors.Is(err, ErrNoPorts):
		return "no ports"
	case errors.Is(err, ErrMalformed):
		return err.Error()
	case err != nil:
		return "unexpected error: " + err.Error()
	}
	ts := "-"
	if !f.Time.IsZero() {
		ts = f.Time.UTC().Format(time.RFC3339Nano)
	}
	seq := "-"
	if f.HasSeq {
		seq = fmt.Sprint(f.Seq)
	}
	return fmt.Sprintf("%s time=%s in=%q proto=%d %s -> %s flags=%s len=%d seq=%s",
		fmtName, ts, f.In, f.Proto, netip.AddrPortFrom(f.Src, f.SrcPort), netip.AddrPortFrom(f.Dst, f.DstPort),
		flagString(f.Flags), f.Length, seq)
}

func flagString(fl proto.TCPFlags) string {
	var w []string
	for _, n := range []string{"CWR", "ECE", "URG", "ACK", "PSH", "RST", "SYN", "FIN"} {
		if fl&flagWord(n) != 0 {
			w = append(w, n)
		}
	}
	if len(w) == 0 {
		return "-"
	}
	return strings.Join(w, ",")
}

// TestFixtures parses every line of testdata/*.log, real lines as the
// kernel prints them through syslog, rsyslog and journalctl, with the
// built-in format, and compares with testdata/*.golden (go test -update).
func TestFixtures(t *testing.T) {
	files, err := filepath.Glob("testdata/*.log")
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	ipt, _ := Builtin("iptables")
	ipt.Location = time.UTC
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			src, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			var b strings.Builder
			sc := bufio.NewScanner(strings.NewReader(string(src)))
			var f Fields
			for n := 1; sc.Scan(); n++ {
				err := ipt.Parse(sc.Text(), ref, &f)
				fmt.Fprintf(&b, "%d: %s\n", n, describe(ipt.Name, &f, err))
			}
			golden := strings.TrimSuffix(file, ".log") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(b.String()), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update)", err)
			}
			if got := b.String(); got != string(want) {
				t.Errorf("%s differs from %s:\n%s", file, golden, lineDiff(string(want), got))
			}
		})
	}
}

func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	for i := 0; i < max(len(w), len(g)); i++ {
		var a, c string
		if i < len(w) {
			a = w[i]
		}
		if i < len(g) {
			c = g[i]
		}
		if a != c {
			fmt.Fprintf(&b, "-%s\n+%s\n", a, c)
		}
	}
	return b.String()
}

const sample = "Nov 25 08:01:02 gw kernel: [12346.100200] DOORWARD: IN=eth0 OUT= MAC=52:54:00:12:34:56:52:54:00:ab:cd:ef:08:00 SRC=192.0.2.10 DST=198.51.100.1 LEN=60 TOS=0x00 PREC=0x00 TTL=64 ID=54321 DF PROTO=TCP SPT=40000 DPT=7000 WINDOW=64240 RES=0x00 SYN URGP=0 "

func TestPrefix(t *testing.T) {
	line := func(prefix string) string {
		return "Nov 25 08:01:02 gw kernel: [12346.100200] " + prefix + "IN=eth0 OUT= SRC=192.0.2.10 DST=198.51.100.1 LEN=60 PROTO=TCP SPT=1 DPT=2 SYN URGP=0 "
	}
	tests := []struct {
		name, prefix, line string
		want               error
	}{
		{"any prefix", "", line("DOORWARD: "), nil},
		{"no prefix at all", "", line(""), nil},
		{"same prefix", "DOORWARD: ", line("DOORWARD: "), nil},
		{"prefix trimmed by the config", "DOORWARD:", line("DOORWARD: "), nil},
		{"prefix without a space", "knock", line("knock"), nil},
		{"other prefix", "DOORWARD:", line("FORWARD-DROP: "), ErrNotPacket},
		{"word boundary", "KNOCK", line("NOKNOCK "), ErrNotPacket},
		{"prefix with spaces", "fw in drop", line("fw in drop "), nil},
		{"prefix absent", "DOORWARD:", line(""), ErrNotPacket},
		{"prefix holding IN=", "LOGIN=x", line("LOGIN=x "), nil},
		{"journal, no kernel time", "DOORWARD:", "Nov 25 08:01:02 gw kernel: DOORWARD: IN=eth0 OUT= SRC=192.0.2.10 DST=198.51.100.1 PROTO=UDP SPT=1 DPT=2 LEN=9 ", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &Format{Name: "t", Prefix: tt.prefix, kernel: true}
			var out Fields
			if err := f.Parse(tt.line, ref, &out); err != tt.want {
				t.Fatalf("Parse = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestContains(t *testing.T) {
	f := &Format{Name: "t", Contains: "gw kernel:", kernel: true}
	var out Fields
	if err := f.Parse(sample, ref, &out); err != nil {
		t.Fatalf("Parse = %v", err)
	}
	if err := f.Parse(strings.Replace(sample, "gw kernel:", "gw logger:", 1), ref, &out); err != ErrNotPacket {
		t.Fatalf("Parse without the required text = %v, want ErrNotPacket", err)
	}
}

func TestLineTime(t *testing.T) {
	utc := time.UTC
	d := func(y int, mo time.Month, dd, h, m, s, ns int) time.Time {
		return time.Date(y, mo, dd, h, m, s, ns, utc)
	}
	tests := []struct {
		name string
		line string
		ref  time.Time
		want time.Time
	}{
		{"syslog", "Nov 25 08:01:02 gw kernel: x", ref, d(2026, 11, 25, 8, 1, 2, 0)},
		{"syslog padded day", "Nov  5 08:01:02 gw kernel: x", ref, d(2026, 11, 5, 8, 1, 2, 0)},
		{"syslog unpadded day", "Nov 5 08:01:02 gw kernel: x", ref, d(2026, 11, 5, 8, 1, 2, 0)},
		{"short-precise", "Nov 25 08:01:02.123456 gw kernel: x", ref, d(2026, 11, 25, 8, 1, 2, 123456000)},
		{"priority", "<4>Nov 25 08:01:02 gw kernel: x", ref, d(2026, 11, 25, 8, 1, 2, 0)},
		{"december read in january", "Dec 31 23:59:59 gw kernel: x", d(2027, 1, 1, 0, 0, 5, 0), d(2026, 12, 31, 23, 59, 59, 0)},
		{"january read in january", "Jan  1 00:00:01 gw kernel: x", d(2027, 1, 1, 0, 0, 5, 0), d(2027, 1, 1, 0, 0, 1, 0)},
		{"a clock a little ahead", "Jan  1 00:00:01 gw kernel: x", d(2026, 12, 31, 23, 59, 59, 0), d(2027, 1, 1, 0, 0, 1, 0)},
		{"feb 29 needs a leap year", "Feb 29 12:00:00 gw kernel: x", d(2027, 3, 1, 0, 0, 0, 0), d(2024, 2, 29, 12, 0, 0, 0)},
		{"rfc3339 utc", "2026-11-25T08:01:02Z gw kernel: x", ref, d(2026, 11, 25, 8, 1, 2, 0)},
		{"rfc3339 micro offset", "2026-11-25T09:01:02.5+01:00 gw kernel: x", ref, d(2026, 11, 25, 8, 1, 2, 500000000)},
		{"short-iso old offset", "2026-11-25T03:01:02-0500 gw kernel: x", ref, d(2026, 11, 25, 8, 1, 2, 0)},
		{"iso with a space", "2026-11-25 08:01:02Z gw", ref, d(2026, 11, 25, 8, 1, 2, 0)},
		{"short-unix", "1795593666.250000 gw kernel: x", ref, time.Unix(1795593666, 250000000)},
		{"dmesg has no wall clock", "[12346.100200] DOORWARD: IN=", ref, time.Time{}},
		{"no time", "DOORWARD: IN=eth0 OUT=", ref, time.Time{}},
		{"bad month", "Foo 25 08:01:02 gw", ref, time.Time{}},
		{"bad day", "Nov 32 08:01:02 gw", ref, time.Time{}},
		{"bad clock", "Nov 25 08:61:02 gw", ref, time.Time{}},
		{"feb 30", "2026-02-30T08:01:02Z gw", ref, time.Time{}},
		{"no zone", "2026-11-25T08:01:02 gw", ref, time.Time{}},
		{"short number", "12345 gw", ref, time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := LineTime(tt.line, tt.ref, utc)
			if !got.Equal(tt.want) {
				t.Fatalf("LineTime(%q) = %v, want %v", tt.line, got, tt.want)
			}
		})
	}
}

// The legacy knockdaemon format: one Perl expression per field.
// It panics on error: the expressions are constants of the test.
func legacyFormat(required string) *Format {
	c := func(s string) *regexp.Regexp {
		if s == "" {
			return nil
		}
		re, err := CompilePerl(s)
		if err != nil {
			panic(err)
		}
		return re
	}
	f, err := NewRegex("legacy", Regexps{
		Required:  c(required),
		Interface: c(`IN=(\S*)`),
		Protocol:  c(`PROTO=(\w+)`),
		IPServer:  c(`DST=([0-9a-f.:]+)`),
		IPClient:  c(`SRC=([0-9a-f.:]+)`),
		Port:      c(`DPT=(\d+)`),
		SPort:     c(`SPT=(\d+)`),
		Flags:     c(`RES=0x[0-9a-f]+ ((?:[A-Z]+ )*)URGP`),
		Seq:       c(`SEQ=(\d+)`),
	})
	if err != nil {
		panic(err)
	}
	f.Location = time.UTC
	return f
}

func TestRegexFormat(t *testing.T) {
	withReq := legacyFormat(`kernel:.*DOORWARD`)
	noReq := legacyFormat("")
	tests := []struct {
		name string
		f    *Format
		line string
		want string
	}{
		{"kernel line", withReq, sample, "legacy time=2026-11-25T08:01:02Z in=\"eth0\" proto=6 192.0.2.10:40000 -> 198.51.100.1:7000 flags=SYN len=0 seq=-"},
		{"not required", withReq, "Nov 25 08:01:02 gw sshd[1]: SRC=1.2.3.4 DPT=22", "not a packet line"},
		{"required, bad client", withReq, "Nov 25 08:01:02 gw kernel: DOORWARD: SRC=1.2.3 DPT=22", "malformed packet log line: no valid client address (ipclient)"},
		{"required, no port", withReq, "Nov 25 08:01:02 gw kernel: DOORWARD: SRC=1.2.3.4", "malformed packet log line: no valid DPT="},
		{"no required: other lines skipped", noReq, "Nov 25 08:01:02 gw sshd[1]: Accepted key", "not a packet line"},
		{"flags as words", noReq, "SRC=1.2.3.4 DST=5.6.7.8 PROTO=TCP SPT=1 DPT=2 RES=0x00 ACK SYN URGP=0", "legacy time=- in=\"\" proto=6 1.2.3.4:1 -> 5.6.7.8:2 flags=ACK,SYN len=0 seq=-"},
		{"udp, seq", noReq, "SRC=1.2.3.4 PROTO=UDP DPT=2 SEQ=9", "legacy time=- in=\"\" proto=17 1.2.3.4:0 -> invalid AddrPort flags=SYN len=0 seq=9"},
		{"bad protocol", noReq, "SRC=1.2.3.4 PROTO=XTP DPT=2", "malformed packet log line: bad protocol"},
		{"bad server", noReq, "SRC=1.2.3.4 DST=1.2.3.4.5 DPT=2", "malformed packet log line: bad server address (ipserver)"},
		{"bad sport", noReq, "SRC=1.2.3.4 SPT=99999 DPT=2", "malformed packet log line: bad SPT="},
		{"bad flags", noReq, "SRC=1.2.3.4 DPT=2 RES=0x00 NOPE URGP=0", "malformed packet log line: bad TCP flags"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var f Fields
			err := tt.f.Parse(tt.line, ref, &f)
			if got := describe(tt.f.Name, &f, err); got != tt.want {
				t.Fatalf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestNewRegexErrors(t *testing.T) {
	re := regexp.MustCompile
	tests := []struct {
		name string
		r    Regexps
		want string
	}{
		{"no client", Regexps{Port: re(`DPT=(\d+)`)}, "ipclient is required (the sender's address)"},
		{"no port", Regexps{IPClient: re(`SRC=(\S+)`)}, "port is required (the destination port)"},
		{"no group", Regexps{IPClient: re(`SRC=(\S+)`), Port: re(`DPT=\d+`)}, "port: no capture group: the field is the first (…) group"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewRegex("x", tt.r)
			if err == nil || err.Error() != tt.want {
				t.Fatalf("NewRegex = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestCompilePerl(t *testing.T) {
	tests := []struct {
		expr string
		want string // "" = compiles
	}{
		{`DPT=(\d+)`, ""},
		{`SRC=([\d.]+)`, ""},
		{`(?i)proto=(tcp|udp)`, ""},
		{`(?<port>\d+)`, ""},
		{`[(?=]x(\d)`, ""},
		{`a+?(b*?)`, ""},
		{`x{2,3}(y)`, ""},
		{`(?-i:x)(y)`, ""},
		{`DPT=(\d+)(?= )`, "lookahead (?= at offset 9 is Perl-only"},
		{`(?!foo)(\d+)`, "negative lookahead (?! at offset 0"},
		{`(?<=SRC=)(\S+)`, "lookbehind (?<= at offset 0"},
		{`(?<!X)(\S+)`, "negative lookbehind (?<! at offset 0"},
		{`(\w)\1`, `backreference \1 at offset 4`},
		{`(\w)\g{1}`, `backreference \g at offset 4`},
		{`(?<a>\w)\k<a>`, `named backreference \k at offset 8`},
		{`(?>a+)b`, "atomic group (?> at offset 0"},
		{`a++b`, "possessive quantifier ++ at offset 1"},
		{`a*+b`, "possessive quantifier *+ at offset 1"},
		{`x{2}+`, "possessive quantifier }+ at offset 3"},
		{`(?(1)a|b)`, "conditional (?( at offset 0"},
		{`(?#note)x`, "comment group (?# at offset 0"},
		{`(a|(?R))`, "recursion (?…) at offset 3"},
		{`(a|(?1))`, "recursion (?…) at offset 3"},
		{`foo\Kbar`, `keep-out \K at offset 3`},
		{`foo\Z`, `anchor \Z (use \z or $) at offset 3`},
		{`(unclosed`, "not a valid RE2 expression: error parsing regexp: missing closing ): `(unclosed`"},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			_, err := CompilePerl(tt.expr)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("CompilePerl(%q) = %v", tt.expr, err)
			case tt.want != "" && (err == nil || !strings.HasPrefix(err.Error(), tt.want)):
				t.Fatalf("CompilePerl(%q) = %v, want prefix %q", tt.expr, err, tt.want)
			}
		})
	}
}

func TestParseAny(t *testing.T) {
	a := &Format{Name: "a", Prefix: "A:", kernel: true}
	b := &Format{Name: "b", Prefix: "DOORWARD:", kernel: true}
	var f Fields
	got, err := ParseAny([]*Format{a, b}, sample, ref, &f)
	if err != nil || got != b {
		t.Fatalf("ParseAny = %v, %v; want format b", got, err)
	}
	got, err = ParseAny([]*Format{a}, sample, ref, &f)
	if err != ErrNotPacket || got != nil {
		t.Fatalf("ParseAny = %v, %v; want ErrNotPacket", got, err)
	}
}

// The built-in parser is on the path of every log line: no allocation.
func TestParseAllocs(t *testing.T) {
	ipt, _ := Builtin("iptables")
	ipt.Prefix = "DOORWARD:"
	lines := []string{
		sample,
		"2026-11-25T08:01:03Z gw kernel: DOORWARD: IN=eth0 OUT= SRC=2001:0db8:0000:0000:0000:0000:0000:000a DST=2001:0db8:0000:0000:0000:0000:0000:0001 LEN=80 TC=0 HOPLIMIT=64 FLOWLBL=327371 PROTO=TCP SPT=40012 DPT=7000 WINDOW=64800 RES=0x00 SYN URGP=0 ",
		"Nov 25 08:01:02 gw kernel: DOORWARD: IN=eth0 OUT= SRC=192.0.2.999 DST=198.51.100.1 LEN=60 PROTO=TCP SPT=1 DPT=2 ",
		"Nov 25 08:01:01 gw kernel: [12345.678901] e1000e 0000:00:19.0 eth0: NIC Link is Up",
	}
	var f Fields
	for _, l := range lines {
		if n := testing.AllocsPerRun(100, func() { _ = ipt.Parse(l, ref, &f) }); n != 0 {
			t.Errorf("Parse(%.40q…) allocates %v times", l, n)
		}
	}
}

func BenchmarkParse(b *testing.B) {
	ipt, _ := Builtin("iptables")
	var f Fields
	b.ReportAllocs()
	for b.Loop() {
		if err := ipt.Parse(sample, ref, &f); err != nil {
			b.Fatal(err)
		}
	}
}
