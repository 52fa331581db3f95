package fwknop

import (
	"bytes"
	"crypto/rand"
	"errors"
	mrand "math/rand/v2"
	"net/netip"
	"reflect"
	"testing"

	"github.com/doorward/doorward/formats/proto"
)

var (
	testKey  = []byte("doorward-test-rijndael-key-32byt")
	testHMAC = []byte("doorward-test-hmac-key-for-golden-vectors-0123456789-abcdefghijklmnopqrstuvwxyz")
)

func testMessage() Message {
	return Message{Random: "1234567890123456", User: "alice", Time: 1796461808, Version: Version,
		Type: MsgAccess, Access: "192.0.2.7,tcp/22"}
}

// seededRand is a deterministic reader for Seal, so a failure reproduces.
func seededRand(seed uint64) *mrand.ChaCha8 {
	var s [32]byte
	s[0] = byte(seed)
	return mrand.NewChaCha8(s)
}

func TestSealOpenRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		m    func(*Message)
		k    Keys
		want func(*Message) // what Open returns, when it differs from m
	}{
		{name: "sha256", k: Keys{Key: testKey, HMACKey: testHMAC}},
		{name: "md5/md5", m: func(m *Message) { m.Digest = DigestMD5 }, k: Keys{Key: testKey, HMACKey: testHMAC, HMAC: DigestMD5}},
		{name: "sha1/sha1", m: func(m *Message) { m.Digest = DigestSHA1 }, k: Keys{Key: testKey, HMACKey: testHMAC, HMAC: DigestSHA1}},
		{name: "sha384/sha384", m: func(m *Message) { m.Digest = DigestSHA384 }, k: Keys{Key: testKey, HMACKey: testHMAC, HMAC: DigestSHA384}},
		{name: "sha512/sha512", m: func(m *Message) { m.Digest = DigestSHA512 }, k: Keys{Key: testKey, HMACKey: testHMAC, HMAC: DigestSHA512}},
		{name: "sha3", m: func(m *Message) { m.Digest = DigestSHA3_512 }, k: Keys{Key: testKey, HMACKey: testHMAC, HMAC: DigestSHA3_256}},
		{name: "no HMAC", k: Keys{Key: []byte("passphrase")}},
		{name: "legacy", k: Keys{Key: []byte("short"), Mode: ModeLegacy}},
		{name: "two ports and a timeout", m: func(m *Message) { m.Access = "192.0.2.7,tcp/22,udp/53"; m.ClientTimeout = 30 },
			k: Keys{Key: testKey, HMACKey: testHMAC}, want: func(m *Message) { m.Type = MsgClientTimeoutAccess }},
		{name: "timeout type without a timeout", m: func(m *Message) { m.Type = MsgClientTimeoutAccess },
			k: Keys{Key: testKey, HMACKey: testHMAC}, want: func(m *Message) { m.Type = MsgAccess }},
		{name: "IPv6 allow-IP", m: func(m *Message) { m.Access = "2001:db8::7,tcp/22" }, k: Keys{Key: testKey, HMACKey: testHMAC}},
		{name: "source IP", m: func(m *Message) { m.Access = "0.0.0.0,tcp/22" }, k: Keys{Key: testKey, HMACKey: testHMAC}},
		{name: "NAT with timeout and auth", m: func(m *Message) {
			m.Type, m.NATAccess, m.ServerAuth, m.ClientTimeout = MsgNATAccess, "10.0.0.5,2222", "crypt,pw", 60
		}, k: Keys{Key: testKey, HMACKey: testHMAC}, want: func(m *Message) { m.Type = MsgClientTimeoutNATAccess }},
		{name: "server auth", m: func(m *Message) { m.ServerAuth = "crypt,pw" }, k: Keys{Key: testKey, HMACKey: testHMAC}},
		{name: "command", m: func(m *Message) { m.Type, m.Access = MsgCommand, "192.0.2.7,touch /tmp/x" }, k: Keys{Key: testKey, HMACKey: testHMAC}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := testMessage()
			if tt.m != nil {
				tt.m(&m)
			}
			pkt, err := Seal(&m, &tt.k, seededRand(uint64(i)))
			if err != nil {
				t.Fatalf("Seal: %v", err)
			}
			want := m
			if tt.want != nil {
				tt.want(&want)
			}
			got, err := Open(pkt, &tt.k)
			if err != nil || got != want {
				t.Fatalf("Open(Seal(m)) = %+v, %v\nwant %+v", got, err, want)
			}
		})
	}
}

func TestSealDrawsRandomValue(t *testing.T) {
	m := testMessage()
	m.Random = ""
	k := Keys{Key: testKey, HMACKey: testHMAC}
	pkt, err := Seal(&m, &k, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Open(pkt, &k)
	if err != nil || len(got.Random) != 16 {
		t.Fatalf("Open = %+v, %v; want a 16-digit random value", got, err)
	}
}

func TestSealRefuses(t *testing.T) {
	tests := []struct {
		name string
		m    func(*Message)
		k    Keys
	}{
		{name: "no key", k: Keys{}},
		{name: "key over 32 bytes", k: Keys{Key: bytes.Repeat([]byte("k"), 33)}},
		{name: "legacy with HMAC", k: Keys{Key: testKey, HMACKey: testHMAC, Mode: ModeLegacy}},
		{name: "user with colon", m: func(m *Message) { m.User = "a:b" }, k: Keys{Key: testKey}},
		{name: "empty user", m: func(m *Message) { m.User = "" }, k: Keys{Key: testKey}},
		{name: "no ports", m: func(m *Message) { m.Access = "192.0.2.7" }, k: Keys{Key: testKey}},
		{name: "port 0", m: func(m *Message) { m.Access = "192.0.2.7,tcp/0" }, k: Keys{Key: testKey}},
		{name: "icmp", m: func(m *Message) { m.Access = "192.0.2.7,icmp/1" }, k: Keys{Key: testKey}},
		{name: "host name allow-IP", m: func(m *Message) { m.Access = "example.org,tcp/22" }, k: Keys{Key: testKey}},
		{name: "NAT without port", m: func(m *Message) { m.Type, m.NATAccess = MsgNATAccess, "10.0.0.5" }, k: Keys{Key: testKey}},
		{name: "random value not digits", m: func(m *Message) { m.Random = "12345678901234ab" }, k: Keys{Key: testKey}},
		{name: "too long to be Rijndael", m: func(m *Message) {
			m.Access = "192.0.2.7" + string(bytes.Repeat([]byte(",tcp/65535"), 24))
		}, k: Keys{Key: testKey}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := testMessage()
			if tt.m != nil {
				tt.m(&m)
			}
			if pkt, err := Seal(&m, &tt.k, seededRand(1)); err == nil {
				t.Fatalf("Seal = %q, want an error", pkt)
			}
		})
	}
}

// sealPlain encrypts and MACs a plaintext as Seal does, for packets whose
// inside Seal would refuse to build.
func sealPlain(plain []byte, k *Keys) []byte {
	enc := appendB64(nil, encrypt(plain, k.Key, []byte("saltsalt"), k.Mode))
	if k.HMACKey != nil {
		enc = k.HMAC.mac(enc, k.HMACKey, enc)
	}
	return enc[len(prefixRijndael):]
}

func TestOpenRefuses(t *testing.T) {
	k := Keys{Key: testKey, HMACKey: testHMAC}
	m := testMessage()
	good, err := Seal(&m, &k, seededRand(2))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := encodePlain(&m, nil)
	if err != nil {
		t.Fatal(err)
	}
	badDigest := bytes.Clone(plain)
	badDigest[len(badDigest)-1] ^= 1
	// "1234567890123456:YWxpY2U:1796461808:3.0.0:1:<b64 of a host name>": a
	// digest that matches over fields libfko refuses.
	badFields := []byte("1234567890123456:YWxpY2U:1796461808:3.0.0:1:ZXhhbXBsZS5vcmcsdGNwLzIy")
	badFields = DigestSHA256.sum(append(badFields, ':'), badFields)

	tests := []struct {
		name string
		pkt  []byte
		k    Keys
		want error
	}{
		{name: "short", pkt: good[:MinPacket-1], k: k, want: ErrLength},
		{name: "long", pkt: bytes.Repeat([]byte("A"), MaxPacket+1), k: k, want: ErrLength},
		{name: "not base64", pkt: append(bytes.Clone(good[:len(good)-1]), '!'), k: k, want: ErrBase64},
		{name: "prefix put back", pkt: append([]byte(prefixRijndael), good...), k: k, want: ErrPrefixed},
		{name: "GnuPG prefix on a long packet", pkt: append([]byte("hQ"), bytes.Repeat([]byte("A"), 500)...), k: k, want: ErrPrefixed},
		{name: "wrong HMAC key", pkt: good, k: Keys{Key: testKey, HMACKey: []byte("other")}, want: ErrHMAC},
		{name: "wrong HMAC type", pkt: good, k: Keys{Key: testKey, HMACKey: testHMAC, HMAC: DigestSHA512}, want: ErrHMAC},
		{name: "flipped byte", pkt: append(append(bytes.Clone(good[:20]), good[20]^1), good[21:]...), k: k, want: ErrHMAC},
		{name: "wrong key, right HMAC key", pkt: good, k: Keys{Key: []byte("wrong"), HMACKey: testHMAC}, want: ErrDecrypt},
		{name: "wrong key, no HMAC", pkt: sealPlain(plain, &Keys{Key: testKey}), k: Keys{Key: []byte("wrong")}, want: ErrDecrypt},
		{name: "HMAC where none is expected", pkt: good, k: Keys{Key: testKey}, want: ErrDecrypt},
		{name: "inner digest", pkt: sealPlain(badDigest, &k), k: k, want: ErrDigest},
		{name: "fields", pkt: sealPlain(badFields, &k), k: k, want: ErrFields},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Open(tt.pkt, &tt.k)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Open = %+v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

func TestReasonsNest(t *testing.T) {
	for _, err := range []error{ErrLength, ErrBase64, ErrFields} {
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("%v is not ErrMalformed", err)
		}
	}
	for _, err := range []error{ErrHMAC, ErrDecrypt, ErrDigest, ErrPrefixed} {
		if errors.Is(err, ErrMalformed) {
			t.Errorf("%v is ErrMalformed", err)
		}
	}
}

func TestPrecheckAllocatesNothing(t *testing.T) {
	pkts := [][]byte{hostilePayload(), bytes.Repeat([]byte("A"), 200), []byte(readGolden(t)[0].packet)}
	for _, p := range pkts {
		if n := testing.AllocsPerRun(100, func() { _ = Precheck(p) }); n != 0 {
			t.Errorf("Precheck allocates %v times", n)
		}
	}
	k := Keys{Key: testKey, HMACKey: testHMAC}
	p := hostilePayload()
	if n := testing.AllocsPerRun(100, func() { _, _ = Open(p, &k) }); n != 0 {
		t.Errorf("Open of a hostile payload allocates %v times", n)
	}
}

// TestOpenerRefusesBase64WithoutAllocating: random base64 the length of an
// SPA packet passes Precheck, so only the HMAC refuses it; with a kept
// Opener that costs no allocation, whatever the digest type.
func TestOpenerRefusesBase64WithoutAllocating(t *testing.T) {
	p := bytes.Repeat([]byte("Zm9v"), 50)
	for d := range Digest(len(digestNames)) {
		t.Run(d.String(), func(t *testing.T) {
			o := NewOpener(&Keys{Key: testKey, HMACKey: testHMAC, HMAC: d})
			if _, err := o.Open(p); !errors.Is(err, ErrHMAC) {
				t.Fatalf("Open = %v, want ErrHMAC", err)
			}
			if n := testing.AllocsPerRun(100, func() { _, _ = o.Open(p) }); n != 0 {
				t.Errorf("allocates %v times", n)
			}
		})
	}
}

func TestParseAccess(t *testing.T) {
	tests := []struct {
		in    string
		ip    netip.Addr
		ports []Port
		ok    bool
	}{
		{in: "192.0.2.7,tcp/22", ip: netip.MustParseAddr("192.0.2.7"), ports: []Port{{proto.TCP, 22}}, ok: true},
		{in: "0.0.0.0,tcp/22,udp/53", ip: netip.MustParseAddr("0.0.0.0"), ports: []Port{{proto.TCP, 22}, {proto.UDP, 53}}, ok: true},
		{in: "2001:db8::1,udp/65535", ip: netip.MustParseAddr("2001:db8::1"), ports: []Port{{proto.UDP, 65535}}, ok: true},
		{in: "192.0.2.7"},
		{in: "192.0.2.7,"},
		{in: "192.0.2.7,tcp/22,"},
		{in: "192.0.2.7,tcp/65536"},
		{in: "192.0.2.7,tcp/000022"},
		{in: "192.0.2.7,tcp/"},
		{in: "192.0.2.7,TCP/22"},
		{in: "192.0.2.7,icmp/8"},
		{in: "::ffff:192.0.2.7,tcp/22"},
		{in: "fe80::1%eth0,tcp/22"},
		{in: "host,tcp/22"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			ip, ports, err := ParseAccess(tt.in)
			if (err == nil) != tt.ok || ip != tt.ip || !reflect.DeepEqual(ports, tt.ports) {
				t.Errorf("ParseAccess = %v, %v, %v; want %v, %v, ok %v", ip, ports, err, tt.ip, tt.ports, tt.ok)
			}
		})
	}
}

func TestParseDigestAndMode(t *testing.T) {
	digests := map[string]Digest{"md5": DigestMD5, "SHA1": DigestSHA1, "sha256": DigestSHA256, "Sha384": DigestSHA384,
		"sha512": DigestSHA512, "SHA3_256": DigestSHA3_256, "sha3_512": DigestSHA3_512}
	for name, want := range digests {
		if got, err := ParseDigest(name); got != want || err != nil {
			t.Errorf("ParseDigest(%q) = %v, %v; want %v", name, got, err, want)
		}
	}
	if _, err := ParseDigest("sha-256"); err == nil {
		t.Error("ParseDigest(sha-256) accepted")
	}
	modes := map[string]Mode{"CBC": ModeCBC, "cbc": ModeCBC, "legacy": ModeLegacy, "Legacy": ModeLegacy}
	for name, want := range modes {
		if got, err := ParseMode(name); got != want || err != nil {
			t.Errorf("ParseMode(%q) = %v, %v; want %v", name, got, err, want)
		}
	}
	for _, name := range []string{"CTR", "asymmetric", ""} {
		if _, err := ParseMode(name); err == nil {
			t.Errorf("ParseMode(%q) accepted", name)
		}
	}
}

func TestB64DecodeLikeLibfko(t *testing.T) {
	tests := []struct {
		in   string
		want string
		ok   bool
	}{
		{in: "YWxpY2U", want: "alice", ok: true},
		{in: "YWxpY2U=", want: "alice", ok: true},
		{in: "YWxpY2U=garbage!", want: "alice", ok: true}, // b64_decode stops at '='
		{in: "YWxpY2Ux", want: "alice1", ok: true},
		{in: "YWxpY2UxZ", want: "alice1", ok: true}, // a lone last character is dropped
		{in: "YW-p", ok: false},
	}
	for _, tt := range tests {
		got, ok := appendB64Decode(nil, []byte(tt.in))
		if ok != tt.ok || ok && string(got) != tt.want {
			t.Errorf("decode(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}
