package fwknop

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha3"
	"crypto/sha512"
	"fmt"
	"hash"
	"strings"
)

// Digest is a hash algorithm, for the HMAC (HMAC_DIGEST_TYPE,
// --hmac-digest-type) or the inner digest (--digest-type). The zero value
// is SHA-256, fwknop's default for both.
type Digest int

const (
	DigestSHA256 Digest = iota
	DigestMD5
	DigestSHA1
	DigestSHA384
	DigestSHA512
	DigestSHA3_256
	DigestSHA3_512
)

var digestNames = [...]string{
	DigestSHA256:   "sha256",
	DigestMD5:      "md5",
	DigestSHA1:     "sha1",
	DigestSHA384:   "sha384",
	DigestSHA512:   "sha512",
	DigestSHA3_256: "sha3_256",
	DigestSHA3_512: "sha3_512",
}

// ParseDigest reads a digest name as fwknop and fwknopd do (strcasecmp
// against "md5", "sha1", "sha256", "sha384", "sha512", "sha3_256",
// "sha3_512").
func ParseDigest(name string) (Digest, error) {
	for d, n := range digestNames {
		if strings.EqualFold(name, n) {
			return Digest(d), nil
		}
	}
	return 0, fmt.Errorf("unknown digest type %q (have md5, sha1, sha256, sha384, sha512, sha3_256, sha3_512)", name)
}

// String is the name fwknop's configs use for d.
func (d Digest) String() string {
	if d < 0 || int(d) >= len(digestNames) {
		return fmt.Sprintf("Digest(%d)", int(d))
	}
	return digestNames[d]
}

func (d Digest) valid() bool { return d >= 0 && int(d) < len(digestNames) }

// newHash returns the hash constructor of d.
func (d Digest) newHash() func() hash.Hash {
	switch d {
	case DigestMD5:
		return md5.New
	case DigestSHA1:
		return sha1.New
	case DigestSHA384:
		return sha512.New384
	case DigestSHA512:
		return sha512.New
	case DigestSHA3_256:
		return func() hash.Hash { return sha3.New256() }
	case DigestSHA3_512:
		return func() hash.Hash { return sha3.New512() }
	}
	return sha256.New
}

// Size is the length of d's output in bytes.
func (d Digest) Size() int {
	switch d {
	case DigestMD5:
		return md5.Size
	case DigestSHA1:
		return sha1.Size
	case DigestSHA384:
		return sha512.Size384
	case DigestSHA512, DigestSHA3_512:
		return sha512.Size
	}
	return sha256.Size
}

// b64Len is the length of d's output in unpadded base64, which is how
// fwknop writes digests and HMACs (MD5 22, SHA-1 27, SHA-256 43, SHA-384
// 64, SHA-512 86).
func (d Digest) b64Len() int { return (d.Size()*8 + 5) / 6 }

// sum appends the unpadded base64 of d's hash of the parts to dst.
func (d Digest) sum(dst []byte, parts ...[]byte) []byte {
	var raw [maxSize]byte
	return appendHash(dst, d.newHash()(), &raw, parts...)
}

// mac appends the unpadded base64 of d's HMAC of the parts to dst.
func (d Digest) mac(dst, key []byte, parts ...[]byte) []byte {
	var raw [maxSize]byte
	return appendHash(dst, hmac.New(d.newHash(), key), &raw, parts...)
}

// maxSize is the longest output of a Digest (SHA-512's).
const maxSize = sha512.Size

// appendHash appends the unpadded base64 of h's sum of the parts to dst,
// starting from h's reset state. The raw sum goes through raw: everything
// passed to a hash.Hash escapes, so a caller that keeps h and raw for many
// packets (Opener) hashes without allocating, where a fresh array would be
// moved to the heap on every call.
func appendHash(dst []byte, h hash.Hash, raw *[maxSize]byte, parts ...[]byte) []byte {
	h.Reset()
	for _, p := range parts {
		h.Write(p)
	}
	return appendB64(dst, h.Sum(raw[:0]))
}

// innerDigests are the digest types fwknopd tells apart by the length of
// the inner digest, with the SHA-3 variant that shares a length tried
// second, as fwknopd's verify_digest does.
func innerDigests(n int) (first, second Digest, ok bool) {
	switch n {
	case 22:
		return DigestMD5, DigestMD5, true
	case 27:
		return DigestSHA1, DigestSHA1, true
	case 43:
		return DigestSHA256, DigestSHA3_256, true
	case 64:
		return DigestSHA384, DigestSHA384, true
	case 86:
		return DigestSHA512, DigestSHA3_512, true
	}
	return 0, 0, false
}

// Mode is the AES mode of a stanza (ENCRYPTION_MODE, fwknop -M). Only CBC
// and its pre-2.5 "legacy" key handling are supported; the zero value is
// CBC, fwknop's default.
type Mode int

const (
	ModeCBC Mode = iota
	// ModeLegacy pads a passphrase shorter than 16 bytes with '0'
	// characters before the key derivation, as fwknop before 2.5 (and its
	// Perl ancestor) did. fwknop refuses it together with an HMAC.
	ModeLegacy
)

// ParseMode reads an encryption mode name as fwknop does
// (case-insensitively); modes other than CBC and legacy are refused.
func ParseMode(name string) (Mode, error) {
	switch strings.ToLower(name) {
	case "cbc":
		return ModeCBC, nil
	case "legacy":
		return ModeLegacy, nil
	}
	return 0, fmt.Errorf("unsupported encryption mode %q (have CBC, legacy)", name)
}

// String is fwknop's name of m.
func (m Mode) String() string {
	if m == ModeLegacy {
		return "legacy"
	}
	return "CBC"
}
