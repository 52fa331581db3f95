package knockdaemon

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestReadConf(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     Conf
		ignored  []string
		err      string
	}{
		{"knockclient.conf", `
# knockclient.conf
remote   = server.example.com
client   = 10.1.1.1
port     = 22
knock    = IP,PORT,FLAG0,CHECKSUM   # the layout
cipher   = Blowfish
encrypt  = yes
key      = "my secret \# phrase"
iv       = yes
portspan = 1024-5000,\
           6000-25000,26000-35789
Flag0    5
`, Conf{
			"remote": "server.example.com", "client": "10.1.1.1", "port": "22", "knock": "IP,PORT,FLAG0,CHECKSUM",
			"cipher": "Blowfish", "encrypt": "yes", "key": "my secret # phrase", "iv": "yes",
			"portspan": "1024-5000,6000-25000,26000-35789", "flag0": "5",
		}, nil, ""},
		{"legacy keys ignored", "logfile = /var/log/fw\nlogtofile = no\nport = 1\n", Conf{"port": "1"}, []string{"logfile", "logtofile"}, ""},
		{"errors", "<ethfilter x>\nsecret = 1\nflag32 = 1\nport 2\n", Conf{"port": "2"}, nil,
			"c.conf:1: blocks are not part of a knockclient config\nc.conf:2: unknown key \"secret\"\nc.conf:3: unknown key \"flag32\""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, ign, err := ReadConf("c.conf", strings.NewReader(tc.in))
			var gotErr string
			if err != nil {
				gotErr = err.Error()
			}
			if !maps.Equal(c, tc.want) || !slices.Equal(ign, tc.ignored) || gotErr != tc.err {
				t.Errorf("got %v, ignored %v, err %q\nwant %v, ignored %v, err %q", c, ign, gotErr, tc.want, tc.ignored, tc.err)
			}
		})
	}
}

// vector is an entry of formats/knockdaemon/testdata/vectors.json.
type vector struct {
	ID       string            `json:"id"`
	Settings map[string]string `json:"settings"`
	Fields   map[string]string `json:"fields"`
	Random   string            `json:"random"`
	Wire     string            `json:"wire"`
	Ports    []uint16          `json:"ports"`
}

// TestVectors: the client's knock for each of the spec's vectors, built from
// knockclient settings as a user writes them, is the spec's port list.
func TestVectors(t *testing.T) {
	b, err := os.ReadFile("../../formats/knockdaemon/testdata/vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var vf struct{ Vectors []vector }
	if err := json.Unmarshal(b, &vf); err != nil {
		t.Fatal(err)
	}
	for _, v := range vf.Vectors {
		t.Run(v.ID, func(t *testing.T) {
			c := Conf{"remote": "192.0.2.1"}
			for k, val := range v.Settings {
				c[strings.ToLower(k)] = val
			}
			for k, val := range v.Fields {
				switch k {
				case "IP":
					c["client"] = val
				case "CHECKSUM": // computed
				default:
					c[strings.ToLower(k)] = val
				}
			}
			k, err := c.Plan(netip.MustParseAddr("192.0.2.1"), netip.Addr{}, time.Time{})
			if err != nil {
				t.Fatal(err)
			}
			wire, ports, err := k.Encode(strings.NewReader(v.Random))
			if err != nil {
				t.Fatal(err)
			}
			if got := fmt.Sprintf("%x", wire); got != strings.ReplaceAll(v.Wire, " ", "") {
				t.Errorf("wire %s, want %s", got, v.Wire)
			}
			if !slices.Equal(ports, v.Ports) {
				t.Errorf("ports %v\nwant %v", ports, v.Ports)
			}
			hits := k.Hits(ports)
			if len(hits) != len(ports) || hits[0].Host != "192.0.2.1" || hits[0].Port != fmt.Sprint(ports[0]) || hits[0].UDP {
				t.Errorf("hits %+v", hits[:1])
			}
		})
	}
}

func TestPlan(t *testing.T) {
	base := Conf{"knock": "IP,PORT,TIME,FLAG0,CHECKSUM", "portspan": "1024-1279", "key": "k", "port": "22"}
	with := func(kv ...string) Conf {
		c := maps.Clone(base)
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == "<unset>" {
				delete(c, kv[i])
			} else {
				c[kv[i]] = kv[i+1]
			}
		}
		return c
	}
	remote, local := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.7")
	now := time.Unix(1099578368, 0)
	for _, tc := range []struct {
		name  string
		c     Conf
		local netip.Addr
		want  string // the record, or the errors
	}{
		{"local address", base, local, "ip=192.0.2.7 port=22 time=0 flags=[0 0] delay=10ms udp=false"},
		{"client given", with("client", "10.0.0.9", "flag1", "3", "udp", "yes", "delay", "0"), local, "ip=10.0.0.9 port=22 time=0 flags=[0 3] delay=0s udp=true"},
		{"time now", with("time_width", "4"), local, "ip=192.0.2.7 port=22 time=1099578368 flags=[0 0] delay=10ms udp=false"},
		{"time given", with("time", "7"), local, "ip=192.0.2.7 port=22 time=7 flags=[0 0] delay=10ms udp=false"},
		{"no ipv4", base, netip.MustParseAddr("fd00::1"), "client: not given, and this host has no IPv4 address towards 192.0.2.1: give the address to open for"},
		{"bad values", with("client", "fd00::1", "port", "0", "flag0", "256", "time", "-1", "delay", "x", "udp", "maybe", "iv", "often"), local,
			`client: "fd00::1" is not an IPv4 address (the knock carries 4 bytes)` + "\n" +
				`delay: "x" is not a whole number of milliseconds` + "\n" +
				`flag0: "256" is not a number from 0 to 255` + "\n" +
				`iv: "often" is not yes, header, no or salted` + "\n" +
				`port: "0" is not a port from 1 to 65535` + "\n" +
				`time: "-1" is not a number from 0 to 4294967295` + "\n" +
				`udp: "maybe" is not yes or no`},
		{"missing", Conf{}, netip.Addr{}, "key: missing (the passphrase; or set Encrypt = no)\n" +
			"knock: missing (the record's field list, e.g. IP,PORT,FLAG0,CHECKSUM)\n" +
			"portspan: missing (the span of ports knocks are spelled on)\n" +
			"remote: missing (the host to knock)"},
		{"port too wide", with("port_width", "1", "port", "3306"), local, "port 3306 does not fit the 1-byte PORT field"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := remote
			if len(tc.c) == 0 {
				r = netip.Addr{} // nothing given, not even the remote
			}
			k, err := tc.c.Plan(r, tc.local, now)
			var got string
			if err != nil {
				got = err.Error()
			} else {
				got = fmt.Sprintf("ip=%v port=%d time=%d flags=%v delay=%v udp=%v", k.Record.IP, k.Record.Port, k.Record.Time, k.Record.Flags[:2], k.Delay, k.UDP)
			}
			if got != tc.want {
				t.Errorf("got:\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}
}

// Encode draws the IV from the reader it is given: two knocks with fresh
// randomness differ, and none repeats the RandomIV header's IV.
func TestEncodeRandomIV(t *testing.T) {
	c := Conf{"knock": "IP,PORT,FLAG0,CHECKSUM", "portspan": "1024-1279", "key": "k", "port": "22", "client": "10.0.0.2"}
	k, err := c.Plan(netip.MustParseAddr("192.0.2.1"), netip.Addr{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	w1, _, _ := k.Encode(strings.NewReader("AAAAAAAA"))
	w2, _, _ := k.Encode(strings.NewReader("BBBBBBBB"))
	if !bytes.HasPrefix(w1, []byte("RandomIVAAAAAAAA")) || !bytes.HasPrefix(w2, []byte("RandomIVBBBBBBBB")) || bytes.Equal(w1[16:], w2[16:]) {
		t.Errorf("wires %x and %x", w1, w2)
	}
	if _, _, err := k.Encode(strings.NewReader("short")); err == nil {
		t.Error("a short random source is not an error")
	}
}

// FuzzReadConf: any input reads without panicking, and only known keys come
// out.
func FuzzReadConf(f *testing.F) {
	f.Add("remote = a\nkey = \"x \\# y\"\nportspan 1-2,\\\n 3-4\n# c\n")
	f.Add("<block>\nflag7=1\nlogfile x\n")
	f.Fuzz(func(t *testing.T, in string) {
		c, _, _ := ReadConf("f", strings.NewReader(in))
		for k := range c {
			if known, ignored := Known(k); !known || ignored {
				t.Fatalf("key %q came out", k)
			}
		}
	})
}

// TestDocs reads the knockclient.conf of docs/knockdaemon.md and builds its
// knock.
func TestDocs(t *testing.T) {
	b, err := os.ReadFile("../../docs/knockdaemon.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "```knockclient\n")
	block, _, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 {
		t.Fatal("no knockclient block in docs/knockdaemon.md")
	}
	c, ign, err := ReadConf("docs", strings.NewReader(block))
	if err != nil || len(ign) > 0 {
		t.Fatalf("%v, ignored %v", err, ign)
	}
	k, err := c.Plan(netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.7"), time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ports, err := k.Encode(strings.NewReader("12345678")); err != nil || len(ports) != 18 {
		t.Errorf("%d ports, %v; want 18", len(ports), err)
	}
}
