package sequence

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"
)

// fakeResolver answers from maps and never touches the network. Each lookup
// of a host returns its list rotated by one, like round-robin DNS.
type fakeResolver struct {
	hosts    map[string][]netip.Addr
	ports    map[string]int // "tcp/ssh" → 22
	lookups  []string       // "network host", in order
	rotation int
}

func (r *fakeResolver) LookupNetIP(_ context.Context, network, host string) ([]netip.Addr, error) {
	r.lookups = append(r.lookups, network+" "+host)
	list, ok := r.hosts[host]
	if !ok {
		return nil, fmt.Errorf("lookup %s: no such host", host)
	}
	n := r.rotation % len(list)
	r.rotation++
	return append(append([]netip.Addr{}, list[n:]...), list[:n]...), nil
}

func (r *fakeResolver) LookupPort(_ context.Context, network, service string) (int, error) {
	if p, ok := r.ports[network+"/"+service]; ok {
		return p, nil
	}
	return 0, fmt.Errorf("lookup %s/%s: unknown port", network, service)
}

// recorder is a Dialer and a Sleep func that logs every call in order.
type recorder struct {
	events []string
	fail   map[string]error // event → error to return
}

func (r *recorder) hit(ev string) error {
	r.events = append(r.events, ev)
	return r.fail[ev]
}
func (r *recorder) HitTCP(dst netip.AddrPort) error { return r.hit("tcp " + dst.String()) }
func (r *recorder) HitUDP(dst netip.AddrPort) error { return r.hit("udp " + dst.String()) }
func (r *recorder) sleep(_ context.Context, d time.Duration) error {
	r.events = append(r.events, "sleep "+d.String())
	return nil
}

var (
	v4a = netip.MustParseAddr("192.0.2.1")
	v4b = netip.MustParseAddr("192.0.2.2")
	v6a = netip.MustParseAddr("2001:db8::1")
)

func newFake() *fakeResolver {
	return &fakeResolver{
		hosts: map[string][]netip.Addr{
			"rr.example":    {v4a, v4b},
			"dual.example":  {v6a, v4a},
			"v4.example":    {v4b},
			"other.example": {v4b},
		},
		ports: map[string]int{"tcp/ssh": 22, "udp/domain": 53, "tcp/zero": 0},
	}
}

func TestKnockResolvesHostOnce(t *testing.T) {
	res, rec := newFake(), &recorder{}
	k := &Knocker{Resolver: res, Dialer: rec}
	hits := []Hit{{"rr.example", "1", false}, {"rr.example", "2", true}, {"rr.example", "3", false}}
	if err := k.Knock(context.Background(), hits); err != nil {
		t.Fatal(err)
	}
	want := []string{"tcp 192.0.2.1:1", "udp 192.0.2.1:2", "tcp 192.0.2.1:3"}
	if !reflect.DeepEqual(rec.events, want) {
		t.Errorf("events = %q, want %q (one address for the whole knock)", rec.events, want)
	}
	if want := []string{"ip rr.example"}; !reflect.DeepEqual(res.lookups, want) {
		t.Errorf("lookups = %q, want %q", res.lookups, want)
	}
}

func TestKnockFamily(t *testing.T) {
	for _, tc := range []struct {
		family  Family
		host    string
		network string
		want    string
		wantErr string
	}{
		{AnyFamily, "dual.example", "ip", "tcp [2001:db8::1]:7", ""},
		{IPv4, "dual.example", "ip4", "tcp 192.0.2.1:7", ""},
		{IPv6, "dual.example", "ip6", "tcp [2001:db8::1]:7", ""},
		{IPv6, "v4.example", "ip6", "", `cannot resolve hostname "v4.example": no IPv6 address`},
		{AnyFamily, "nx.example", "ip", "", `cannot resolve hostname "nx.example": lookup nx.example: no such host`},
	} {
		t.Run(tc.family.String()+"/"+tc.host, func(t *testing.T) {
			res, rec := newFake(), &recorder{}
			k := &Knocker{Family: tc.family, Resolver: res, Dialer: rec}
			err := k.Knock(context.Background(), []Hit{{tc.host, "7", false}})
			if res.lookups[0] != tc.network+" "+tc.host {
				t.Errorf("lookup = %q, want network %q", res.lookups[0], tc.network)
			}
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				if len(rec.events) != 0 {
					t.Errorf("sent %q despite the error", rec.events)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(rec.events, []string{tc.want}) {
				t.Errorf("events = %q, want %q", rec.events, tc.want)
			}
		})
	}
}

// The delay is slept after every hit, the last one included (knock 0.8).
func TestKnockDelayAfterEveryHit(t *testing.T) {
	res, rec := newFake(), &recorder{}
	k := &Knocker{Delay: 400 * time.Millisecond, Resolver: res, Dialer: rec, Sleep: rec.sleep}
	hits := []Hit{{"v4.example", "1", false}, {"v4.example", "2", true}, {"v4.example", "3", false}}
	if err := k.Knock(context.Background(), hits); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"tcp 192.0.2.2:1", "sleep 400ms",
		"udp 192.0.2.2:2", "sleep 400ms",
		"tcp 192.0.2.2:3", "sleep 400ms",
	}
	if !reflect.DeepEqual(rec.events, want) {
		t.Errorf("events = %q, want %q", rec.events, want)
	}

	rec.events = nil
	k.Delay = 0
	if err := k.Knock(context.Background(), hits[:2]); err != nil {
		t.Fatal(err)
	}
	if want := []string{"tcp 192.0.2.2:1", "udp 192.0.2.2:2"}; !reflect.DeepEqual(rec.events, want) {
		t.Errorf("no delay: events = %q, want %q", rec.events, want)
	}
}

func TestKnockCancelledDuringDelay(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	rec := &recorder{}
	k := &Knocker{Delay: time.Hour, Resolver: newFake(), Dialer: rec}
	time.AfterFunc(time.Millisecond, cancel)
	err := k.Knock(ctx, []Hit{{"v4.example", "1", false}, {"v4.example", "2", false}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if want := []string{"tcp 192.0.2.2:1"}; !reflect.DeepEqual(rec.events, want) {
		t.Errorf("events = %q, want %q", rec.events, want)
	}
}

func TestKnockErrors(t *testing.T) {
	refused := &SendError{Op: "connect", Dst: netip.MustParseAddrPort("192.0.2.2:1"), Err: syscall.ECONNREFUSED}
	rec := &recorder{fail: map[string]error{
		"tcp 192.0.2.2:1": refused,
		"udp 192.0.2.2:3": errors.New("cannot open socket: socket: too many open files"),
	}}
	var trace, warn strings.Builder
	k := &Knocker{Resolver: newFake(), Dialer: rec, Trace: &trace, Warn: &warn}
	hits := []Hit{{"v4.example", "1", false}, {"v4.example", "2", true}, {"v4.example", "3", true}, {"v4.example", "4", true}}
	err := k.Knock(context.Background(), hits)
	if err == nil || err.Error() != "cannot open socket: socket: too many open files" {
		t.Fatalf("err = %v, want the socket error", err)
	}
	want := []string{"tcp 192.0.2.2:1", "udp 192.0.2.2:2", "udp 192.0.2.2:3"}
	if !reflect.DeepEqual(rec.events, want) {
		t.Errorf("events = %q, want %q (send errors ignored, socket errors fatal)", rec.events, want)
	}
	if got, want := warn.String(), "warning: connect 192.0.2.2:1: connection refused\n"; got != want {
		t.Errorf("warn = %q, want %q", got, want)
	}
	wantTrace := "hitting tcp 192.0.2.2:1\nhitting udp 192.0.2.2:2\nhitting udp 192.0.2.2:3\n"
	if trace.String() != wantTrace {
		t.Errorf("trace = %q, want %q", trace.String(), wantTrace)
	}
}

func TestKnockTraceIPv6WithoutBrackets(t *testing.T) {
	var trace strings.Builder
	k := &Knocker{Resolver: newFake(), Dialer: &recorder{}, Trace: &trace}
	if err := k.Knock(context.Background(), []Hit{{"dual.example", "ssh", false}, {"dual.example", "domain", true}}); err != nil {
		t.Fatal(err)
	}
	if got, want := trace.String(), "hitting tcp 2001:db8::1:22\nhitting udp 2001:db8::1:53\n"; got != want {
		t.Errorf("trace = %q, want %q", got, want)
	}
}

// Every hit is checked before the first packet goes out.
func TestKnockValidatesBeforeSending(t *testing.T) {
	for _, tc := range []struct {
		hit     Hit
		wantErr string
	}{
		{Hit{"v4.example", "70000", false}, `invalid port "70000": must be 1-65535`},
		{Hit{"v4.example", "0", false}, `invalid port "0": must be 1-65535`},
		{Hit{"v4.example", "", false}, `missing port`},
		{Hit{"v4.example", "ssh", true}, `unknown port "ssh": lookup udp/ssh: unknown port`},
		{Hit{"v4.example", "zero", false}, `invalid port "zero": service resolves to 0`},
		{Hit{"nx.example", "1", false}, `cannot resolve hostname "nx.example": lookup nx.example: no such host`},
		{Hit{"", "1", false}, `cannot resolve hostname: empty host`},
	} {
		rec := &recorder{}
		k := &Knocker{Resolver: newFake(), Dialer: rec}
		err := k.Knock(context.Background(), []Hit{{"v4.example", "1", false}, {"other.example", "ssh", false}, tc.hit})
		if err == nil || err.Error() != tc.wantErr {
			t.Errorf("%+v: err = %v, want %q", tc.hit, err, tc.wantErr)
		}
		if len(rec.events) != 0 {
			t.Errorf("%+v: sent %q before failing", tc.hit, rec.events)
		}
	}
}

func TestParseHit(t *testing.T) {
	for _, tc := range []struct {
		arg     string
		want    Hit
		wantErr string
	}{
		{"1000", Hit{"h", "1000", false}, ""},
		{"1000:tcp", Hit{"h", "1000", false}, ""},
		{"1000:udp", Hit{"h", "1000", true}, ""},
		{"1003:UDP", Hit{"h", "1003", true}, ""},
		{"1003:Tcp", Hit{"h", "1003", false}, ""},
		{"ssh", Hit{"h", "ssh", false}, ""},
		{"domain:udp", Hit{"h", "domain", true}, ""},
		{"65535", Hit{"h", "65535", false}, ""},
		{"1", Hit{"h", "1", false}, ""},
		{"1004:foo", Hit{}, `unknown protocol "foo" in "1004:foo"`},
		{"1004:", Hit{}, `unknown protocol "" in "1004:"`},
		{"7000:tcp:junk", Hit{}, `unknown protocol "tcp:junk" in "7000:tcp:junk"`},
		{":udp", Hit{}, `missing port in ":udp"`},
		{"", Hit{}, `missing port in ""`},
		{"70000", Hit{}, `invalid port "70000": must be 1-65535`},
		{"0:udp", Hit{}, `invalid port "0": must be 1-65535`},
		{"-1", Hit{}, `invalid port "-1": must be 1-65535`},
		{"99999999999999999999", Hit{}, `invalid port "99999999999999999999": must be 1-65535`},
	} {
		got, err := ParseHit("h", tc.arg)
		if tc.wantErr != "" {
			if err == nil || err.Error() != tc.wantErr {
				t.Errorf("ParseHit(%q) err = %v, want %q", tc.arg, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseHit(%q) = %+v, %v; want %+v", tc.arg, got, err, tc.want)
		}
	}
}
