package fwknop

import (
	mrand "math/rand/v2"
	"testing"
)

// hostilePayload is what a flood sends to the SPA port: random bytes of a
// plausible length, which Precheck refuses on a non-base64 byte.
func hostilePayload() []byte {
	r := mrand.New(mrand.NewPCG(1, 2))
	p := make([]byte, 200)
	for i := range p {
		p[i] = byte(r.Uint32())
	}
	p[0] = 'A' // not a prefix, so the alphabet check is what refuses it
	return p
}

func BenchmarkPrecheck(b *testing.B) {
	b.Run("hostile", func(b *testing.B) {
		p := hostilePayload()
		b.ReportAllocs()
		for b.Loop() {
			_ = Precheck(p)
		}
	})
	b.Run("valid", func(b *testing.B) {
		p := []byte(readGolden(b)[0].packet)
		b.ReportAllocs()
		for b.Loop() {
			if err := Precheck(p); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkOpen(b *testing.B) {
	g := readGolden(b)[0]
	k := g.keys(b)
	b.Run("hostile", func(b *testing.B) {
		p := hostilePayload()
		b.ReportAllocs()
		for b.Loop() {
			_, _ = Open(p, &k)
		}
	})
	b.Run("wrong-hmac", func(b *testing.B) {
		p := []byte(g.packet)
		other := k
		other.HMACKey = []byte("another stanza's key")
		b.ReportAllocs()
		for b.Loop() {
			_, _ = Open(p, &other)
		}
	})
	b.Run("valid", func(b *testing.B) {
		p := []byte(g.packet)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := Open(p, &k); err != nil {
				b.Fatal(err)
			}
		}
	})
}
