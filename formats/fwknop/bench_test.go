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

// BenchmarkOpen measures an Opener kept across packets, as the detector
// keeps one per stanza (before Opener, the detector called Open, which
// keys a new HMAC per packet).
func BenchmarkOpen(b *testing.B) {
	g := readGolden(b)[0]
	k := g.keys(b)
	o := NewOpener(&k)
	b.Run("hostile", func(b *testing.B) {
		p := hostilePayload()
		b.ReportAllocs()
		for b.Loop() {
			_, _ = o.Open(p)
		}
	})
	b.Run("wrong-hmac", func(b *testing.B) {
		p := []byte(g.packet)
		other := k
		other.HMACKey = []byte("another stanza's key")
		o := NewOpener(&other)
		b.ReportAllocs()
		for b.Loop() {
			_, _ = o.Open(p)
		}
	})
	b.Run("valid", func(b *testing.B) {
		p := []byte(g.packet)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := o.Open(p); err != nil {
				b.Fatal(err)
			}
		}
	})
}
