package knockdaemon

import (
	"crypto/hmac"
	"crypto/sha256"
	"hash"
)

// The authenticated mode (our extension, not in knockdaemon): with a MAC
// key, a knock is the wire bytes (header and ciphertext, or the record
// when not encrypted) followed by a tag,
//
//	tag = HMAC-SHA256(MacKey, "doorward portspan mac v1\x00" ‖ wire)
//
// truncated to MacTagLen bytes, and the whole is spelled on the span. The
// daemon checks the tag, in constant time, before it decrypts anything:
// without the MAC key no knock can be made or altered (no IV flip, no cut
// and paste of blocks), whatever the legacy format allows.
//
// How long the tag is: at least MinTag bytes (64 bits: a forger must send
// 2^64 knocks, each of dozens of hits, to expect one to pass), and then
// every whole byte that still fits in the hits the knock needs anyway: a
// knock of n bytes takes ⌈8n/N⌉ hits of N bits, and the bits of the last
// hit that the knock leaves over hold more tag bytes when there are 8 or
// more of them. So the tag costs at most ⌈64/N⌉ hits (5 on a 32768-port
// span, 8 on a 256-port one) and is 8 to 9 bytes long (HMAC-SHA256 has 32).
const (
	MinTag    = 8
	macDomain = "doorward portspan mac v1\x00"
)

// MacTagLen is the tag length for n bytes of wire on a span of N bits a
// hit (see above).
func MacTagLen(n, bits int) int {
	hits := (8*(n+MinTag) + bits - 1) / bits
	return min(hits*bits/8-n, sha256.Size)
}

// mac is a reusable HMAC: one per Codec, so the hot path does not allocate.
type mac struct {
	h   hash.Hash
	dom []byte
	sum [sha256.Size]byte
}

func newMAC(key []byte) *mac { return &mac{h: hmac.New(sha256.New, key), dom: []byte(macDomain)} }

// tag computes the full tag of wire into m.sum.
func (m *mac) tag(wire []byte) []byte {
	m.h.Reset()
	m.h.Write(m.dom)
	m.h.Write(wire)
	return m.h.Sum(m.sum[:0])
}

// verify reports, in constant time, whether t is wire's tag truncated to
// len(t).
func (m *mac) verify(wire, t []byte) bool {
	return hmac.Equal(m.tag(wire)[:len(t)], t)
}
