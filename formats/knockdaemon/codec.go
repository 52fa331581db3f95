package knockdaemon

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
)

// Codec turns records into span ports and back with one door's (or one
// client's) settings. Decode reuses internal buffers: a Codec is owned by
// one goroutine.
type Codec struct {
	Span Span
	// Layouts are the record layouts accepted; the first is the one Encode
	// uses. With PORT width "auto" they are the 2-byte and 1-byte layouts:
	// PKCS#5 gives the exact plaintext length, which tells them apart.
	Layouts []Layout
	// Crypt is nil for unencrypted knocks (encrypt = no): the record's
	// bytes are spelled directly.
	Crypt *Crypt
	Tail  Tail
	Sums  Sums

	// mac, when set, is the authenticated mode (mac.go): every knock ends
	// with a tag, checked before anything is decrypted.
	mac *mac

	wire, plain []byte
	last        []byte // the wire bytes (tag excluded) of the last knock decoded
	idx         []uint16
}

// Authenticated reports whether knocks carry a MAC tag.
func (c *Codec) Authenticated() bool { return c.mac != nil }

// KnockLen is the length in bytes spelled on the span for a knock with
// layout l: the wire bytes, and the MAC tag in the authenticated mode.
func (c *Codec) KnockLen(l Layout) int {
	n := c.WireLen(l)
	if c.mac != nil {
		n += MacTagLen(n, c.Span.Bits())
	}
	return n
}

// Knock appends the bytes a knock carrying r spells: Seal's, then the
// MAC tag in the authenticated mode.
func (c *Codec) Knock(dst []byte, r *Record, random io.Reader) ([]byte, error) {
	start := len(dst)
	dst, err := c.Seal(dst, r, random)
	if err != nil || c.mac == nil {
		return dst, err
	}
	wire := dst[start:]
	t := c.mac.tag(wire)[:MacTagLen(len(wire), c.Span.Bits())]
	return append(dst, t...), nil
}

// WireLen is the length in bytes of a knock with layout l: the ciphertext
// (with its header), or the record itself when not encrypted.
func (c *Codec) WireLen(l Layout) int {
	if c.Crypt == nil {
		return l.Size()
	}
	return c.Crypt.Len(l.Size())
}

// Lengths are the distinct knock lengths, in hits, of the layouts, longest
// first. A detector keeps that many hits per sender.
func (c *Codec) Lengths() []int {
	var out []int
	for _, l := range c.Layouts {
		if n := c.Span.Hits(c.KnockLen(l)); !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	slices.Reverse(out)
	return out
}

// Seal lays r out with the first layout and encrypts it: the wire bytes.
func (c *Codec) Seal(dst []byte, r *Record, random io.Reader) ([]byte, error) {
	if len(c.Layouts) == 0 {
		return dst, errors.New("no knock layout")
	}
	plain, err := c.Layouts[0].Append(nil, r, c.Sums)
	if err != nil {
		return dst, err
	}
	if c.Crypt == nil {
		return append(dst, plain...), nil
	}
	return c.Crypt.Seal(dst, plain, random)
}

// Encode appends to dst the ports of a knock carrying r.
func (c *Codec) Encode(dst []uint16, r *Record, random io.Reader) ([]uint16, error) {
	wire, err := c.Knock(nil, r, random)
	if err != nil {
		return dst, err
	}
	tail := c.Tail
	if tail == TailAuto {
		tail = TailPad
	}
	return c.Span.Encode(dst, wire, tail), nil
}

// Decode reads ports as one whole knock into r and returns the layout it
// matched. It tries each layout whose knock has len(ports) hits, each tail
// reading the Codec allows, and each checksum modulus; only a record whose
// span bits, padding and checksum all check out is accepted. Steady state
// it does not allocate (a Salted__ header does, see Crypt.Open).
func (c *Codec) Decode(ports []uint16, r *Record) (Layout, bool) {
	c.idx = c.idx[:0]
	for _, p := range ports {
		i, ok := c.Span.Index(p)
		if !ok {
			return Layout{}, false
		}
		c.idx = append(c.idx, uint16(i))
	}
	return c.DecodeIndexes(c.idx, r)
}

// DecodeIndexes is Decode for hits given as span indexes.
func (c *Codec) DecodeIndexes(idx []uint16, r *Record) (Layout, bool) {
	tails := [2]Tail{TailPad, TailRaw}
	nt := 2
	switch c.Tail {
	case TailPad:
		nt = 1
	case TailRaw:
		tails[0], nt = TailRaw, 1
	}
	for li, l := range c.Layouts {
		n, wn := c.KnockLen(l), c.WireLen(l)
		if c.Span.Hits(n) != len(idx) || c.seenKnock(li, n) {
			continue
		}
		for _, tail := range tails[:nt] {
			var ok bool
			c.wire, ok = c.Span.DecodeIndexes(c.wire[:0], idx, n, tail)
			if !ok {
				continue
			}
			wire := c.wire[:wn]
			if c.mac != nil && !c.mac.verify(wire, c.wire[wn:]) {
				// Not made with the MAC key: refused before anything is
				// decrypted or parsed.
				continue
			}
			plain := wire
			if c.Crypt != nil && c.Crypt.header != HeaderNone && !hasMagic(wire) {
				// The length counted a header: without one this is noise,
				// refused before any decryption.
				continue
			}
			if c.Crypt != nil {
				var err error
				if c.plain, err = c.Crypt.Open(c.plain[:0], wire); err != nil {
					continue
				}
				plain = c.plain
			}
			// Every layout of this knock length may fit the plaintext.
			for _, l2 := range c.Layouts {
				if c.KnockLen(l2) == n && c.WireLen(l2) == wn && l2.Parse(plain, r, c.Sums) == nil {
					c.last = wire
					return l2, true
				}
			}
		}
	}
	return Layout{}, false
}

// seenKnock reports whether a layout before li had knock length n, so it
// was decoded already.
func (c *Codec) seenKnock(li, n int) bool {
	for _, l := range c.Layouts[:li] {
		if c.KnockLen(l) == n {
			return true
		}
	}
	return false
}

// Settings are the protocol settings a port-span door and knockclient
// share, as written in a config (empty: the default). Keys are our INI
// names; knockdaemon.conf and knockclient.conf use the lowercase ones.
type Settings struct {
	Portspan    string // required
	Knock       string // required: the field list
	Encrypt     string // yes (default) | no
	Cipher      string // blowfish (default)
	Key         string // required when encrypting
	IV          string // yes|header (default) | no | salted
	IVHex       string // IV_Hex: 16 hex digits, with IV = no; default zeros
	Header      string // auto (default) | magic | strict
	PortWidth   string // auto (default) | 1 | 2
	TimeWidth   string // 1 (default) | 4
	ChecksumMod string // 256 (default) | 255 | 256,255
	SpanTail    string // auto (default) | pad | raw
	// MacKey turns on the authenticated mode (mac.go): a secret apart
	// from Key; "" for knockdaemon's unauthenticated knocks.
	MacKey string
}

// SettingError is a problem with one setting, named by its INI key, so the
// caller can point at the line that set it.
type SettingError struct {
	Key string
	Err error
}

func (e *SettingError) Error() string { return e.Key + ": " + e.Err.Error() }
func (e *SettingError) Unwrap() error { return e.Err }

// Codec validates s and builds its Codec. Every problem is reported, each
// as a *SettingError (joined).
func (s Settings) Codec() (*Codec, error) {
	var errs []error
	bad := func(key string, err error) { errs = append(errs, &SettingError{key, err}) }
	c := &Codec{Sums: DefaultSums}

	var err error
	if s.Portspan == "" {
		bad("Portspan", errors.New("missing (the span of ports knocks are spelled on)"))
	} else if c.Span, err = ParseSpan(s.Portspan); err != nil {
		bad("Portspan", err)
	}

	widths := []int{2, 1}
	switch w := strings.ToLower(strings.TrimSpace(s.PortWidth)); w {
	case "", "auto":
	case "1", "2":
		widths = []int{int(w[0] - '0')}
	default:
		bad("Port_Width", fmt.Errorf("%q is not auto, 1 or 2", s.PortWidth))
	}
	timeWidth := 1
	switch w := strings.TrimSpace(s.TimeWidth); w {
	case "", "1":
	case "4":
		timeWidth = 4
	default:
		bad("Time_Width", fmt.Errorf("%q is not 1 or 4", s.TimeWidth))
	}
	if s.Knock == "" {
		bad("Knock", errors.New("missing (the record's field list, e.g. IP,PORT,FLAG0,CHECKSUM)"))
	} else {
		for _, w := range widths {
			l, err := ParseLayout(s.Knock, w, timeWidth)
			if err != nil {
				bad("Knock", err)
				break
			}
			c.Layouts = append(c.Layouts, l)
			if !l.Has(FieldPort) {
				break // one layout is enough
			}
		}
	}
	if s.ChecksumMod != "" {
		if c.Sums, err = ParseSums(s.ChecksumMod); err != nil {
			bad("Checksum_Mod", err)
		}
	}
	if s.SpanTail != "" {
		if c.Tail, err = ParseTail(s.SpanTail); err != nil {
			bad("Span_Tail", err)
		}
	}

	encrypt := true
	switch strings.ToLower(strings.TrimSpace(s.Encrypt)) {
	case "", "yes":
	case "no":
		encrypt = false
	default:
		bad("Encrypt", fmt.Errorf("%q is not yes or no", s.Encrypt))
	}
	var o CryptOptions
	o.Header = HeaderRandomIV
	if s.IV != "" {
		if o.Header, err = ParseHeader(s.IV); err != nil {
			bad("IV", err)
		}
	}
	if s.IVHex != "" {
		b, err := hex.DecodeString(strings.TrimSpace(s.IVHex))
		switch {
		case err != nil || len(b) != blockSize:
			bad("IV_Hex", fmt.Errorf("%q is not 16 hex digits", s.IVHex))
		case o.Header != HeaderNone:
			bad("IV_Hex", errors.New("only applies with IV = no (a header carries the IV)"))
		default:
			o.IV = [blockSize]byte(b)
		}
	}
	switch strings.ToLower(strings.TrimSpace(s.Header)) {
	case "", "auto":
	case "magic":
		o.AnySalted = true
	case "strict":
		o.Strict = true
	default:
		bad("Header", fmt.Errorf("%q is not auto, magic or strict", s.Header))
	}
	switch strings.ToLower(strings.TrimSpace(s.Cipher)) {
	case "", "blowfish", "crypt::blowfish":
	default:
		bad("Cipher", fmt.Errorf("cipher %q is not supported (supported: blowfish)", s.Cipher))
	}
	if encrypt {
		if s.Key == "" {
			bad("Key", errors.New("missing (the passphrase; or set Encrypt = no)"))
		} else if c.Crypt, err = NewCrypt([]byte(s.Key), o); err != nil {
			bad("Key", err)
		}
	}
	if s.MacKey != "" {
		if s.MacKey == s.Key {
			bad("Mac_Key", errors.New("must not be the same secret as Key"))
		}
		c.mac = newMAC([]byte(s.MacKey))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return c, nil
}

// SpentKey identifies (part of) the ciphertext of an accepted knock in an
// anti-replay store.
type SpentKey [16]byte

// AppendSpentKeys appends the keys a spent store must hold for the knock
// Decode last accepted, so that nothing made of it is accepted again:
//
//   - A knock that carried its IV or salt (RandomIV, Salted__) gives one
//     key per ciphertext block after the header. Flipping IV bits leaves
//     every block as it was (the IV-flip forgery); and any block whose
//     plaintext is known (the padding block, or a first block naming a
//     known address) can be sent alone with a chosen IV to decrypt to any
//     7-byte record (the one-block cut, open whenever a door accepts a
//     1-byte PORT). Both reuse a block of the capture, so both are
//     refused. Random IVs make a legitimate knock's blocks unique.
//   - A headerless knock (IV = no) gives one key for its whole body: the
//     IV is fixed, so its blocks repeat between knocks that share a first
//     block, and no chosen IV exists to forge with.
//
// Unencrypted knocks (Encrypt = no) give none: anyone can forge them.
func (c *Codec) AppendSpentKeys(dst []SpentKey) []SpentKey {
	if c.Crypt == nil || len(c.last) == 0 {
		return dst
	}
	if hasMagic(c.last) {
		for b := c.last[headerLen:]; len(b) >= blockSize; b = b[blockSize:] {
			var k SpentKey
			k[0] = 1
			copy(k[1:], b[:blockSize])
			dst = append(dst, k)
		}
		return dst
	}
	sum := sha256.Sum256(c.last)
	var k SpentKey
	k[0] = 2
	copy(k[1:], sum[:])
	return append(dst, k)
}

// SpentKeysPerKnock is the most keys AppendSpentKeys gives for one knock
// of this Codec: a spent store holding n knocks needs n times as many
// records.
func (c *Codec) SpentKeysPerKnock() int {
	n := 1
	if c.Crypt == nil {
		return n
	}
	for _, l := range c.Layouts {
		n = max(n, c.Crypt.Len(l.Size())/blockSize-2) // less the 16-byte header
	}
	return n
}
