package fwknop

import (
	"bufio"
	"encoding/base64"
	"os"
	"strconv"
	"strings"
	"testing"
)

// golden is one packet of testdata/golden.txt, made by the real fwknop
// client (testdata/gen.sh), with the field values fwknop printed for it.
type golden struct {
	name, command string
	fields        map[string]string
	packet        string
}

func readGolden(t testing.TB) []golden {
	f, err := os.Open("testdata/golden.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []golden
	var g *golden
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ": ")
		switch {
		case !ok:
			continue
		case k == "name":
			out = append(out, golden{name: v, fields: map[string]string{}})
			g = &out[len(out)-1]
		case k == "command":
			g.command = v
		case k == "packet":
			g.packet = v
		default:
			g.fields[k] = v
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// keys reads the keys and algorithms back from the fwknop command line.
func (g golden) keys(t testing.TB) Keys {
	var k Keys
	args := strings.Fields(g.command)
	for i := 0; i+1 < len(args); i++ {
		v := args[i+1]
		var err error
		switch args[i] {
		case "--key-base64-rijndael":
			k.Key, err = base64.StdEncoding.DecodeString(v)
		case "--key-rijndael":
			k.Key = []byte(v)
		case "--key-base64-hmac":
			k.HMACKey, err = base64.StdEncoding.DecodeString(v)
		case "--hmac-digest-type":
			k.HMAC, err = ParseDigest(v)
		case "-M":
			k.Mode, err = ParseMode(v)
		}
		if err != nil {
			t.Fatalf("%s: %s %s: %v", g.name, args[i], v, err)
		}
	}
	return k
}

// want is the Message fwknop's own dump describes.
func (g golden) want(t testing.TB) Message {
	f := g.fields
	ty, _ := strconv.Atoi(f["type"])
	tm, _ := strconv.ParseInt(f["time"], 10, 64)
	to, _ := strconv.ParseUint(f["timeout"], 10, 32)
	d, err := ParseDigest(f["digest"])
	if err != nil {
		t.Fatalf("%s: %v", g.name, err)
	}
	m := Message{
		Random: f["random"], User: f["user"], Time: tm, Version: Version,
		Type: MsgType(ty), Access: f["message"], ClientTimeout: uint32(to), Digest: d,
	}
	if f["nat"] != "<NULL>" {
		m.NATAccess = f["nat"]
	}
	return m
}

func TestOpenGolden(t *testing.T) {
	vectors := readGolden(t)
	if len(vectors) < 10 {
		t.Fatalf("only %d golden vectors", len(vectors))
	}
	for _, g := range vectors {
		t.Run(g.name, func(t *testing.T) {
			k := g.keys(t)
			got, err := Open([]byte(g.packet), &k)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			if want := g.want(t); got != want {
				t.Errorf("Open:\n got %+v\nwant %+v", got, want)
			}
			// A kept Opener gives the same after refusing a forgery
			// with the same keys: its HMAC state is reset per packet.
			o := NewOpener(&k)
			forged := []byte(g.packet)
			if forged[len(forged)/2] = 'A'; g.packet[len(forged)/2] == 'A' {
				forged[len(forged)/2] = 'B'
			}
			if _, err := o.Open(forged); err == nil {
				t.Fatalf("Opener accepted a forged packet")
			}
			again, err := o.Open([]byte(g.packet))
			if err != nil || again != got {
				t.Errorf("Opener after a forgery: %+v, %v; want %+v", again, err, got)
			}
		})
	}
}

// TestReplayDigest pins the digest of the first golden packet to what
// `printf %s PACKET | openssl dgst -sha256 -binary | base64 | tr -d =`
// prints, the form fwknopd writes in digest.cache.
func TestReplayDigest(t *testing.T) {
	g := readGolden(t)[0]
	if got, want := ReplayDigest([]byte(g.packet)), "4wOO446SM3lRCPIx+S63R5E/xCHXwhQ4DBimIA84dx8"; got != want {
		t.Errorf("ReplayDigest = %s, want %s", got, want)
	}
}
