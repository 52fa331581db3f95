package knockdaemon_test

// Forgeries of a captured port-span knock, built by a small encoder
// written here from the spec (../shared/specs/knockdaemon.md §4–§6) with
// x/crypto's Blowfish, independently of formats/knockdaemon: Crypt::CBC 2.12's
// key stretch, CBC with PKCS#5 padding and a "RandomIV" header, the
// byte-sum checksum, and a 256-port span, one byte a hit.

import (
	"bytes"
	"crypto/md5"
	"crypto/rand"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/blowfish"

	"github.com/doorward/doorward/actions"
	kclient "github.com/doorward/doorward/client/knockdaemon"
	"github.com/doorward/doorward/detectors"
	"github.com/doorward/doorward/detectors/knockdaemon"
	wire "github.com/doorward/doorward/formats/knockdaemon"
)

const forgeryConf = `
[ssh]
	Type = knockdaemon
	Portspan = 1024-1279
	Knock = IP,PORT,FLAG0,CHECKSUM
	Key = my_secret_phrase
`

// indep is the test's own knockdaemon encoder.
type indep struct{ c *blowfish.Cipher }

func newIndep(t *testing.T, pass string) indep {
	k := md5.Sum([]byte(pass))
	key := k[:]
	for len(key) < 56 {
		s := md5.Sum(key)
		key = append(key, s[:]...)
	}
	c, err := blowfish.NewCipher(key[:56])
	if err != nil {
		t.Fatal(err)
	}
	return indep{c}
}

// record is IP, PORT (width 1 or 2), FLAG0, CHECKSUM.
func record(ip netip.Addr, port int, width int, flag byte) []byte {
	a := ip.As4()
	r := append([]byte{}, a[:]...)
	if width == 2 {
		r = append(r, byte(port>>8))
	}
	r = append(r, byte(port), flag)
	var sum byte
	for _, b := range r {
		sum += b
	}
	return append(r, sum)
}

// seal is Crypt::CBC 2.12 with a RandomIV header.
func (e indep) seal(plain []byte, iv [8]byte) []byte {
	pad := 8 - len(plain)%8
	p := append(bytes.Clone(plain), bytes.Repeat([]byte{byte(pad)}, pad)...)
	out := append([]byte("RandomIV"), iv[:]...)
	prev := iv[:]
	for i := 0; i < len(p); i += 8 {
		blk := make([]byte, 8)
		for j := range blk {
			blk[j] = p[i+j] ^ prev[j]
		}
		e.c.Encrypt(blk, blk)
		out = append(out, blk...)
		prev = blk
	}
	return out
}

// spell is the wire bytes on the span 1024-1279: one hit a byte.
func spell(wire []byte) []uint16 {
	var ports []uint16
	for _, b := range wire {
		ports = append(ports, 1024+uint16(b))
	}
	return ports
}

type forgeryRig struct {
	det    *knockdaemon.Detector
	opened []actions.Event
	now    time.Time
	sport  uint16
}

func newForgeryRig(t *testing.T, opt knockdaemon.Options) *forgeryRig {
	t.Helper()
	return newRig(t, forgeryConf, opt)
}

// newRig is newForgeryRig for another config.
func newRig(t *testing.T, conf string, opt knockdaemon.Options) *forgeryRig {
	t.Helper()
	doors, err := fromConfig(t, conf, 0)
	if err != nil {
		t.Fatal(err)
	}
	opt.Logf = t.Logf
	return &forgeryRig{det: knockdaemon.New(doors, opt), now: time.Unix(1_700_000_000, 0), sport: 30000}
}

// send knocks ports from src, one SYN each from a new source port.
func (r *forgeryRig) send(src netip.Addr, ports []uint16) {
	for _, port := range ports {
		r.now = r.now.Add(time.Millisecond)
		r.sport++
		p := detectors.Packet{Time: r.now, Src: src, Dst: netip.MustParseAddr("192.0.2.1"), SrcPort: r.sport, DstPort: port, Proto: detectors.TCP, Flags: detectors.SYN}
		r.det.Observe(&p, func(ev actions.Event) { r.opened = append(r.opened, ev) })
	}
}

// forgeries returns, for a captured RandomIV knock, every knock an
// attacker at attacker can make of it without the key:
//   - the knock itself (a verbatim replay);
//   - the IV-flip variants: the IP field rewritten to attacker's by
//     flipping IV bits, under each of the 256 checksum masks;
//   - one-block knocks cut from the capture: a block whose plaintext is
//     known (the padding block, or the first block) with an IV chosen so
//     that it decrypts to a 7-byte record (1-byte PORT, which Port_Width
//     auto accepts) naming attacker's address and port 22.
func forgeries(captured []byte, plain []byte, attacker netip.Addr) [][]byte {
	var out [][]byte
	out = append(out, bytes.Clone(captured))
	iv := captured[8:16]
	a := attacker.As4()
	for m := range 256 {
		f := bytes.Clone(captured)
		for i := range 4 {
			f[8+i] = iv[i] ^ plain[i] ^ a[i]
		}
		f[8+7] ^= byte(m)
		out = append(out, f)
	}
	body := captured[16:]
	want := append(record(attacker, 22, 1, 1), 1) // 7 bytes + pad 01
	// D(C_k) = P_k xor C_{k-1}: known for every block whose plaintext is.
	padded := append(bytes.Clone(plain), bytes.Repeat([]byte{8}, 8)...)
	for k := 0; k+8 <= len(body); k += 8 {
		prev := iv
		if k > 0 {
			prev = body[k-8 : k]
		}
		newIV := make([]byte, 8)
		for j := range newIV {
			newIV[j] = padded[k+j] ^ prev[j] ^ want[j]
		}
		f := append(append([]byte("RandomIV"), newIV...), body[k:k+8]...)
		out = append(out, f)
	}
	return out
}

// TestCapturedKnockCannotBeReused: once a knock was accepted, no replay
// of it and no forgery made of it opens anything, from the attacker's
// address or the legitimate one.
func TestCapturedKnockCannotBeReused(t *testing.T) {
	enc := newIndep(t, "my_secret_phrase")
	owner := netip.MustParseAddr("10.1.1.1")
	attacker := netip.MustParseAddr("203.0.113.66")
	plain := record(owner, 22, 2, 1)
	captured := enc.seal(plain, [8]byte{'3', '6', '5', '7', '4', '2', '1', '0'})

	r := newForgeryRig(t, knockdaemon.Options{})
	r.send(owner, spell(captured))
	if len(r.opened) != 1 || r.opened[0].Addr != owner {
		t.Fatalf("the legitimate knock: %+v, want one event for %s", r.opened, owner)
	}
	checkForgeries(t, r, forgeries(captured, plain, attacker), attacker, owner)
}

// checkForgeries sends each forgery from each address and fails with a
// count of what opened, by kind of forgery.
func checkForgeries(t *testing.T, r *forgeryRig, fs [][]byte, from ...netip.Addr) {
	t.Helper()
	kind := func(i int) string {
		switch {
		case i == 0:
			return "verbatim replay"
		case i <= 256:
			return "IV flip"
		}
		return "one-block cut"
	}
	opened := map[string]int{}
	for i, f := range fs {
		for _, src := range from {
			r.opened = nil
			r.send(src, spell(f))
			for _, ev := range r.opened {
				opened[kind(i)]++
				t.Logf("%s (forgery %d) from %s opened for %s", kind(i), i, src, ev.Addr)
			}
		}
	}
	if len(opened) != 0 {
		t.Errorf("forgeries that opened a door: %v", opened)
	}
}

// TestSpentAcrossRestart: the spent store is on disk, so after a restart
// (a new detector on the same state directory) the captured knock and its
// forgeries still open nothing, and a fresh knock still opens.
func TestSpentAcrossRestart(t *testing.T) {
	enc := newIndep(t, "my_secret_phrase")
	owner := netip.MustParseAddr("10.1.1.1")
	attacker := netip.MustParseAddr("203.0.113.66")
	plain := record(owner, 22, 2, 1)
	captured := enc.seal(plain, [8]byte{1, 2, 3, 4, 5, 6, 7, 8})
	path := filepath.Join(t.TempDir(), knockdaemon.SpentFile)

	r := newForgeryRig(t, knockdaemon.Options{SpentPath: path})
	if err := commit(t, r); err != nil {
		t.Fatal(err)
	}
	r.send(owner, spell(captured))
	if len(r.opened) != 1 {
		t.Fatalf("the legitimate knock opened %d times", len(r.opened))
	}
	r.det.Close()

	r = newForgeryRig(t, knockdaemon.Options{SpentPath: path})
	defer r.det.Close()
	if err := commit(t, r); err != nil {
		t.Fatal(err)
	}
	checkForgeries(t, r, forgeries(captured, plain, attacker), attacker, owner)
	r.opened = nil
	r.send(owner, spell(enc.seal(plain, [8]byte{8, 7, 6, 5, 4, 3, 2, 1})))
	if len(r.opened) != 1 {
		t.Errorf("a fresh knock after the restart opened %d times", len(r.opened))
	}
}

const macConf = `
[ssh]
	Type = knockdaemon
	Portspan = 1024-5000,6000-25000,26000-35789
	Knock = IP,PORT,FLAG0,CHECKSUM
	Key = my_secret_phrase
	Mac_Key = another secret
`

// TestAuthenticatedLoopback: our client (client/knockdaemon, as knock span runs
// it) and the detector agree on the authenticated mode: a knock with the
// door's MAC key opens; one without a MAC key, with another MAC key, or
// with the IP rewritten is refused. A door without Mac_Key reads the
// legacy knock the tag trails (its hits come first) and opens: the
// authenticated knock is the legacy one plus a tag.
func TestAuthenticatedLoopback(t *testing.T) {
	owner := netip.MustParseAddr("10.1.1.1")
	ports := func(t *testing.T, macKey, client string) []uint16 {
		conf := kclient.Conf{"portspan": "1024-5000,6000-25000,26000-35789", "knock": "IP,PORT,FLAG0,CHECKSUM",
			"key": "my_secret_phrase", "port": "22", "flag0": "1", "client": client}
		if macKey != "" {
			conf["mac_key"] = macKey
		}
		k, err := conf.Plan(netip.MustParseAddr("192.0.2.1"), owner, time.Unix(0, 0))
		if err != nil {
			t.Fatal(err)
		}
		_, ps, err := k.Encode(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return ps
	}
	for _, tc := range []struct {
		name, conf, macKey string
		opens              bool
	}{
		{"with the MAC key", macConf, "another secret", true},
		{"without MAC", macConf, "", false},
		{"another MAC key", macConf, "not the secret", false},
		{"MAC on a door without Mac_Key", forgeryConf, "another secret", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doors, err := fromConfig(t, tc.conf, 0)
			if err != nil {
				t.Fatal(err)
			}
			r := &forgeryRig{det: knockdaemon.New(doors, knockdaemon.Options{Logf: t.Logf}), now: time.Unix(1_700_000_000, 0)}
			if tc.conf == forgeryConf {
				// The 256-port door spells bytes differently: use its span.
				conf := kclient.Conf{"portspan": "1024-1279", "knock": "IP,PORT,FLAG0,CHECKSUM", "key": "my_secret_phrase",
					"port": "22", "flag0": "1", "client": "10.1.1.1", "mac_key": tc.macKey}
				k, err := conf.Plan(netip.MustParseAddr("192.0.2.1"), owner, time.Unix(0, 0))
				if err != nil {
					t.Fatal(err)
				}
				_, ps, _ := k.Encode(rand.Reader)
				r.send(owner, ps)
			} else {
				r.send(owner, ports(t, tc.macKey, "10.1.1.1"))
			}
			if got := len(r.opened) == 1; got != tc.opens {
				t.Errorf("opened %d times, want opens = %v", len(r.opened), tc.opens)
			}
		})
	}
}

// TestAuthenticatedForgeries: the forgeries of a captured authenticated
// knock fail its tag even with the spent store off, since the tag covers
// the header: the IV flip, and the verbatim replay only through the store.
func TestAuthenticatedForgeries(t *testing.T) {
	owner := netip.MustParseAddr("10.1.1.1")
	attacker := netip.MustParseAddr("203.0.113.66")
	doors, err := fromConfig(t, macConf+"\tSpent_Knocks = 0\n", 0)
	if err != nil {
		t.Fatal(err)
	}
	codec := doors[0].Codec
	rec := wire.Record{IP: owner, Port: 22}
	rec.Flags[0] = 1
	knock, err := codec.Knock(nil, &rec, strings.NewReader("ivivivi!"))
	if err != nil {
		t.Fatal(err)
	}
	r := &forgeryRig{det: knockdaemon.New(doors, knockdaemon.Options{Logf: t.Logf}), now: time.Unix(1_700_000_000, 0)}
	a := attacker.As4()
	o := owner.As4()
	for m := range 256 {
		f := bytes.Clone(knock)
		for i := range 4 {
			f[8+i] ^= o[i] ^ a[i]
		}
		f[15] ^= byte(m)
		r.send(attacker, codec.Span.Encode(nil, f, wire.TailPad))
	}
	if len(r.opened) != 0 {
		t.Fatalf("an IV flip of an authenticated knock opened: %+v", r.opened)
	}
	r.send(owner, codec.Span.Encode(nil, knock, wire.TailPad))
	if len(r.opened) != 1 {
		t.Fatalf("the knock itself opened %d times", len(r.opened))
	}
}
