package knockdaemon

import (
	"bytes"
	"crypto/md5"
	"errors"
	"fmt"
	"io"
	"strings"

	"golang.org/x/crypto/blowfish"
)

// Header is what precedes the CBC blocks of a knock (spec §5).
type Header uint8

const (
	// HeaderNone: just the blocks; both sides share a fixed IV
	// (knockdaemon's iv = no).
	HeaderNone Header = iota
	// HeaderRandomIV: the magic "RandomIV" and the 8-byte IV, as
	// Crypt::CBC 2.12 wrote with knockdaemon's iv = yes.
	HeaderRandomIV
	// HeaderSalted: OpenSSL's "Salted__" and an 8-byte salt, from which key
	// and IV are derived; what Crypt::CBC 2.17 (2006) and later write, so
	// what a knockclient on a newer Perl sent.
	HeaderSalted
)

const (
	blockSize = blowfish.BlockSize
	// keySize is Blowfish's largest key, which Crypt::CBC 2.12 asked of
	// Crypt::Blowfish.
	keySize   = 56
	headerLen = 16 // magic + IV or salt
)

var (
	magicRandomIV = []byte("RandomIV")
	magicSalted   = []byte("Salted__")
)

// ParseHeader reads knockdaemon's iv directive and our extension:
// "yes" or "header" (RandomIV header), "no" (none), "salted".
func ParseHeader(s string) (Header, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "yes", "header":
		return HeaderRandomIV, nil
	case "no":
		return HeaderNone, nil
	case "salted":
		return HeaderSalted, nil
	}
	return 0, fmt.Errorf("%q is not yes, header, no or salted", s)
}

func (h Header) String() string {
	switch h {
	case HeaderRandomIV:
		return "yes"
	case HeaderSalted:
		return "salted"
	}
	return "no"
}

// StretchKey is Crypt::CBC 2.12's key derivation for a passphrase: MD5 of
// the passphrase, then MD5 of everything so far appended until there are
// 56 bytes. No salt, no iterations: the passphrase is all the secret.
func StretchKey(pass []byte) [keySize]byte {
	k := make([]byte, 0, 64)
	sum := md5.Sum(pass)
	k = append(k, sum[:]...)
	for len(k) < keySize {
		sum = md5.Sum(k)
		k = append(k, sum[:]...)
	}
	return [keySize]byte(k[:keySize])
}

// SaltedKey is OpenSSL's EVP_BytesToKey with MD5 and one round, as
// Crypt::CBC 2.17+ uses for a "Salted__" header: D_i = MD5(D_{i-1} ‖ pass
// ‖ salt), key = the first 56 bytes, IV = the next 8.
func SaltedKey(pass, salt []byte) (key [keySize]byte, iv [blockSize]byte) {
	var out [keySize + blockSize]byte
	var d []byte
	h := md5.New()
	for n := 0; n < len(out); {
		h.Reset()
		h.Write(d)
		h.Write(pass)
		h.Write(salt)
		d = h.Sum(d[:0])
		n += copy(out[n:], d)
	}
	return [keySize]byte(out[:keySize]), [blockSize]byte(out[keySize:])
}

// Crypt is knockdaemon's encryption: Crypt::CBC 2.12 with Crypt::Blowfish,
// CBC mode, PKCS#5 padding, byte for byte. It is not safe for concurrent
// use (detectors own theirs; a client makes one).
type Crypt struct {
	pass   []byte
	block  *blowfish.Cipher // from StretchKey(pass)
	header Header           // what Seal writes
	iv     [blockSize]byte  // the IV of headerless knocks
	strict bool
	salted bool // Open takes Salted__ (Header is HeaderSalted, or AnySalted)

	// The last salt's key schedule and IV: the readings of one window
	// (Span_Tail auto) share a salt, and a legitimate knock decoded again
	// costs no second derivation.
	lastSalt  [8]byte
	saltBlock *blowfish.Cipher
	saltIV    [blockSize]byte

	// SaltedRefused counts ciphertexts refused, before any derivation,
	// because they carry a Salted__ header this Crypt does not take: a
	// knockclient on a newer Perl, or someone making the daemon work.
	SaltedRefused uint64
}

// CryptOptions are the settings besides the passphrase.
type CryptOptions struct {
	// Header is what Seal writes and, with Strict, all Open accepts.
	Header Header
	// IV is the shared IV of headerless knocks ([chosen] point 1: the
	// prototype's is unknown; 8 zero bytes by default).
	IV [blockSize]byte
	// Strict makes Open accept only Header. Otherwise Open tells the header
	// by its magic: "RandomIV", "Salted__" (see AnySalted), or none.
	Strict bool
	// AnySalted makes Open take a Salted__ header even when Header is not
	// HeaderSalted, as Crypt::CBC's own decrypt does (Header = magic).
	// Each such ciphertext costs a key derivation (a Blowfish key
	// schedule, ~25 µs), and a sender can put the magic at the start of a
	// window every few hits; so without it only a door that sends Salted__
	// (IV = salted) pays that, and other doors refuse the header before
	// deriving anything.
	AnySalted bool
}

// NewCrypt prepares the key schedule for pass.
func NewCrypt(pass []byte, o CryptOptions) (*Crypt, error) {
	if len(pass) == 0 {
		return nil, errors.New("empty key")
	}
	k := StretchKey(pass)
	b, err := blowfish.NewCipher(k[:])
	if err != nil {
		return nil, err
	}
	return &Crypt{pass: bytes.Clone(pass), block: b, header: o.Header, iv: o.IV, strict: o.Strict,
		salted: o.Header == HeaderSalted || o.AnySalted && !o.Strict}, nil
}

// Header is what Seal writes.
func (c *Crypt) Header() Header { return c.header }

// Len is the length of a sealed plaintext of n bytes: PKCS#5 always adds 1
// to 8 bytes, and a header 16.
func (c *Crypt) Len(n int) int {
	l := blockSize * (n/blockSize + 1)
	if c.header != HeaderNone {
		l += headerLen
	}
	return l
}

// Seal appends the encryption of plain to dst. A RandomIV header gets an IV
// and a Salted__ header a salt of 8 bytes read from random (crypto/rand in
// the client; a fixed reader reproduces a vector).
func (c *Crypt) Seal(dst, plain []byte, random io.Reader) ([]byte, error) {
	block, iv := c.block, c.iv
	switch c.header {
	case HeaderRandomIV:
		if _, err := io.ReadFull(random, iv[:]); err != nil {
			return dst, fmt.Errorf("random IV: %w", err)
		}
		dst = append(append(dst, magicRandomIV...), iv[:]...)
	case HeaderSalted:
		var salt [8]byte
		if _, err := io.ReadFull(random, salt[:]); err != nil {
			return dst, fmt.Errorf("random salt: %w", err)
		}
		var key [keySize]byte
		key, iv = SaltedKey(c.pass, salt[:])
		var err error
		if block, err = blowfish.NewCipher(key[:]); err != nil {
			return dst, err
		}
		dst = append(append(dst, magicSalted...), salt[:]...)
	}
	pad := blockSize - len(plain)%blockSize
	start := len(dst)
	dst = append(dst, plain...)
	for range pad {
		dst = append(dst, byte(pad))
	}
	prev := iv[:]
	for off := start; off < len(dst); off += blockSize {
		blk := dst[off : off+blockSize]
		for i := range blk {
			blk[i] ^= prev[i]
		}
		block.Encrypt(blk, blk)
		prev = blk
	}
	return dst, nil
}

func hasMagic(b []byte) bool {
	return len(b) >= headerLen && (bytes.Equal(b[:8], magicRandomIV) || bytes.Equal(b[:8], magicSalted))
}

// Errors of Open; values, so the packet path does not allocate.
var (
	ErrCiphertext = errors.New("ciphertext is not a whole number of blocks")
	ErrHeader     = errors.New("ciphertext lacks the expected header")
	ErrPadding    = errors.New("bad PKCS#5 padding")
	ErrSalted     = errors.New("Salted__ header not accepted (IV = salted or Header = magic takes it)")
)

// Open appends the decryption of ct to dst. The header is told by its magic
// unless the Crypt is strict; padding is checked strictly (1 to 8 bytes,
// all equal), so a wrong key or IV fails here 255 times in 256.
//
// Only a Salted__ header allocates (a key schedule per new salt), and only
// on a Crypt that takes it (IV = salted, or AnySalted); any other refuses
// it before deriving anything (ErrSalted).
func (c *Crypt) Open(dst, ct []byte) ([]byte, error) {
	block, iv := c.block, c.iv
	hdr := HeaderNone
	switch {
	case len(ct) >= headerLen && bytes.Equal(ct[:8], magicRandomIV):
		hdr = HeaderRandomIV
	case len(ct) >= headerLen && bytes.Equal(ct[:8], magicSalted):
		hdr = HeaderSalted
	}
	if c.strict && hdr != c.header {
		return dst, ErrHeader
	}
	switch hdr {
	case HeaderRandomIV:
		iv = [blockSize]byte(ct[8:16])
		ct = ct[headerLen:]
	case HeaderSalted:
		if !c.salted {
			c.SaltedRefused++
			return dst, ErrSalted
		}
		if salt := [8]byte(ct[8:16]); c.saltBlock == nil || salt != c.lastSalt {
			key, siv := SaltedKey(c.pass, salt[:])
			b, err := blowfish.NewCipher(key[:])
			if err != nil {
				return dst, err
			}
			c.lastSalt, c.saltBlock, c.saltIV = salt, b, siv
		}
		block, iv = c.saltBlock, c.saltIV
		ct = ct[headerLen:]
	}
	if len(ct) == 0 || len(ct)%blockSize != 0 {
		return dst, ErrCiphertext
	}
	start := len(dst)
	dst = append(dst, ct...)
	prev := iv
	for off := start; off < len(dst); off += blockSize {
		blk := dst[off : off+blockSize]
		next := [blockSize]byte(blk)
		block.Decrypt(blk, blk)
		for i := range blk {
			blk[i] ^= prev[i]
		}
		prev = next
	}
	pad := int(dst[len(dst)-1])
	if pad < 1 || pad > blockSize {
		return dst[:start], ErrPadding
	}
	for _, b := range dst[len(dst)-pad:] {
		if int(b) != pad {
			return dst[:start], ErrPadding
		}
	}
	return dst[:len(dst)-pad], nil
}
