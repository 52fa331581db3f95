package fwknop

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"hash"
	"io"
	"strconv"
	"strings"
)

// Packet size bounds of fwknopd (fwknopd_common.h): it ignores a UDP
// payload shorter than MIN_SPA_DATA_SIZE or longer than MAX_SPA_PACKET_LEN.
const (
	// DefaultPort is the UDP port fwknop sends to and fwknopd's
	// PCAP_FILTER listens on by default.
	DefaultPort = 62201
	MinPacket   = 140
	MaxPacket   = 1500
	// minGPG is fwknop's MIN_GNUPG_MSG_SIZE: a packet at least this long
	// (HMAC off, prefix back on) is taken as GnuPG's, shorter as Rijndael's.
	minGPG = 400
	// MaxHMACKey is the longest HMAC key fwknop takes from a config
	// (MAX_KEY_LEN).
	MaxHMACKey = 128
)

// Keys is what a receiver or sender needs of a stanza: the Rijndael key
// (KEY, or KEY_BASE64 decoded), the HMAC key (HMAC_KEY, HMAC_KEY_BASE64)
// and the algorithms.
type Keys struct {
	Key     []byte // 1..32 bytes, used as a passphrase as fwknop does
	HMACKey []byte // nil: no HMAC (fwknopd then decrypts unauthenticated packets)
	HMAC    Digest // HMAC_DIGEST_TYPE; zero is SHA-256
	Mode    Mode   // ENCRYPTION_MODE; zero is CBC
}

// reason is an error of the packet path: a comparable constant, so
// returning one allocates nothing and callers match it with errors.Is.
type reason struct {
	msg    string
	parent *reason
}

func (r *reason) Error() string { return r.msg }

// Is makes a specific reason match its general one (ErrLength is an
// ErrMalformed).
func (r *reason) Is(target error) bool {
	for p := r.parent; p != nil; p = p.parent {
		if target == error(p) {
			return true
		}
	}
	return false
}

// Reasons a packet is refused. Precheck returns the first group, Open any.
var (
	ErrMalformed = &reason{msg: "fwknop: malformed packet"}
	ErrLength    = &reason{msg: "fwknop: packet length out of bounds", parent: ErrMalformed}
	ErrBase64    = &reason{msg: "fwknop: packet is not base64", parent: ErrMalformed}
	// ErrPrefixed: the packet still starts with a prefix fwknop strips,
	// the sign of a captured packet replayed with the prefix put back.
	ErrPrefixed = &reason{msg: "fwknop: packet carries the stripped prefix"}
	ErrHMAC     = &reason{msg: "fwknop: HMAC mismatch"}
	// ErrDecrypt: the packet does not decrypt into an SPA message, which
	// is what a wrong key looks like (or a GnuPG packet, unsupported).
	ErrDecrypt = &reason{msg: "fwknop: decryption failed"}
	ErrDigest  = &reason{msg: "fwknop: inner digest mismatch"}
	// ErrFields: the decrypted message's fields are not what libfko
	// accepts (an authentic sender that is not an fwknop client).
	ErrFields = &reason{msg: "fwknop: invalid SPA fields", parent: ErrMalformed}
)

// Precheck does fwknopd's cheap checks of a UDP payload before any key is
// tried: MinPacket..MaxPacket bytes, no leading "U2FsdGVkX1" (nor "hQ" in
// a packet long enough to be GnuPG's), only base64 characters. It hashes
// nothing and allocates nothing; a payload that fails costs one pass over
// at most its bytes.
func Precheck(pkt []byte) error {
	if len(pkt) < MinPacket || len(pkt) > MaxPacket {
		return ErrLength
	}
	if string(pkt[:len(prefixRijndael)]) == prefixRijndael ||
		len(pkt) > minGPG && string(pkt[:len(prefixGPG)]) == prefixGPG {
		return ErrPrefixed
	}
	for _, c := range pkt {
		if !isPacketByte[c] {
			return ErrBase64
		}
	}
	return nil
}

// Open checks and decrypts one SPA packet with a stanza's keys: Precheck,
// then the HMAC (when k has an HMAC key) in constant time over the packet
// with the prefix restored, and only then the decryption, libfko's
// plaintext checks and the inner digest. The error is one of the reasons
// above (errors.Is), possibly wrapped with a detail. It keys a new HMAC
// for the call (a payload Precheck refuses costs no allocation); a
// receiver that checks many packets against the same keys keeps an Opener
// instead.
func Open(pkt []byte, k *Keys) (Message, error) {
	if err := Precheck(pkt); err != nil {
		return Message{}, err
	}
	return NewOpener(k).Open(pkt)
}

// Opener is Open for one stanza's keys, kept from packet to packet: the
// HMAC keyed once and only reset per packet, its output in buffers of its
// own, so that a packet refused by its HMAC, which is what random base64
// on the SPA port is, costs one hash and allocates nothing. Not safe for
// concurrent use: a receiver keeps one per stanza on the goroutine that
// reads the packets.
type Opener struct {
	keys   Keys
	hmac   hash.Hash // keyed with keys.HMACKey; nil without one
	prefix [len(prefixRijndael)]byte
	raw    [maxSize]byte
	want   [88]byte // the longest HMAC in base64 (SHA-512: 86)
}

// NewOpener prepares the checks of k's packets. Keys fwknop does not take
// (too long, an unknown HMAC type) are refused by every Open.
func NewOpener(k *Keys) *Opener {
	o := &Opener{keys: *k}
	copy(o.prefix[:], prefixRijndael)
	if k.HMACKey != nil && k.HMAC.valid() {
		o.hmac = hmac.New(k.HMAC.newHash(), k.HMACKey)
	}
	return o
}

// Open is the package's Open with o's keys.
func (o *Opener) Open(pkt []byte) (Message, error) {
	if err := Precheck(pkt); err != nil {
		return Message{}, err
	}
	k := &o.keys
	if len(k.Key) > MaxKey || len(k.HMACKey) > MaxHMACKey || !k.HMAC.valid() {
		return Message{}, fmt.Errorf("fwknop: key too long or unknown HMAC type")
	}
	body := pkt
	if k.HMACKey != nil {
		n := len(pkt) - k.HMAC.b64Len()
		if n < minPlain {
			return Message{}, ErrLength
		}
		body = pkt[:n]
		want := appendHash(o.want[:0], o.hmac, &o.raw, o.prefix[:], body)
		if subtle.ConstantTimeCompare(want, pkt[n:]) != 1 {
			return Message{}, ErrHMAC
		}
	}
	if len(prefixRijndael)+len(body) >= minGPG {
		return Message{}, ErrDecrypt
	}
	var text, ct [minGPG]byte
	data, ok := appendB64Decode(ct[:0], append(append(text[:0], prefixRijndael...), body...))
	if !ok {
		return Message{}, ErrBase64
	}
	pt, ok := decrypt(data, k.Key, k.Mode)
	if !ok || len(pt) < minPlain || len(pt) >= maxPlain || !startsWithRandom(pt) {
		return Message{}, ErrDecrypt
	}
	return decodePlain(string(pt))
}

// startsWithRandom is libfko's test of a good decryption: 16 digits and a
// colon.
func startsWithRandom(pt []byte) bool {
	if len(pt) <= randLen || pt[randLen] != ':' {
		return false
	}
	for _, c := range pt[:randLen] {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// decodePlain is libfko's fko_decode_spa_data over a decrypted message.
// A byte outside printable ASCII counts as a failed decryption: it is what
// a packet decrypted with a key other than its own (or with its HMAC taken
// for ciphertext) leaves after the first blocks.
func decodePlain(pt string) (Message, error) {
	for i := range len(pt) {
		if pt[i] < 0x20 || pt[i] > 0x7e {
			return Message{}, ErrDecrypt
		}
	}
	if n := strings.Count(pt, ":"); n < minFields || n > maxFields {
		return Message{}, ErrFields
	}
	cut := strings.LastIndexByte(pt, ':')
	encoded, digest := pt[:cut], pt[cut+1:]
	first, second, ok := innerDigests(len(digest))
	if !ok {
		return Message{}, ErrFields
	}
	var buf [88]byte
	d := first
	if subtle.ConstantTimeCompare(first.sum(buf[:0], []byte(encoded)), []byte(digest)) != 1 {
		d = second
		if second == first || subtle.ConstantTimeCompare(second.sum(buf[:0], []byte(encoded)), []byte(digest)) != 1 {
			return Message{}, ErrDigest
		}
	}
	m, err := decodeFields(encoded)
	if err != nil {
		return Message{}, fmt.Errorf("%w: %v", ErrFields, err)
	}
	m.Digest = d
	return m, nil
}

// decodeFields reads the fields before the digest in libfko's order and
// with its limits.
func decodeFields(s string) (Message, error) {
	var m Message
	next := func() string { // strcspn(":") and step over the colon
		f, rest, _ := strings.Cut(s, ":")
		s = rest
		return f
	}
	m.Random = next()[:randLen] // length and digits checked after decryption, as libfko does
	f := next()
	if f == "" || len(f) > maxUser {
		return m, fmt.Errorf("user name field")
	}
	u, err := decodeField(f)
	if err != nil || !validUser(u) {
		return m, fmt.Errorf("user name")
	}
	m.User = u
	t, ok := parseDigits(next(), maxTimestamp)
	if !ok {
		return m, fmt.Errorf("timestamp")
	}
	m.Time = t
	if m.Version = next(); m.Version == "" || len(m.Version) > maxVersion {
		return m, fmt.Errorf("version")
	}
	ty, ok := parseDigits(next(), maxMsgType)
	if !ok || ty > int64(MsgClientTimeoutLocalNATAccess) {
		return m, fmt.Errorf("message type")
	}
	m.Type = MsgType(ty)
	if strings.Count(s, ":")+1 > m.Type.maxAfterType() {
		return m, fmt.Errorf("number of fields for message type %d", m.Type)
	}
	if f = next(); f == "" || len(f) > maxField {
		return m, fmt.Errorf("message field")
	}
	if m.Access, err = decodeField(f); err != nil {
		return m, fmt.Errorf("message")
	}
	if err := validateMessage(m.Type, m.Access); err != nil {
		return m, err
	}
	if m.Type.hasNAT() {
		if f = next(); f == "" || len(f) > maxField {
			return m, fmt.Errorf("NAT access field")
		}
		if m.NATAccess, err = decodeField(f); err != nil {
			return m, fmt.Errorf("NAT access")
		}
		if err := validateNAT(m.NATAccess); err != nil {
			return m, err
		}
	}
	// What is left is "[auth]" or, for the timeout types, "[auth:]timeout".
	if m.Type.hasTimeout() && strings.Contains(s, ":") || !m.Type.hasTimeout() && s != "" {
		if f = next(); len(f) > maxField {
			return m, fmt.Errorf("server auth field")
		}
		if m.ServerAuth, err = decodeField(f); err != nil {
			return m, fmt.Errorf("server auth")
		}
	}
	if m.Type.hasTimeout() {
		n, ok := parseDigits(s, 3*maxField) // libfko: digits only, then strtol up to 2<<15
		if !ok || n > maxClientTimer {
			return m, fmt.Errorf("client timeout")
		}
		m.ClientTimeout = uint32(n)
	}
	return m, nil
}

// Seal builds the packet fwknop would send for m: the fields encoded, the
// inner digest of type m.Digest appended, encrypted with k.Key and a salt
// drawn from rand, base64 without padding, the HMAC appended when k has an
// HMAC key, and the "U2FsdGVkX1" prefix left off.
func Seal(m *Message, k *Keys, rand io.Reader) ([]byte, error) {
	if len(k.Key) < 1 || len(k.Key) > MaxKey {
		return nil, fmt.Errorf("fwknop: the Rijndael key must be 1 to %d bytes", MaxKey)
	}
	if len(k.HMACKey) > MaxHMACKey || !k.HMAC.valid() || !m.Digest.valid() {
		return nil, fmt.Errorf("fwknop: HMAC key longer than %d bytes or unknown digest", MaxHMACKey)
	}
	if k.HMACKey != nil && k.Mode == ModeLegacy {
		return nil, fmt.Errorf("fwknop: legacy encryption mode cannot be used with an HMAC")
	}
	plain, err := encodePlain(m, rand)
	if err != nil {
		return nil, err
	}
	var salt [saltLen]byte
	if _, err := io.ReadFull(rand, salt[:]); err != nil {
		return nil, fmt.Errorf("fwknop: salt: %w", err)
	}
	enc := appendB64(nil, encrypt(plain, k.Key, salt[:], k.Mode))
	if len(enc) >= minGPG {
		return nil, fmt.Errorf("fwknop: message too long (%d bytes encrypted, fwknopd takes less than %d)", len(enc), minGPG)
	}
	if k.HMACKey != nil {
		enc = k.HMAC.mac(enc, k.HMACKey, enc)
	}
	pkt := enc[len(prefixRijndael):]
	if len(pkt) < MinPacket {
		return nil, fmt.Errorf("fwknop: packet of %d bytes is shorter than fwknopd's minimum %d", len(pkt), MinPacket)
	}
	return pkt, nil
}

// encodePlain is libfko's fko_encode_spa_data plus the digest: the
// plaintext that gets encrypted.
func encodePlain(m *Message, rand io.Reader) ([]byte, error) {
	random := m.Random
	if random == "" {
		var b [randLen]byte
		if _, err := io.ReadFull(rand, b[:]); err != nil {
			return nil, fmt.Errorf("fwknop: random value: %w", err)
		}
		for i := range b {
			b[i] = '0' + b[i]%10
		}
		random = string(b[:])
	}
	if n, ok := parseDigits(random, randLen); !ok || len(random) != randLen || n < 0 {
		return nil, fmt.Errorf("fwknop: random value %q is not %d digits", random, randLen)
	}
	if !validUser(m.User) || b64Len(len(m.User)) > maxUser {
		return nil, fmt.Errorf("fwknop: user name %q: printable ASCII without \"/\\[]:;|=,+*?<>, at most 48 bytes", m.User)
	}
	version := m.Version
	if version == "" {
		version = Version
	}
	if len(version) > maxVersion || strings.Contains(version, ":") {
		return nil, fmt.Errorf("fwknop: version %q", version)
	}
	t := m.Type.withTimeout(m.ClientTimeout > 0)
	if t < MsgCommand || t > MsgClientTimeoutLocalNATAccess {
		return nil, fmt.Errorf("fwknop: message type %d", m.Type)
	}
	if err := validateMessage(t, m.Access); err != nil {
		return nil, fmt.Errorf("fwknop: %w", err)
	}
	if t.hasNAT() {
		if err := validateNAT(m.NATAccess); err != nil {
			return nil, fmt.Errorf("fwknop: %w", err)
		}
	}
	if t == MsgCommand && m.ClientTimeout != 0 {
		return nil, fmt.Errorf("fwknop: a command message carries no client timeout")
	}
	if !t.hasNAT() && m.NATAccess != "" {
		return nil, fmt.Errorf("fwknop: NAT access in a message of type %d", t)
	}
	if m.Time < 0 || len(strconv.FormatInt(m.Time, 10)) > maxTimestamp {
		return nil, fmt.Errorf("fwknop: timestamp %d", m.Time)
	}
	for _, f := range []string{m.Access, m.NATAccess, m.ServerAuth} {
		if b64Len(len(f)) > maxField || strings.IndexByte(f, 0) >= 0 {
			return nil, fmt.Errorf("fwknop: field %q: too long or holds a NUL", f)
		}
	}
	if m.ClientTimeout > maxClientTimer {
		return nil, fmt.Errorf("fwknop: client timeout %d is over %d", m.ClientTimeout, maxClientTimer)
	}
	b := make([]byte, 0, 512)
	b = append(b, random...)
	b = append(b, ':')
	b = appendB64(b, []byte(m.User))
	b = append(b, ':')
	b = strconv.AppendInt(b, m.Time, 10)
	b = append(b, ':')
	b = append(b, version...)
	b = append(b, ':')
	b = strconv.AppendInt(b, int64(t), 10)
	b = append(b, ':')
	b = appendB64(b, []byte(m.Access))
	if m.NATAccess != "" {
		b = appendB64(append(b, ':'), []byte(m.NATAccess))
	}
	if m.ServerAuth != "" {
		b = appendB64(append(b, ':'), []byte(m.ServerAuth))
	}
	if t.hasTimeout() {
		b = append(b, ':')
		b = strconv.AppendUint(b, uint64(m.ClientTimeout), 10)
	}
	if len(b) < minPlain || len(b) >= maxPlain {
		return nil, fmt.Errorf("fwknop: message of %d bytes", len(b))
	}
	b = append(b, ':')
	b = m.Digest.sum(b, b[:len(b)-1])
	return b, nil
}

// ReplayDigest is the key fwknopd's replay cache (digest.cache) stores
// for a packet: the unpadded base64 SHA-256 of the packet as received, so
// an existing cache can be imported and keeps refusing what it refused.
func ReplayDigest(pkt []byte) string {
	sum := sha256.Sum256(pkt)
	return string(appendB64(nil, sum[:]))
}

// b64Len is the length of n bytes in unpadded base64.
func b64Len(n int) int { return (n*8 + 5) / 6 }
