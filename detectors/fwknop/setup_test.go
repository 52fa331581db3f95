package fwknop

import (
	"bytes"
	crand "crypto/rand"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/doorward/doorward/actions"
	"github.com/doorward/doorward/actions/filestore"
	"github.com/doorward/doorward/config/knockd"
	"github.com/doorward/doorward/detectors"
	"github.com/doorward/doorward/formats/fwknop"
)

func parse(t testing.TB, conf string) ([]*Stanza, error) {
	t.Helper()
	kc, err := knockd.Parse("doors.conf", []byte(conf))
	if err != nil {
		t.Fatal(err)
	}
	return FromDoors(kc.Doors, func(d *knockd.Door) string { return d.Name }, SetupOptions{Location: time.UTC})
}

// TestFromDoorsErrors: each bad value is reported with its file:line, all
// of a file's errors at once.
func TestFromDoorsErrors(t *testing.T) {
	for _, tc := range []struct{ name, body, want string }{
		{"no source", "KEY = k\n", "doors.conf:1: SOURCE: a fwknop door needs SOURCE"},
		{"no key", "SOURCE = ANY\n", "doors.conf:1: KEY: no keys found for access stanza"},
		{"bad source", "SOURCE = 10.0.0.300\nKEY = k\n", `doors.conf:3: SOURCE: "10.0.0.300" is not an address`},
		{"bad netmask", "SOURCE = 10.0.0.0/255.0.255.0\nKEY = k\n", `doors.conf:3: SOURCE: "10.0.0.0/255.0.255.0": 255.0.255.0 is not a netmask`},
		{"bad prefix", "SOURCE = 2001:db8::/129\nKEY = k\n", `doors.conf:3: SOURCE: "2001:db8::/129": "129" is not a prefix length or netmask`},
		{"bad port", "SOURCE = ANY\nKEY = k\nOPEN_PORTS = tcp/22, icmp/0\n", `doors.conf:5: OPEN_PORTS: "icmp/0": protocol "icmp" is not tcp or udp`},
		{"bad base64", "SOURCE = ANY\nKEY_BASE64 = !!\n", "doors.conf:4: KEY_BASE64: not base64"},
		{"bad digest", "SOURCE = ANY\nKEY = k\nHMAC_KEY = h\nHMAC_DIGEST_TYPE = crc32\n", "doors.conf:6: HMAC_DIGEST_TYPE:"},
		{"digest without key", "SOURCE = ANY\nKEY = k\nHMAC_DIGEST_TYPE = sha512\n", "doors.conf:5: HMAC_DIGEST_TYPE: no HMAC_KEY"},
		{"same keys", "SOURCE = ANY\nKEY = k\nHMAC_KEY = k\n", "doors.conf:5: HMAC_KEY: the HMAC key must differ"},
		{"bad timeout", "SOURCE = ANY\nKEY = k\nFW_ACCESS_TIMEOUT = 1o\n", `doors.conf:5: FW_ACCESS_TIMEOUT: "1o" is not a number of seconds`},
		{"bad date", "SOURCE = ANY\nKEY = k\nACCESS_EXPIRE = 2026-12-31\n", `doors.conf:5: ACCESS_EXPIRE: "2026-12-31" is not a date MM/DD/YYYY`},
		{"bad bool", "SOURCE = ANY\nKEY = k\nREQUIRE_SOURCE_ADDRESS = maybe\n", `doors.conf:5: REQUIRE_SOURCE_ADDRESS: "maybe" is not Y or N`},
		{"filter without port", "SOURCE = ANY\nKEY = k\nPCAP_FILTER = udp\n", `doors.conf:5: PCAP_FILTER: "udp" names no port`},
		{"filter of tcp", "SOURCE = ANY\nKEY = k\nPCAP_FILTER = tcp port 62201\n", `doors.conf:5: PCAP_FILTER: "tcp port 62201": SPA over TCP is not supported`},
		{"cycle without close", "SOURCE = ANY\nKEY = k\nCMD_CYCLE_OPEN = /bin/true\n", "doors.conf:5: CMD_CYCLE_CLOSE: CMD_CYCLE_OPEN needs CMD_CYCLE_CLOSE"},
		{"cycle without timer", "SOURCE = ANY\nKEY = k\nCMD_CYCLE_OPEN = /bin/true\nCMD_CYCLE_CLOSE = /bin/true\n", "doors.conf:5: CMD_CYCLE_TIMER: CMD_CYCLE_CLOSE needs CMD_CYCLE_TIMER"},
		{"set with a port", "SOURCE = ANY\nKEY = k\nNft_Set = inet filter fw 22\n", `doors.conf:5: Nft_Set: "inet filter fw 22": no port here`},
		{"v6 set of ip", "SOURCE = ANY\nKEY = k\nNft_Set_6 = ip filter fw\n", `doors.conf:5: Nft_Set_6: "ip filter fw": family ip holds no IPv6 addresses`},
		{"key too long", "SOURCE = ANY\nKEY_BASE64 = " + strings.Repeat("a", 48) + "\n", "doors.conf:4: KEY: 36 bytes: at most 32"},
		{"unknown key", "SOURCE = ANY\nKEY = k\nOPEN_PORT = tcp/22\n", "doors.conf:5: OPEN_PORT: unknown directive"},
		{"two errors", "SOURCE = nope\nKEY = k\nMAX_FW_TIMEOUT = -1\n", "doors.conf:3: SOURCE: \"nope\" is not an address\ndoors.conf:5: MAX_FW_TIMEOUT:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parse(t, "[d]\ntype = fwknop\n"+tc.body)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// TestFromDoors: what a valid door's keys become, defaults included.
func TestFromDoors(t *testing.T) {
	ss, err := parse(t, `[ssh]
type = fwknop
source = 10.0.0.0/24, 2001:db8::/32 192.168.1.1
Destination = ANY
OPEN_PORTS = tcp/22,udp/53
KEY_BASE64 = a2V5a2V5
HMAC_KEY_BASE64 = aG1hY2htYWM=
HMAC_DIGEST_TYPE = SHA512
MAX_FW_TIMEOUT = 60
ACCESS_EXPIRE = 12/31/2030
REQUIRE_USERNAME = bob
REQUIRE_SOURCE = y
PCAP_FILTER = udp dst port 40001
ENABLE_DIGEST_PERSISTENCE = N
Nft_Set = inet filter fw4
Nft_Set_6 = inet filter fw6
GPG_REMOTE_ID = 1234
[plain]
type = fwknop
SOURCE = ANY
KEY = k
`)
	if err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprintf("%+v\n%+v", *ss[0], *ss[1])
	for _, want := range []string{
		"Source:[10.0.0.0/24 2001:db8::/32 192.168.1.1/32]",
		"Dest:[0.0.0.0/0 ::/0]",
		"Open:[tcp/22 udp/53]",
		"Keys:{Key:[107 101 121 107 101 121] HMACKey:[104 109 97 99 104 109 97 99] HMAC:" + fwknop.DigestSHA512.String(),
		"AccessTimeout:30s MaxTimeout:1m0s Expire:2030-12-31 00:00:00 +0000 UTC RequireUser:bob HasRequireUser:true RequireSource:true",
		"Port:40001 MaxAge:2m0s Aging:true Persist:false DigestFile:",
		"NftSet:inet filter fw4 NftSet6:inet filter fw6",
		"Name:plain Num:2",
		"Port:62201 MaxAge:2m0s Aging:true Persist:true DigestFile:/var/run/fwknop/digest.cache",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("doors:\n%s\nlack %q", got, want)
		}
	}
}

const door = "[ssh]\ntype = fwknop\nSOURCE = ANY\nKEY = k1-secret\nHMAC_KEY = h1-secret\n"

var keys = fwknop.Keys{Key: []byte("k1-secret"), HMACKey: []byte("h1-secret")}

func sealed(t testing.TB, now time.Time) []byte {
	t.Helper()
	m := fwknop.Message{User: "alice", Time: now.Unix(), Type: fwknop.MsgAccess, Access: "0.0.0.0,tcp/22"}
	pkt, err := fwknop.Seal(&m, &keys, crand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return pkt
}

func packet(payload []byte, now time.Time) *detectors.Packet {
	return &detectors.Packet{
		Time: now, Src: netip.MustParseAddr("10.0.0.2"), Dst: netip.MustParseAddr("10.0.0.1"),
		SrcPort: 40000, DstPort: DefaultPort, Proto: detectors.UDP, Payload: payload,
	}
}

// TestReplayAfterRestart: the replay cache is on disk, so a packet
// accepted before a restart is refused after it; and an fwknopd
// digest.cache is imported when the cache is first created.
func TestReplayAfterRestart(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	first, second := sealed(t, now), sealed(t, now.Add(time.Second))
	digests := filepath.Join(dir, "digest.cache")
	cache := "# <digest> <proto> <src_ip> <src_port> <dst_ip> <dst_port> <time>\n" +
		fwknop.ReplayDigest(second) + " 17 10.0.0.2 40000 10.0.0.1 62201 1700000000\n" +
		"garbage line\n"
	if err := os.WriteFile(digests, []byte(cache), 0o600); err != nil {
		t.Fatal(err)
	}
	start := func() (*Detector, *strings.Builder) {
		var log strings.Builder
		ss, err := parse(t, door+"DIGEST_FILE = "+digests+"\n")
		if err != nil {
			t.Fatal(err)
		}
		d := New(ss, Options{Store: filestore.New(filestore.Options{Dir: dir}), LogRate: -1,
			Logf: func(f string, a ...any) { fmt.Fprintf(&log, f+"\n", a...) }})
		if err := d.Commit(); err != nil {
			t.Fatal(err)
		}
		return d, &log
	}
	var events int
	emit := func(actions.Event) { events++ }

	d, log := start()
	d.Observe(packet(first, now), emit)
	d.Observe(packet(second, now), emit) // fwknopd accepted it before us
	d.Close()
	if events != 1 || !strings.Contains(log.String(), "imported 1 digests") || !strings.Contains(log.String(), "Replay detected") {
		t.Fatalf("first run: %d events, log:\n%s", events, log)
	}

	d, log = start()
	defer d.Close()
	d.Observe(packet(first, now.Add(2*time.Second)), emit)
	if events != 1 || !strings.Contains(log.String(), "Replay detected") || strings.Contains(log.String(), "imported") {
		t.Errorf("after a restart: %d events, log:\n%s", events, log)
	}
}

// hostile is random bytes of the base64 alphabet, the length of an SPA
// packet: what passes Precheck and costs the most.
func hostile(n int) []byte {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	r := rand.New(rand.NewPCG(7, 7))
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[r.IntN(len(alphabet))]
	}
	return b
}

// TestHostileDoesNotAllocate: a forged payload is refused without an
// allocation, whatever its length, including random base64 the length of
// an SPA packet, which passes Precheck and is refused only by the HMAC of
// each stanza whose SOURCE matches (its cost: BenchmarkObserve).
func TestHostileDoesNotAllocate(t *testing.T) {
	ss, err := parse(t, door)
	if err != nil {
		t.Fatal(err)
	}
	d := New(ss, Options{LogRate: 1, LogBurst: 1})
	if err := d.Commit(); err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	now := time.Now()
	for name, payload := range map[string][]byte{"short": []byte("x"), "random": bytes.Repeat([]byte{0x17, 0xff}, 100), "long": make([]byte, 1400), "base64": hostile(190)} {
		p := packet(payload, now)
		d.Observe(p, nil) // the one line the limiter allows
		if n := testing.AllocsPerRun(100, func() { d.Observe(p, nil) }); n != 0 {
			t.Errorf("%s: %v allocations per packet", name, n)
		}
	}
}

// BenchmarkObserve compares a packet no door wants (a plain miss) with a
// hostile payload on the SPA port: the difference is Precheck and the
// HMAC of the one stanza whose SOURCE matches.
func BenchmarkObserve(b *testing.B) {
	ss, err := parse(b, door)
	if err != nil {
		b.Fatal(err)
	}
	d := New(ss, Options{LogRate: 1, LogBurst: 1})
	if err := d.Commit(); err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	now := time.Now()
	disp := detectors.NewDispatcher([]detectors.Detector{d}, nil)
	for _, bc := range []struct {
		name string
		p    *detectors.Packet
	}{
		{"miss", func() *detectors.Packet { p := packet(hostile(190), now); p.DstPort = 9; return p }()},
		{"random", packet(bytes.Repeat([]byte{0x17, 0xff}, 100), now)},
		{"base64", packet(hostile(190), now)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				disp.Dispatch(bc.p)
			}
		})
	}
}

// TestReloadKeepsReplays: a reload's detector refuses what the old one
// accepted, from the durable ring and, for a stanza without digest
// persistence, from the memory one it adopts.
func TestReloadKeepsReplays(t *testing.T) {
	for _, persist := range []string{"Y", "N"} {
		t.Run("ENABLE_DIGEST_PERSISTENCE="+persist, func(t *testing.T) {
			store := filestore.Memory()
			build := func() (*Detector, *strings.Builder) {
				var log strings.Builder
				ss, err := parse(t, door+"ENABLE_DIGEST_PERSISTENCE = "+persist+"\n")
				if err != nil {
					t.Fatal(err)
				}
				d := New(ss, Options{Store: store, LogRate: -1, Logf: func(f string, a ...any) { fmt.Fprintf(&log, f+"\n", a...) }})
				if err := d.Commit(); err != nil {
					t.Fatal(err)
				}
				return d, &log
			}
			now := time.Now()
			pkt := sealed(t, now)
			events := 0
			emit := func(actions.Event) { events++ }
			old, _ := build()
			old.Observe(packet(pkt, now), emit)
			d, log := build()
			d.Adopt(old)
			old.Close()
			defer d.Close()
			d.Observe(packet(pkt, now.Add(time.Second)), emit)
			if events != 1 || !strings.Contains(log.String(), "Replay detected") {
				t.Errorf("%d events; after the reload:\n%s", events, log)
			}
		})
	}
}
