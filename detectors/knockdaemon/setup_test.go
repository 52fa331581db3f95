package knockdaemon_test

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"golang.org/x/net/bpf"

	"github.com/doorward/doorward/config/knockd"
	"github.com/doorward/doorward/detectors"
	"github.com/doorward/doorward/detectors/capture"
	"github.com/doorward/doorward/detectors/decode"
	"github.com/doorward/doorward/detectors/knockdaemon"
	"github.com/doorward/doorward/detectors/pcaptest"
)

func fromConfig(t testing.TB, src string, defMax int) ([]knockdaemon.Door, error) {
	t.Helper()
	cfg, err := knockd.Parse("knockd.conf", []byte(src))
	if err != nil {
		t.Fatalf("knockd.Parse: %v", err)
	}
	keys := cfg.Keys()
	return knockdaemon.FromDoors(cfg.Doors, func(d *knockd.Door) string { return keys[d] }, defMax)
}

// summary is what a test compares of a Door: everything FromDoors sets.
func summary(d knockdaemon.Door) string {
	c := d.Codec
	var layouts []string
	for _, l := range c.Layouts {
		layouts = append(layouts, fmt.Sprintf("%v/%d", l, l.Size()))
	}
	crypt := "none"
	if c.Crypt != nil {
		crypt = "blowfish iv=" + c.Crypt.Header().String()
	}
	return fmt.Sprintf("%s %s span=%v layouts=%s crypt=%s tail=%v sums=%v %v mask=%#x want=%#x timeout=%v max=%d ipmatch=%v",
		d.Key, d.Name, c.Span, strings.Join(layouts, "|"), crypt, c.Tail, c.Sums, d.Proto, d.FlagMask, d.FlagWant, d.HitTimeout, d.MaxSources, d.RequireIPMatch)
}

func TestFromDoors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		conf   string
		defMax int
		want   []string
	}{
		{"defaults", `
[ssh]
	Type = knockdaemon
	Portspan = 1024-1279
	Knock = IP,PORT,FLAG0,CHECKSUM
	Key = secret
`, 0, []string{"ssh ssh span=1024-1279 layouts=IP,PORT,FLAG0,CHECKSUM/8|IP,PORT,FLAG0,CHECKSUM/7 crypt=blowfish iv=yes tail=auto sums=256 tcp mask=0x2 want=0x2 timeout=30s max=16384 ipmatch=false"}},
		{"everything", `
[a]
	TYPE = KnockDaemon
	portspan = 10000-11023
	KNOCK = client,port,time,flag0,checksum
	encrypt = YES
	cipher = Blowfish
	key = k
	iv = no
	iv_hex = 0001020304050607
	header = strict
	port_width = 2
	time_width = 4
	checksum_mod = 256,255
	span_tail = raw
	protocol = tcp
	tcpflags = syn,!ack
	hit_timeout = 5
	max_sources = 16
	require_ip_match = yes
[b]
	Type = knockdaemon
	Portspan = 2000-2001
	Knock = FLAG0
	Encrypt = no
	Protocol = UDP
`, 100, []string{
			"a a span=10000-11023 layouts=IP,PORT,TIME,FLAG0,CHECKSUM/12 crypt=blowfish iv=no tail=raw sums=256,255 tcp mask=0x12 want=0x2 timeout=5s max=16 ipmatch=true",
			"b b span=2000-2001 layouts=FLAG0/1 crypt=none tail=auto sums=256 udp mask=0x0 want=0x0 timeout=30s max=100 ipmatch=false",
		}},
		{"other sections are skipped", `
[seq]
	sequence = 1,2
	command = true
[open]
	Type = action
	Condition = PORT == 22
[ssh]
	Type = knockdaemon
	Portspan = 1-2
	Knock = PORT
	Key = k
	IV = salted
	Port_Width = 1
`, 0, []string{"ssh ssh span=1-2 layouts=PORT/1 crypt=blowfish iv=salted tail=auto sums=256 tcp mask=0x2 want=0x2 timeout=30s max=16384 ipmatch=false"}},
		{"repeated section", `
[x]
	Type = knockdaemon
	Portspan = 1-2
	Knock = FLAG1
	Encrypt = no
[x]
	Type = knockdaemon
	Portspan = 3-4
	Knock = FLAG1
	Encrypt = no
`, 0, []string{
			"x x span=1-2 layouts=FLAG1/1 crypt=none tail=auto sums=256 tcp mask=0x2 want=0x2 timeout=30s max=16384 ipmatch=false",
			"x#2 x span=3-4 layouts=FLAG1/1 crypt=none tail=auto sums=256 tcp mask=0x2 want=0x2 timeout=30s max=16384 ipmatch=false",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doors, err := fromConfig(t, tc.conf, tc.defMax)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, d := range doors {
				got = append(got, summary(d))
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

// Every error of every door comes out at once, each at the line of its
// directive, or at the section for one that is missing.
func TestFromDoorsErrors(t *testing.T) {
	for _, tc := range []struct {
		name, conf string
		want       []string
	}{
		{"missing", `
[ssh]
	Type = knockdaemon
`, []string{
			"knockd.conf:2: Portspan: missing (the span of ports knocks are spelled on)",
			"knockd.conf:2: Knock: missing (the record's field list, e.g. IP,PORT,FLAG0,CHECKSUM)",
			"knockd.conf:2: Key: missing (the passphrase; or set Encrypt = no)",
		}},
		{"bad values", `
[ssh]
	Type = knockdaemon
	Portspan = 1024-1280
	Knock = IP,PORT,LOGIP
	Key = k
	Cipher = DES
	IV = maybe
	Protocol = sctp
	TCPFlags = syn,foo
	Hit_Timeout = 0
	Max_Sources = many
	Require_IP_Match = perhaps
	Sequence = 1,2,3
	Key = again
`, []string{
			"knockd.conf:4: Portspan: port span has 257 ports, want a power of two from 2 to 32768",
			"knockd.conf:5: Knock: unknown knock field \"LOGIP\" (want IP, CLIENT, PORT, TIME, FLAG0…FLAG31, CHECKSUM)",
			"knockd.conf:7: Cipher: cipher \"DES\" is not supported (supported: blowfish)",
			"knockd.conf:8: IV: \"maybe\" is not yes, header, no or salted",
			"knockd.conf:9: Protocol: \"sctp\" is not tcp or udp",
			"knockd.conf:10: TCPFlags: unrecognized flag \"foo\"",
			"knockd.conf:11: Hit_Timeout: \"0\" is not a whole number of seconds from 1",
			"knockd.conf:12: Max_Sources: \"many\" is not a number from 1 to 1048576",
			"knockd.conf:13: Require_IP_Match: \"perhaps\" is not yes or no",
			"knockd.conf:14: Sequence: unknown port-span directive",
			"knockd.conf:15: Key: given twice (first at line 6)",
		}},
		{"spent and mac", `
[s]
	Type = knockdaemon
	Portspan = 1024-1279
	Knock = IP,PORT,FLAG0,CHECKSUM
	Key = same
	Mac_Key = same
	Spent_Knocks = 2000000
	Header = sometimes
`, []string{
			"knockd.conf:7: Mac_Key: must not be the same secret as Key",
			"knockd.conf:8: Spent_Knocks: \"2000000\" is not a number from 0 to 1048576",
			"knockd.conf:9: Header: \"sometimes\" is not auto, magic or strict",
		}},
		{"flags on udp", `
[u]
	Type = knockdaemon
	Portspan = 1-2
	Knock = FLAG0
	Encrypt = no
	Protocol = udp
	TCPFlags = syn
[v]
	Type = knockdaemon
	Portspan = 1-3
	Knock = FLAG0
	Encrypt = no
`, []string{
			"knockd.conf:8: TCPFlags: only applies with Protocol = tcp",
			"knockd.conf:11: Portspan: port span has 3 ports, want a power of two from 2 to 32768",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := fromConfig(t, tc.conf, 0)
			var got []string
			if err != nil {
				got = strings.Split(err.Error(), "\n")
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

// A full 32768-port span over three ranges becomes one rule whose ports the
// capture filter merges back into three ranges: a short kernel program that
// takes exactly the span's SYNs.
func TestRulesLongSpan(t *testing.T) {
	doors, err := fromConfig(t, `
[big]
	Type = knockdaemon
	Portspan = 1024-5000,6000-25000,26000-35789
	Knock = IP,PORT,FLAG0,CHECKSUM
	Key = password
	TCPFlags = syn,!ack
`, 0)
	if err != nil {
		t.Fatal(err)
	}
	rules := knockdaemon.New(doors, knockdaemon.Options{}).Rules()
	if len(rules) != 1 || len(rules[0].Ports) != 32768 || rules[0].Proto != detectors.TCP ||
		rules[0].FlagMask != detectors.SYN|detectors.ACK || rules[0].FlagWant != detectors.SYN {
		t.Fatalf("rules = %d, first with %d ports, %v, %#x/%#x", len(rules), len(rules[0].Ports), rules[0].Proto, rules[0].FlagMask, rules[0].FlagWant)
	}
	if _, err := capture.BuildFilter(rules); err != nil {
		t.Fatalf("BuildFilter: %v", err)
	}
	prog, err := capture.Program(rules)
	if err != nil {
		t.Fatal(err)
	}
	if len(prog) > 64 {
		t.Errorf("filter for a 32768-port span has %d instructions, want a few ranges' worth", len(prog))
	}
	vm, err := bpf.NewVM(prog)
	if err != nil {
		t.Fatal(err)
	}
	client, server := netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("10.0.0.1")
	for _, tc := range []struct {
		port  uint16
		flags detectors.TCPFlags
		want  bool
	}{
		{1023, detectors.SYN, false}, {1024, detectors.SYN, true}, {5000, detectors.SYN, true},
		{5001, detectors.SYN, false}, {6000, detectors.SYN, true}, {25999, detectors.SYN, false},
		{35789, detectors.SYN, true}, {35790, detectors.SYN, false}, {1024, detectors.SYN | detectors.ACK, false},
	} {
		pkt := pcaptest.Encode(decode.Raw, pcaptest.Frame{Src: netip.AddrPortFrom(client, 40000), Dst: netip.AddrPortFrom(server, tc.port), Proto: detectors.TCP, Flags: tc.flags})
		n, err := vm.Run(pkt)
		if err != nil {
			t.Fatal(err)
		}
		if got := n > 0; got != tc.want {
			t.Errorf("port %d flags %#x: accepted = %v, want %v", tc.port, tc.flags, got, tc.want)
		}
	}
}
