package logtail

import (
	"fmt"
	"strings"
	"testing"

	"github.com/doorward/doorward/config/knockd"
	"github.com/doorward/doorward/formats/fwlog"
)

func formatsOf(t *testing.T, ini string) ([]*fwlog.Format, error) {
	t.Helper()
	cfg, err := knockd.Parse("test.conf", []byte(ini))
	if err != nil {
		t.Fatalf("knockd.Parse: %v", err)
	}
	return Formats(cfg)
}

// describeFormat prints what a Format was built from, for comparison.
func describeFormat(f *fwlog.Format) string {
	s := fmt.Sprintf("%s builtin=%v prefix=%q contains=%q linetime=%v", f.Name, f.IsBuiltin(), f.Prefix, f.Contains, f.LineTime)
	if f.Location != nil {
		s += " tz=" + f.Location.String()
	}
	r := f.Regexps()
	for _, e := range []struct {
		k string
		v fmt.Stringer
	}{{"required", r.Required}, {"ipclient", r.IPClient}, {"port", r.Port}, {"flags", r.Flags}} {
		if e.v != nil && fmt.Sprint(e.v) != "<nil>" {
			s += " " + e.k + "=" + e.v.String()
		}
	}
	return s
}

func TestFormats(t *testing.T) {
	tests := []struct {
		name string
		ini  string
		want []string // one per format, or the errors
		err  string
	}{
		{"none", "[options]\nLogTail = /var/log/kern.log\n", nil, ""},
		{"builtin", "[fw]\nType = logformat\nFormat = nftables\nPrefix = doorward:\nTimestamp = line\nTimeZone = UTC\n",
			[]string{`fw builtin=true prefix="doorward:" contains="" linetime=true tz=UTC`}, ""},
		{"default is iptables", "[fw]\nType = logformat\nRequired = gw kernel:\n",
			[]string{`fw builtin=true prefix="" contains="gw kernel:" linetime=false`}, ""},
		{"regex", "[fw]\nType = logformat\nrequired = kernel:\nipclient = SRC=([\\d.]+)\nport = DPT=(\\d+)\n\n[other]\nType = logformat\nFormat = iptables\n",
			[]string{`fw builtin=false prefix="" contains="" linetime=false required=kernel: ipclient=SRC=([\d.]+) port=DPT=(\d+)`,
				`other builtin=true prefix="" contains="" linetime=false`}, ""},
		{"errors", strings.Join([]string{
			"[a]", "Type = logformat", "Format = regex", "IPClient = (?<=SRC=)\\S+", "Port = DPT=\\d+", "Prefix = x", "Colour = red", "Timestamp = soon", "TimeZone = Mars/Olympus",
			"[b]", "Type = logformat", "Format = iptables", "Port = DPT=(\\d+)", "Required = kernel:.*DOORWARD",
			"[c]", "Type = logformat", "Format = pf",
			"[d]", "Type = logformat", "Format = regex", "Port = DPT=(\\d+)",
			"[e]", "Type = logformat", "Flags =",
		}, "\n") + "\n", nil, strings.Join([]string{
			"test.conf:4: IPClient: lookbehind (?<= at offset 0 is Perl-only (Go regexps are RE2: no lookaround or backreferences); rewrite the expression without it",
			"test.conf:5: Port: no capture group: the field is the first (…) group",
			"test.conf:6: Prefix: only for Format = iptables or nftables (a regex format says it in Required)",
			"test.conf:7: Colour: unknown log format directive (have: Format, Prefix, Timestamp, TimeZone, Required, Interface, Protocol, IPServer, IPClient, Port, SPort, Flags, Seq)",
			"test.conf:8: Timestamp: \"soon\": want read (the time the line is read) or line (the line's own timestamp)",
			"test.conf:9: TimeZone: unknown time zone \"Mars/Olympus\"",
			"test.conf:13: Port: not used with Format = iptables (the built-in reads every field; use Format = regex for expressions)",
			"test.conf:14: Required: with Format = iptables, Required must be plain text (it is matched without a regexp); use Prefix, or Format = regex",
			"test.conf:17: Format: unknown log format \"pf\" (have: iptables, nftables, regex)",
			"test.conf:18: log format \"d\": ipclient is required (the sender's address)",
			"test.conf:24: Flags: empty expression",
		}, "\n")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs, err := formatsOf(t, tt.ini)
			if tt.err != "" {
				if err == nil || err.Error() != tt.err {
					t.Fatalf("errors:\n%v\nwant:\n%s", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, f := range fs {
				got = append(got, describeFormat(f))
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Fatalf("formats:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}
