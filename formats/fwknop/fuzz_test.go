package fwknop

import (
	"testing"
)

// FuzzOpen feeds arbitrary packets to Open with the golden vectors' keys:
// it must not panic, and whatever it accepts must be a message Seal can
// build again (so Open accepts nothing libfko's encoder could not write).
func FuzzOpen(f *testing.F) {
	for _, g := range readGolden(f) {
		f.Add([]byte(g.packet))
	}
	keys := []Keys{
		{Key: testKey, HMACKey: testHMAC},
		{Key: testKey},
	}
	f.Fuzz(func(t *testing.T, pkt []byte) {
		for _, k := range keys {
			m, err := Open(pkt, &k)
			if err != nil {
				continue
			}
			if _, err := Seal(&m, &k, seededRand(0)); err != nil {
				t.Fatalf("Open accepted %+v, which Seal refuses: %v", m, err)
			}
		}
	})
}

// FuzzSealOpen builds packets from arbitrary fields: Seal either refuses
// them or Open gives back exactly what was sealed.
func FuzzSealOpen(f *testing.F) {
	f.Add("alice", int64(1796461808), "192.0.2.7,tcp/22", "", "", uint32(0), uint8(0), uint8(0), []byte("key"))
	f.Add("bob", int64(1), "2001:db8::1,udp/53,tcp/22", "10.0.0.5,22", "auth", uint32(60), uint8(2), uint8(4), []byte("k"))
	f.Fuzz(func(t *testing.T, user string, tm int64, access, nat, auth string, timeout uint32, ty, dg uint8, key []byte) {
		m := Message{Random: "0123456789012345", User: user, Time: tm, Version: Version, Type: MsgType(ty % 7),
			Access: access, NATAccess: nat, ServerAuth: auth, ClientTimeout: timeout, Digest: Digest(dg % 7)}
		k := Keys{Key: key, HMACKey: testHMAC, HMAC: Digest(dg % 5)}
		pkt, err := Seal(&m, &k, seededRand(0))
		if err != nil {
			return
		}
		got, err := Open(pkt, &k)
		if err != nil {
			t.Fatalf("Open(Seal(%+v)): %v", m, err)
		}
		m.Type = m.Type.withTimeout(m.ClientTimeout > 0)
		if got != m {
			t.Fatalf("Open(Seal(m)) = %+v\nwant %+v", got, m)
		}
	})
}
