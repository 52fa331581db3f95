// Package sequence is knockd's knock-sequence grammar, "port[:proto],…"
// (../shared/specs/knockd.md §4.1): the Sequence directive of knockd.conf
// and every line of a One_Time_Sequences file. It is a format, not part of
// the knockd.conf reader, because both the config reader (config/knockd)
// and the one-time file (formats/otp) speak it, and a format must not
// import a config dialect (arch_test.go).
package sequence

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/doorward/doorward/formats/proto"
)

// MaxLen is knockd's SEQ_MAX: the most knocks a sequence may have.
const MaxLen = 32

// Proto, TCP and UDP are formats/proto's, the one definition the packet
// contract (detectors) shares, named here because a Knock is made of them.
type Proto = proto.Proto

const (
	TCP = proto.TCP
	UDP = proto.UDP
)

// Knock is one element of a sequence.
type Knock struct {
	Port  uint16
	Proto Proto
}

// space is what knockd's config reader strips around values (isspace).
const space = " \t\n\v\f\r"

// Parse reads knockd's "port[:proto],…" syntax.
//
// Where knockd's atoi silently turns "abc", "", "-1" or "7000:tcp:junk" into
// ports 0, 0, 65535 or 7000, this returns an error: such a door could never
// be knocked as the admin meant.
func Parse(s string) ([]Knock, error) {
	s = strings.Trim(s, space)
	if s == "" {
		return nil, errors.New("empty knock sequence")
	}
	elems := strings.Split(s, ",")
	if len(elems) > MaxLen {
		return nil, fmt.Errorf("too many ports in knock sequence (max %d)", MaxLen)
	}
	seq := make([]Knock, 0, len(elems))
	for _, e := range elems {
		portField, protoField, hasProto := strings.Cut(e, ":")
		port := strings.Trim(portField, space)
		if port == "" {
			if strings.Trim(e, space) == "" {
				return nil, errors.New("empty element in knock sequence")
			}
			return nil, fmt.Errorf("missing port in %q", strings.Trim(e, space))
		}
		n, err := strconv.ParseUint(port, 10, 64)
		if err != nil && !errors.Is(err, strconv.ErrRange) {
			return nil, fmt.Errorf("port %q is not a number", port)
		}
		if err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("port %s is invalid (must be 1-65535)", port)
		}
		k := Knock{Port: uint16(n), Proto: TCP}
		if hasProto {
			proto, extra, hasExtra := strings.Cut(protoField, ":")
			if hasExtra {
				return nil, fmt.Errorf("unexpected %q after the protocol in %q", ":"+extra, strings.Trim(e, space))
			}
			// ASCII case only, like knockd's toupper in the C locale:
			// no Unicode letter folds to one of t, c, p, u, d.
			switch proto := strings.Trim(proto, space); {
			case strings.EqualFold(proto, "tcp"):
			case strings.EqualFold(proto, "udp"):
				k.Proto = UDP
			default:
				return nil, fmt.Errorf("unknown protocol %q in knock sequence", proto)
			}
		}
		seq = append(seq, k)
	}
	return seq, nil
}

// Format writes seq back in knockd syntax with explicit protocols, so
// Parse(Format(s)) == s.
func Format(seq []Knock) string {
	var b strings.Builder
	for i, k := range seq {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%d:%s", k.Port, k.Proto)
	}
	return b.String()
}
