package doorman

import (
	"bytes"
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
)

// Limits of the original doormand (constants.h and doormand.c's main loop).
const (
	DefaultPort = 1001 // UDP knock port of knock 0.81 and doormand
	MaxService  = 5    // strlen(service) ≤ 5
	MaxGroup    = 32   // MAX_GROUPNAME_LENGTH
	MaxTag      = 10   // strlen(tag) ≤ 10
	HashLen     = 32   // MD5_HEXLENGTH: exactly 32 hex digits
	MaxSecret   = 64   // MAX_SECRET_LENGTH
	// MaxOriginalPayload is the longest UDP payload an original doormand
	// accepts: it drops IP packets longer than 91 bytes without a word. A
	// client must stay within it to be understood by one.
	MaxOriginalPayload = 63
)

// Errors of Parse. Both are expected on the packet path, so they are
// values, not allocations.
var (
	// ErrTokens: fewer than four space-separated fields. doormand drops
	// such packets silently (with exactly three it dereferences NULL and
	// crashes); so do we, without the crash.
	ErrTokens = errors.New("doorman knock: fewer than 4 fields")
	// ErrLengths: a field is too long, or the hash is not 32 characters.
	// doormand logs "Bad packet from <ip>" for these.
	ErrLengths = errors.New("doorman knock: field lengths")
)

// Knock is a parsed knock payload. Its fields alias the parsed buffer and
// are exactly the tokens on the wire (not validated beyond their lengths).
type Knock struct {
	Service []byte // the requested port as sent; atoi gives the number
	Group   []byte // the guest (group) name
	Tag     []byte // the client's random tag, used verbatim in the key
	Hash    []byte // 32 hex digits, either case
}

// Parse splits a UDP payload as doormand does: the payload ends at its
// first NUL byte; one trailing '\n' is dropped; fields are separated by
// runs of spaces (only the space character: a tab is part of a field);
// fields after the fourth are ignored. It then applies doormand's length
// checks. It never allocates.
func Parse(payload []byte) (Knock, error) {
	if i := bytes.IndexByte(payload, 0); i >= 0 {
		payload = payload[:i]
	}
	if n := len(payload); n > 0 && payload[n-1] == '\n' {
		payload = payload[:n-1]
	}
	var f [4][]byte
	for i := range f {
		var ok bool
		f[i], payload, ok = token(payload)
		if !ok {
			return Knock{}, ErrTokens
		}
	}
	k := Knock{Service: f[0], Group: f[1], Tag: f[2], Hash: f[3]}
	if len(k.Service) > MaxService || len(k.Group) > MaxGroup || len(k.Tag) > MaxTag || len(k.Hash) != HashLen {
		return k, ErrLengths
	}
	return k, nil
}

// token is doormand's token(&p, " "): skip spaces, take up to the next
// space, and step over that one space.
func token(b []byte) (tok, rest []byte, ok bool) {
	i := 0
	for i < len(b) && b[i] == ' ' {
		i++
	}
	if i == len(b) {
		return nil, nil, false
	}
	j := i
	for j < len(b) && b[j] != ' ' {
		j++
	}
	if j < len(b) {
		return b[i:j], b[j+1:], true
	}
	return b[i:j], nil, true
}

// Atoi is C's atoi on a short field: optional leading white space (C
// isspace), an optional sign, then decimal digits up to the first
// non-digit; 0 when there are none. doormand compares the requested port
// and builds the HMAC key with it, so "022" and "22x" both mean 22.
// Fields are at most 5 bytes, so it cannot overflow.
func Atoi(b []byte) int {
	i := 0
	for i < len(b) && (b[i] == ' ' || (b[i] >= '\t' && b[i] <= '\r')) {
		i++
	}
	neg := false
	if i < len(b) && (b[i] == '+' || b[i] == '-') {
		neg = b[i] == '-'
		i++
	}
	n := 0
	for ; i < len(b) && b[i] >= '0' && b[i] <= '9' && n < 1<<40; i++ {
		n = n*10 + int(b[i]-'0')
	}
	if neg {
		return -n
	}
	return n
}

// AppendKey appends the HMAC key "<port> <group> <tag>" to dst, as
// doormand's sprintf("%d %s %s") and knock's sprintf("%d %s %10.10u") make
// it: port in decimal, group and tag verbatim.
func AppendKey(dst []byte, port int, group, tag []byte) []byte {
	dst = strconv.AppendInt(dst, int64(port), 10)
	dst = append(dst, ' ')
	dst = append(dst, group...)
	dst = append(dst, ' ')
	return append(dst, tag...)
}

// Sum is HMAC-MD5 with key as the HMAC key and secret as the message:
// doorman's hmac_md5(secret, len, K, len, digest) with the RFC 2104 sample
// code's argument order (text first, key second). Keys longer than the
// 64-byte block are hashed first, as RFC 2104 says; doorman's keys never
// are (49 bytes at most).
//
// It does not allocate for secrets up to 192 bytes (guestlist secrets are
// at most 64), so the detector can verify a knock per packet.
func Sum(key, secret []byte) [md5.Size]byte {
	const block = 64
	var k [block]byte
	if len(key) > block {
		s := md5.Sum(key)
		copy(k[:], s[:])
	} else {
		copy(k[:], key)
	}
	if len(secret) > 192 {
		m := hmac.New(md5.New, append([]byte(nil), k[:]...))
		m.Write(secret)
		var out [md5.Size]byte
		copy(out[:], m.Sum(nil))
		return out
	}
	var buf [block + 192]byte
	for i := range block {
		buf[i] = k[i] ^ 0x36
	}
	n := block + copy(buf[block:], secret)
	inner := md5.Sum(buf[:n])
	for i := range block {
		buf[i] = k[i] ^ 0x5c
	}
	copy(buf[block:], inner[:])
	return md5.Sum(buf[:block+md5.Size])
}

// hexval decodes one hex digit the way doormand's hex2byte table does:
// either case, and anything that is not a hex digit counts as 0.
func hexval(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10
	}
	return 0
}

// DecodeHash turns the 32-character hash field into the 16 bytes doormand
// compares, with hex2byte's leniency (see hexval). That leniency costs no
// security: the comparison is still on all 16 digest bytes, and the replay
// archive stores the digest, not the text.
func DecodeHash(h []byte) (d [md5.Size]byte) {
	for i := range d {
		if 2*i+1 < len(h) {
			d[i] = hexval(h[2*i])<<4 | hexval(h[2*i+1])
		}
	}
	return d
}

// Verify recomputes the knock's digest with secret, using the port as atoi
// reads it from the Service field and the Tag verbatim, and compares it
// with the offered hash in constant time. It returns the digest for the
// replay archive. It does not allocate.
func (k Knock) Verify(secret []byte) (digest [md5.Size]byte, ok bool) {
	var kb [64]byte
	key := AppendKey(kb[:0], Atoi(k.Service), k.Group, k.Tag)
	digest = Sum(key, secret)
	offered := DecodeHash(k.Hash)
	return digest, hmac.Equal(digest[:], offered[:])
}

// Format builds the payload the knock client sends: "%d %s %010d %x", no
// newline, no NUL. group must not contain spaces.
func Format(port uint16, group string, tag uint32, secret []byte) []byte {
	key := AppendKey(nil, int(port), []byte(group), fmt.Appendf(nil, "%010d", tag))
	sum := Sum(key, secret)
	out := append(key, ' ')
	return hex.AppendEncode(out, sum[:])
}

// NewTag returns a random tag. The original uses srand(time)+rand(), which
// anyone can predict; a tag only has to be unlikely to repeat (a repeat with
// the same port, group and secret is rejected as a replay), so any 32-bit
// value from crypto/rand does, printed with %010d.
func NewTag() (uint32, error) {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		return 0, fmt.Errorf("doorman tag: %w", err)
	}
	return binary.LittleEndian.Uint32(b[:]), nil
}
