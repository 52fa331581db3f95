package sequence

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func tcp(port string) Hit { return Hit{Host: "h", Port: port} }
func udp(port string) Hit { return Hit{Host: "h", Port: port, UDP: true} }

func TestParseKnockd(t *testing.T) {
	for _, tc := range []struct {
		args      string
		want      knockdPlan
		wantUsage string // "-" for a usage error without a message
		wantErr   string
	}{
		// plain and permuted command lines
		{args: "h 1 2:udp 3:tcp", want: knockdPlan{hits: []Hit{tcp("1"), udp("2"), tcp("3")}}},
		{args: "-v h 1", want: knockdPlan{verbose: true, hits: []Hit{tcp("1")}}},
		{args: "h -v 1", want: knockdPlan{verbose: true, hits: []Hit{tcp("1")}}},
		{args: "h 1 -v 2", want: knockdPlan{verbose: true, hits: []Hit{tcp("1"), tcp("2")}}},
		{args: "h 1 2 --verbose", want: knockdPlan{verbose: true, hits: []Hit{tcp("1"), tcp("2")}}},
		{args: "h 1 --verb", want: knockdPlan{verbose: true, hits: []Hit{tcp("1")}}},
		{args: "-- h 1", want: knockdPlan{hits: []Hit{tcp("1")}}},
		{args: "h -- 1 -v", want: knockdPlan{hits: []Hit{tcp("1"), tcp("-v")}}}, // "-v" is a port (name) after "--"
		// -u overrides an explicit :tcp
		{args: "-u h 1 2:tcp 3:udp", want: knockdPlan{hits: []Hit{udp("1"), udp("2"), udp("3")}}},
		{args: "h 1:tcp --udp", want: knockdPlan{hits: []Hit{udp("1")}}},
		// protocols, case-insensitive; service names
		{args: "h 1003:UDP 1004:Tcp ssh domain:udp", want: knockdPlan{hits: []Hit{udp("1003"), tcp("1004"), tcp("ssh"), udp("domain")}}},
		// delay forms
		{args: "-d 400 h 1", want: knockdPlan{delay: 400 * time.Millisecond, hits: []Hit{tcp("1")}}},
		{args: "-d400 h 1", want: knockdPlan{delay: 400 * time.Millisecond, hits: []Hit{tcp("1")}}},
		{args: "--delay=400 h 1", want: knockdPlan{delay: 400 * time.Millisecond, hits: []Hit{tcp("1")}}},
		{args: "h 1 --delay 250", want: knockdPlan{delay: 250 * time.Millisecond, hits: []Hit{tcp("1")}}},
		{args: "-vud5 h 1", want: knockdPlan{verbose: true, delay: 5 * time.Millisecond, hits: []Hit{udp("1")}}},
		{args: "-d 0 h 1", want: knockdPlan{hits: []Hit{tcp("1")}}},
		{args: "-d abc -d 7 h 1", want: knockdPlan{delay: 7 * time.Millisecond, hits: []Hit{tcp("1")}}},
		{args: "-d -5 h 1", wantErr: "delay cannot be negative"},
		{args: "h 1 --delay=-1", wantErr: "delay cannot be negative"},
		{args: "-d abc h 1", wantErr: `invalid delay "abc": want an integer number of milliseconds`},
		{args: "-d 400ms h 1", wantErr: `invalid delay "400ms": want an integer number of milliseconds`},
		{args: "-d 99999999999999999999 h 1", wantErr: `delay "99999999999999999999" is too large`},
		{args: "-d -5 h", wantUsage: "-"}, // too few arguments is checked first
		// address family: last one wins
		{args: "-4 h 1", want: knockdPlan{family: IPv4, hits: []Hit{tcp("1")}}},
		{args: "h 1 --ipv6", want: knockdPlan{family: IPv6, hits: []Hit{tcp("1")}}},
		{args: "-4 -6 h 1", want: knockdPlan{family: IPv6, hits: []Hit{tcp("1")}}},
		// help and version: the first one wins, even over later bad options
		{args: "-h", want: knockdPlan{help: true}},
		{args: "h 1 --help", want: knockdPlan{help: true}},
		{args: "-V", want: knockdPlan{version: true}},
		{args: "-V -x", want: knockdPlan{version: true}},
		{args: "-V -h", want: knockdPlan{version: true}},
		{args: "-h -V", want: knockdPlan{help: true}},
		{args: "--vers", want: knockdPlan{version: true}},
		// usage errors
		{args: "", wantUsage: "-"},
		{args: "h", wantUsage: "-"},
		{args: "-v h", wantUsage: "-"},
		{args: "-x h 1", wantUsage: "invalid option -- 'x'"},
		{args: "-x -V", wantUsage: "invalid option -- 'x'"},
		{args: "h 1 --foo", wantUsage: "unrecognized option '--foo'"},
		{args: "h -1", wantUsage: "invalid option -- '1'"},
		{args: "h 1 -d", wantUsage: "option requires an argument -- 'd'"},
		{args: "h 1 --delay", wantUsage: "option '--delay' requires an argument"},
		{args: "h 1 --udp=yes", wantUsage: "option '--udp' doesn't allow an argument"},
		{args: "h 1 --ver", wantUsage: "option '--ver' is ambiguous; possibilities: '--verbose' '--version'"},
		// bad ports and protocols
		{args: "h 1 1004:foo", wantErr: `unknown protocol "foo" in "1004:foo"`},
		{args: "-u h 1004:foo", wantErr: `unknown protocol "foo" in "1004:foo"`},
		{args: "h 7000:tcp:junk", wantErr: `unknown protocol "tcp:junk" in "7000:tcp:junk"`},
		{args: "h 70000", wantErr: `invalid port "70000": must be 1-65535`},
		{args: "h 0:udp", wantErr: `invalid port "0": must be 1-65535`},
		{args: "h :udp", wantErr: `missing port in ":udp"`},
	} {
		t.Run(tc.args, func(t *testing.T) {
			got, err := parseKnockd(strings.Fields(tc.args))
			var ue *usageError
			switch {
			case tc.wantUsage != "":
				if !errors.As(err, &ue) {
					t.Fatalf("err = %v, want a usage error", err)
				}
				if want := strings.TrimPrefix(tc.wantUsage, "-"); ue.msg != want {
					t.Errorf("usage message = %q, want %q", ue.msg, want)
				}
			case tc.wantErr != "":
				if err == nil || errors.As(err, &ue) || err.Error() != tc.wantErr {
					t.Fatalf("err = %#v, want %q", err, tc.wantErr)
				}
			case err != nil:
				t.Fatalf("unexpected error: %v", err)
			case !reflect.DeepEqual(got, tc.want):
				t.Errorf("plan = %+v\nwant   %+v", got, tc.want)
			}
		})
	}
}

func TestKnockerFromPlan(t *testing.T) {
	var out, errw strings.Builder
	p := knockdPlan{family: IPv6, delay: time.Second}
	k := p.knocker(&out, &errw)
	if k.Family != IPv6 || k.Delay != time.Second || k.Trace != nil || k.Warn != nil {
		t.Errorf("knocker = %+v", k)
	}
	p.verbose = true
	k = p.knocker(&out, &errw)
	if k.Trace != &out || k.Warn != &errw {
		t.Errorf("verbose knocker = %+v, want Trace=stdout, Warn=stderr", k)
	}
}
