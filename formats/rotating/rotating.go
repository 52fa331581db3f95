// Package rotating derives a door's knock sequence from a shared secret and
// the clock (docs/rotating.md, "doorward-rotating-v1"): what the daemon
// expects and what every client sends, so both sides share one
// implementation and the spec's test vectors check it.
//
// The construction is chosen so a POSIX shell with openssl can follow it
// (examples/knock-rotating.sh): the HMAC message is text, each block's hex
// digest is read four digits at a time, and rejection sampling needs only
// integer arithmetic.
package rotating

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/doorward/doorward/formats/sequence"
)

// Label starts every HMAC message: a new version of the derivation gets a
// new label, so no two versions ever agree by accident.
const Label = "doorward-rotating-v1"

// Defaults of the config keys and client flags.
const (
	DefaultPeriod = 30
	DefaultLength = 4
)

// maxBlocks bounds Derive's counter. Each block yields 16 draws, and a
// draw is rejected with probability below one half (modulo bias cut, or a
// port already chosen while fewer than half are), so needing more than a
// handful of blocks is already vanishingly rare; the bound only keeps a
// broken input from looping.
const maxBlocks = 1 << 12

// Mode is which transport protocols a door's sequence uses.
type Mode uint8

const (
	TCP  Mode = iota // every knock is TCP (the default)
	UDP              // every knock is UDP
	Both             // each knock's protocol is derived with its port
)

// ParseMode reads "tcp", "udp" or "both" (any case).
func ParseMode(s string) (Mode, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "tcp":
		return TCP, nil
	case "udp":
		return UDP, nil
	case "both":
		return Both, nil
	}
	return 0, fmt.Errorf("%q is not a protocol (tcp, udp or both)", s)
}

func (m Mode) String() string {
	switch m {
	case UDP:
		return "udp"
	case Both:
		return "both"
	}
	return "tcp"
}

// ParseSecret decodes a secret written as TOTP apps store it: base32
// (RFC 4648), upper or lower case, '=' padding optional, spaces and
// hyphens between groups ignored ("JBSW Y3DP-EHPK 3PXP").
func ParseSecret(s string) ([]byte, error) {
	clean := strings.Map(func(r rune) rune {
		switch {
		case r == ' ' || r == '\t' || r == '\n' || r == '\r' || r == '-':
			return -1
		case 'a' <= r && r <= 'z':
			return r - ('a' - 'A')
		}
		return r
	}, s)
	clean = strings.TrimRight(clean, "=")
	if clean == "" {
		return nil, errors.New("empty secret")
	}
	switch len(clean) % 8 {
	case 1, 3, 6: // no whole number of bytes ends there
		return nil, fmt.Errorf("secret is not base32 (RFC 4648): %d characters cannot be whole bytes", len(clean))
	}
	key, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(clean)
	if err != nil {
		var ce base32.CorruptInputError
		if errors.As(err, &ce) {
			return nil, fmt.Errorf("secret is not base32 (RFC 4648): bad character or length at offset %d", int(ce))
		}
		return nil, fmt.Errorf("secret is not base32 (RFC 4648): %v", err)
	}
	if len(key) == 0 {
		return nil, errors.New("empty secret")
	}
	return key, nil
}

// Window is the time step of t: floor(unix seconds / period), RFC 6238's
// T with T0 = 0. period is in seconds and must be positive.
func Window(t time.Time, period int) int64 {
	s, p := t.Unix(), int64(period)
	w := s / p
	if s%p < 0 {
		w-- // floor, not truncation, before 1970
	}
	return w
}

// Start is when window w begins.
func Start(w int64, period int) time.Time { return time.Unix(w*int64(period), 0) }

// Params are the inputs of the derivation, except the time step.
type Params struct {
	Secret []byte // decoded (ParseSecret)
	Door   string // the door's name: its knockd.conf section name
	Period int    // seconds
	Length int    // knocks in a sequence, 1..sequence.MaxLen
	Ports  Ports
	Mode   Mode
	// Addr binds the sequence to one knocker: the source address the
	// server sees, in its canonical text form (netip.Addr.String:
	// "192.0.2.7", "2001:db8::1"); "" for any knocker.
	Addr string
}

// Check reports parameters no sequence can be derived from.
func (p *Params) Check() error {
	switch {
	case len(p.Secret) == 0:
		return errors.New("empty secret")
	case p.Period < 1:
		return fmt.Errorf("period %d: must be at least 1 second", p.Period)
	case p.Length < 1 || p.Length > sequence.MaxLen:
		return fmt.Errorf("length %d: must be 1-%d", p.Length, sequence.MaxLen)
	case p.Ports.Len() < p.Length:
		return fmt.Errorf("%d ports cannot hold %d distinct knocks", p.Ports.Len(), p.Length)
	case p.draws() > 1<<16:
		return fmt.Errorf("%d ports with both protocols: at most %d", p.Ports.Len(), 1<<15)
	case strings.Contains(p.Addr, "|"):
		return fmt.Errorf("address %q contains '|'", p.Addr)
	}
	return nil
}

// draws is how many (port, protocol) candidates a draw picks from.
func (p *Params) draws() int {
	if p.Mode == Both {
		return 2 * p.Ports.Len()
	}
	return p.Ports.Len()
}

// Message is the HMAC input of block counter of window w:
// Label|door|w|addr|counter, numbers in decimal. Parsed from the right it
// is unambiguous whatever the door's name holds, as the last three
// fields never contain '|'.
func Message(door string, w int64, addr string, counter int) []byte {
	b := make([]byte, 0, len(Label)+len(door)+len(addr)+32)
	b = append(b, Label...)
	b = append(b, '|')
	b = append(b, door...)
	b = append(b, '|')
	b = strconv.AppendInt(b, w, 10)
	b = append(b, '|')
	b = append(b, addr...)
	b = append(b, '|')
	return strconv.AppendInt(b, int64(counter), 10)
}

// Derive appends window w's sequence to dst[:0] and returns it. For
// counter 0, 1, …: block = HMAC-SHA256(secret, Message(…, counter)); each
// of its 16 big-endian 16-bit words v is a draw. A draw at or above
// 65536 - 65536 mod D is rejected (D = the candidates: the ports, twice
// for Both), so every candidate is equally likely; otherwise i = v mod D
// picks the candidate: port Ports.At(i) for i < len(Ports), and with Both
// port Ports.At(i - len(Ports)) over UDP above. A port already in the
// sequence (whatever its protocol) is skipped. Draws go on until Length
// knocks are chosen.
func Derive(dst []sequence.Knock, p *Params, w int64) ([]sequence.Knock, error) {
	if err := p.Check(); err != nil {
		return dst[:0], err
	}
	out := dst[:0]
	n, d := p.Ports.Len(), p.draws()
	limit := 1<<16 - (1<<16)%d
	mac := hmac.New(sha256.New, p.Secret)
	var sum [sha256.Size]byte
	for c := 0; c < maxBlocks; c++ {
		mac.Reset()
		mac.Write(Message(p.Door, w, p.Addr, c))
		mac.Sum(sum[:0])
		for j := 0; j < len(sum); j += 2 {
			v := int(sum[j])<<8 | int(sum[j+1])
			if v >= limit {
				continue
			}
			i := v % d
			k := sequence.Knock{Proto: sequence.TCP}
			switch {
			case p.Mode == UDP:
				k.Proto = sequence.UDP
			case i >= n:
				k.Proto, i = sequence.UDP, i-n
			}
			k.Port = p.Ports.At(i)
			if hasPort(out, k.Port) {
				continue
			}
			if out = append(out, k); len(out) == p.Length {
				return out, nil
			}
		}
	}
	return out[:0], fmt.Errorf("no sequence after %d blocks", maxBlocks)
}

func hasPort(seq []sequence.Knock, port uint16) bool {
	for _, k := range seq {
		if k.Port == port {
			return true
		}
	}
	return false
}
