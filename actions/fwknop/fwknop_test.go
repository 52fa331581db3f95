package fwknop

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/doorward/doorward/actions"
	"github.com/doorward/doorward/actions/filestore"
	"github.com/doorward/doorward/formats/nftset"
	"github.com/doorward/doorward/formats/proto"
)

var (
	t0     = time.Unix(1_700_000_000, 0)
	client = netip.MustParseAddr("192.0.2.7")
	sender = netip.MustParseAddr("198.51.100.9")
	server = netip.MustParseAddr("203.0.113.1")
	v6     = netip.MustParseAddr("2001:db8::7")
)

func TestCycle(t *testing.T) {
	v := Vars{IP: client, PktSrc: sender, Dst: server, Port: 22, Proto: proto.TCP, Timeout: 1_700_000_030, ClientTimeout: 30}
	for _, tc := range []struct{ name, tmpl, want string }{
		{"every variable", "open $IP $SRC $PKT_SRC $DST $PORT $PROTO $TIMEOUT $CLIENT_TIMEOUT",
			"open 192.0.2.7 192.0.2.7 198.51.100.9 203.0.113.1 22 6 1700000030 30"},
		{"prefix match as fwknopd", "x$IPX", "x192.0.2.7X"},
		{"unknown variable loses its dollar", "echo $HOME ${IP} $(id)", "echo HOME {IP} (id)"},
		{"trailing dollar", "a$", "a"},
		{"no variables", "/usr/local/bin/open", "/usr/local/bin/open"},
		{"ipv6", "ip6tables -s $IP", "ip6tables -s 2001:db8::7"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := v
			if tc.name == "ipv6" {
				v.IP = v6
			}
			if got := Cycle(tc.tmpl, v); got != tc.want {
				t.Errorf("Cycle(%q) = %q, want %q", tc.tmpl, got, tc.want)
			}
		})
	}
}

func TestRule(t *testing.T) {
	add, del := Rule("iptables", client, Request{Proto: proto.TCP, Port: 22, Timeout: 30 * time.Second}, 1_700_000_030)
	wantAdd := "iptables -w -t filter -N FWKNOP_INPUT 2>/dev/null; iptables -w -t filter -C INPUT -j FWKNOP_INPUT 2>/dev/null || iptables -w -t filter -I INPUT 1 -j FWKNOP_INPUT || exit 1; " +
		"iptables -w -t filter -A FWKNOP_INPUT -p 6 -s 192.0.2.7 --dport 22 -m comment --comment _exp_1700000030 -j ACCEPT"
	wantDel := "iptables -w -t filter -D FWKNOP_INPUT -p 6 -s 192.0.2.7 --dport 22 -m comment --comment _exp_1700000030 -j ACCEPT"
	if add != wantAdd || del != wantDel {
		t.Errorf("Rule:\nadd %q\ndel %q\nwant\nadd %q\ndel %q", add, del, wantAdd, wantDel)
	}
}

func record(p proto.Proto, port uint16, secs uint32) *actions.Record {
	r := &actions.Record{Has: actions.HasPort | actions.HasTime | actions.HasFlag(0), Port: port, Time: secs}
	r.Flags[0] = uint8(p)
	return r
}

// fakeSets records what the engine does to sets.
type fakeSets struct{ log *[]string }

func (f fakeSets) Add(r nftset.Ref, a netip.Addr, d time.Duration) error {
	*f.log = append(*f.log, fmt.Sprintf("add %s %s %v", r, a, d))
	return nil
}

func (f fakeSets) Delete(r nftset.Ref, a netip.Addr) error {
	*f.log = append(*f.log, fmt.Sprintf("delete %s %s", r, a))
	return nil
}

// TestAction runs one accepted SPA packet's events through each backend
// and compares everything the world saw: commands, set operations, and
// the journal's entries while the door is open.
func TestAction(t *testing.T) {
	tcp22 := record(proto.TCP, 22, 30)
	udp53 := record(proto.UDP, 53, 30)
	for _, tc := range []struct {
		name   string
		door   Door
		events []actions.Event
		want   []string
	}{
		{
			name: "command cycle, first port only, closed after the timer",
			door: Door{Key: "k", Name: "ssh", CmdOpen: "open $IP $PORT $PROTO $CLIENT_TIMEOUT", CmdClose: "close $IP $TIMEOUT"},
			events: []actions.Event{
				{Door: "k", Addr: client, Sender: sender, Dst: server, Port: 22, Time: t0, Record: tcp22},
			},
			want: []string{
				"run open 192.0.2.7 22 6 30",
				"journal ssh 192.0.2.7 stop=close 192.0.2.7 1700000030 set= due=+30s",
				"run close 192.0.2.7 1700000030",
				"journal empty",
			},
		},
		{
			name: "command cycle per port: the same port again stays open longer, another port runs its own",
			door: Door{Key: "k", Name: "ssh", CmdOpen: "open $IP $PORT", CmdClose: "close $IP $PORT"},
			events: []actions.Event{
				{Door: "k", Addr: client, Sender: client, Port: 22, Time: t0, Record: tcp22},
				{Door: "k", Addr: client, Sender: client, Port: 22, Time: t0.Add(10 * time.Second), Record: tcp22},
				{Door: "k", Addr: client, Sender: client, Port: 53, Time: t0, Record: udp53},
			},
			want: []string{
				"run open 192.0.2.7 22",
				"run open 192.0.2.7 53",
				"journal ssh 192.0.2.7 stop=close 192.0.2.7 22 set= due=+40s",
				"journal ssh 192.0.2.7 stop=close 192.0.2.7 53 set= due=+30s",
				"run close 192.0.2.7 53",
				"journal ssh 192.0.2.7 stop=close 192.0.2.7 22 set= due=+40s",
			},
		},
		{
			name: "command cycle without a close command",
			door: Door{Key: "k", Name: "ssh", CmdOpen: "open $IP"},
			events: []actions.Event{
				{Door: "k", Addr: client, Sender: sender, Dst: server, Port: 22, Time: t0, Record: tcp22},
			},
			want: []string{"run open 192.0.2.7", "journal empty", "journal empty"},
		},
		{
			name: "nftables set per port, two ports",
			door: Door{Key: "k", Name: "ssh", Set: [2]nftset.Ref{{Family: "inet", Table: "filter", Set: "fwknop4"}, {Family: "inet", Table: "filter", Set: "fwknop6"}}, PerPort: [2]bool{true, true}},
			events: []actions.Event{
				{Door: "k", Addr: client, Sender: client, Port: 22, Time: t0, Record: tcp22},
				{Door: "k", Addr: client, Sender: client, Port: 53, Time: t0, Record: udp53},
			},
			want: []string{
				"set add inet filter fwknop4 22 192.0.2.7 30s",
				"set add inet filter fwknop4 53 192.0.2.7 30s",
				"journal ssh tcp/22 192.0.2.7 stop= set=inet filter fwknop4 22 due=+30s",
				"journal ssh udp/53 192.0.2.7 stop= set=inet filter fwknop4 53 due=+30s",
				"set delete inet filter fwknop4 22 192.0.2.7",
				"set delete inet filter fwknop4 53 192.0.2.7",
				"journal empty",
			},
		},
		{
			name: "nftables set of addresses, IPv6 allow-IP",
			door: Door{Key: "k", Name: "ssh", Set: [2]nftset.Ref{{}, {Family: "ip6", Table: "filter", Set: "fwknop6"}}},
			events: []actions.Event{
				{Door: "k", Addr: v6, Sender: client, Port: 22, Time: t0, Record: tcp22},
			},
			want: []string{
				"set add ip6 filter fwknop6 2001:db8::7 30s",
				"journal ssh tcp/22 2001:db8::7 stop= set=ip6 filter fwknop6 due=+30s",
				"set delete ip6 filter fwknop6 2001:db8::7",
				"journal empty",
			},
		},
		{
			name: "iptables, IPv6",
			door: Door{Key: "k", Name: "ssh"},
			events: []actions.Event{
				{Door: "k", Addr: v6, Sender: v6, Port: 22, Time: t0, Record: tcp22},
			},
			want: []string{
				"run ip6tables -w -t filter -N FWKNOP_INPUT 2>/dev/null; ip6tables -w -t filter -C INPUT -j FWKNOP_INPUT 2>/dev/null || ip6tables -w -t filter -I INPUT 1 -j FWKNOP_INPUT || exit 1; ip6tables -w -t filter -A FWKNOP_INPUT -p 6 -s 2001:db8::7 --dport 22 -m comment --comment _exp_1700000030 -j ACCEPT",
				"journal ssh tcp/22 2001:db8::7 stop=ip6tables -w -t filter -D FWKNOP_INPUT -p 6 -s 2001:db8::7 --dport 22 -m comment --comment _exp_1700000030 -j ACCEPT set= due=+30s",
				"run ip6tables -w -t filter -D FWKNOP_INPUT -p 6 -s 2001:db8::7 --dport 22 -m comment --comment _exp_1700000030 -j ACCEPT",
				"journal empty",
			},
		},
		{
			name: "an event without a request is ignored",
			door: Door{Key: "k", Name: "ssh"},
			events: []actions.Event{
				{Door: "k", Addr: client, Port: 22, Time: t0},
			},
			want: []string{"journal empty", "journal empty"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			store := filestore.Memory()
			run := func(_ context.Context, line string) (int, error) {
				got = append(got, "run "+line)
				return 0, nil
			}
			setLog := []string{}
			a := New([]Door{tc.door}, Options{Run: run, Store: store, Sets: fakeSets{&setLog}})
			ctx := context.Background()
			for _, ev := range tc.events {
				a.Handle(ctx, ev)
			}
			flush := func() {
				for _, s := range setLog {
					got = append(got, "set "+s)
				}
				setLog = setLog[:0]
				got = append(got, journal(store))
			}
			flush()
			a.Advance(ctx, t0.Add(31*time.Second))
			flush()
			got = slices.DeleteFunc(got, func(s string) bool { return s == "" })
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

// journal renders the store's open doors, one line each, "" after lines.
func journal(s actions.Doors) string {
	var lines []string
	for _, e := range s.OpenDoors() {
		lines = append(lines, fmt.Sprintf("journal %s %s stop=%s set=%s due=+%v", e.Name, e.Addr, e.Stop, e.Set, e.Due.Sub(t0)))
	}
	if len(lines) == 0 {
		return "journal empty"
	}
	return strings.Join(lines, "\n")
}

// TestCloseAll: SIGTERM closes what is open.
func TestCloseAll(t *testing.T) {
	var got []string
	store := filestore.Memory()
	run := func(_ context.Context, line string) (int, error) {
		got = append(got, line)
		return 0, nil
	}
	a := New([]Door{{Key: "k", Name: "ssh", CmdOpen: "open $IP", CmdClose: "close $IP"}}, Options{Run: run, Store: store})
	a.Handle(context.Background(), actions.Event{Door: "k", Addr: client, Port: 22, Time: t0, Record: record(proto.TCP, 22, 300)})
	if next, ok := a.Next(); !ok || !next.Equal(t0.Add(300*time.Second)) {
		t.Errorf("Next = %v %v, want %v", next, ok, t0.Add(300*time.Second))
	}
	a.Close(context.Background())
	want := []string{"open 192.0.2.7", "close 192.0.2.7"}
	if !slices.Equal(got, want) || len(store.OpenDoors()) != 0 {
		t.Errorf("ran %q (journal %v), want %q and an empty journal", got, store.OpenDoors(), want)
	}
}
