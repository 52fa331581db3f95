package knockdaemon

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// FieldKind is one of the record's field names.
type FieldKind uint8

const (
	FieldIP       FieldKind = iota + 1 // 4 bytes, the IPv4 address to admit (alias CLIENT)
	FieldPort                          // 1 or 2 bytes, big-endian: the port requested
	FieldTime                          // 1 or 4 bytes, big-endian
	FieldFlag                          // 1 byte: FLAG0, FLAG1, …
	FieldChecksum                      // 1 byte: sum of the bytes before it
)

// MaxFlags bounds FLAGn: FLAG0 to FLAG31. The prototype put no bound on n,
// but every documented recipe uses FLAG0, and a fixed array keeps Record a
// plain value that decodes without allocating.
const MaxFlags = 32

// Field is one entry of a record layout.
type Field struct {
	Kind  FieldKind
	Flag  int // n of FLAGn
	Width int // bytes
}

// Name is the field's name as conditions and templates use it.
func (f Field) Name() string {
	switch f.Kind {
	case FieldIP:
		return "IP"
	case FieldPort:
		return "PORT"
	case FieldTime:
		return "TIME"
	case FieldFlag:
		return "FLAG" + strconv.Itoa(f.Flag)
	case FieldChecksum:
		return "CHECKSUM"
	}
	return "?"
}

// Record is a knock's plaintext content. Fields absent from the layout
// stay zero.
type Record struct {
	IP       netip.Addr // IPv4; invalid when the layout has no IP
	Port     uint16
	Time     uint32
	Flags    [MaxFlags]uint8
	Checksum uint8
}

// Layout is the order and width of a record's fields: knockdaemon's
// "knock = IP,PORT,FLAG0,CHECKSUM", identical on client and daemon.
type Layout struct {
	fields []Field
	size   int
}

// ParseLayout reads a knock field list. Names are case-insensitive; IP may
// be written CLIENT (as on the knock-length page). portWidth (1 or 2) and
// timeWidth (1 or 4) size PORT and TIME. Each field may appear once.
func ParseLayout(s string, portWidth, timeWidth int) (Layout, error) {
	if portWidth != 1 && portWidth != 2 {
		return Layout{}, fmt.Errorf("port width %d: want 1 or 2", portWidth)
	}
	if timeWidth != 1 && timeWidth != 4 {
		return Layout{}, fmt.Errorf("time width %d: want 1 or 4", timeWidth)
	}
	if strings.TrimSpace(s) == "" {
		return Layout{}, errors.New("empty knock field list")
	}
	var l Layout
	seen := map[string]bool{}
	for name := range strings.SplitSeq(s, ",") {
		name = strings.ToUpper(strings.TrimSpace(name))
		var f Field
		switch name {
		case "":
			return Layout{}, errors.New("empty field in knock field list")
		case "IP", "CLIENT":
			f = Field{Kind: FieldIP, Width: 4}
		case "PORT":
			f = Field{Kind: FieldPort, Width: portWidth}
		case "TIME":
			f = Field{Kind: FieldTime, Width: timeWidth}
		case "CHECKSUM":
			f = Field{Kind: FieldChecksum, Width: 1}
		default:
			digits, ok := strings.CutPrefix(name, "FLAG")
			n, err := strconv.Atoi(digits)
			if !ok || err != nil || n < 0 || n >= MaxFlags || digits != strconv.Itoa(n) {
				return Layout{}, fmt.Errorf("unknown knock field %q (want IP, CLIENT, PORT, TIME, FLAG0…FLAG%d, CHECKSUM)", name, MaxFlags-1)
			}
			f = Field{Kind: FieldFlag, Flag: n, Width: 1}
		}
		if seen[f.Name()] {
			return Layout{}, fmt.Errorf("knock field %s given twice", f.Name())
		}
		seen[f.Name()] = true
		l.fields = append(l.fields, f)
		l.size += f.Width
	}
	return l, nil
}

// Fields lists the layout's fields in byte order. The slice is shared.
func (l Layout) Fields() []Field { return l.fields }

// Size is the record's length in bytes.
func (l Layout) Size() int { return l.size }

// Has reports whether the layout has a field of kind k.
func (l Layout) Has(k FieldKind) bool {
	for _, f := range l.fields {
		if f.Kind == k {
			return true
		}
	}
	return false
}

// PortWidth is the width of PORT, 0 without one.
func (l Layout) PortWidth() int {
	for _, f := range l.fields {
		if f.Kind == FieldPort {
			return f.Width
		}
	}
	return 0
}

// String is the field list as written in a config.
func (l Layout) String() string {
	names := make([]string, len(l.fields))
	for i, f := range l.fields {
		names[i] = f.Name()
	}
	return strings.Join(names, ",")
}

// Sums are the checksum moduli a decoder accepts; the first is the one an
// encoder uses. knockdaemon v0.24 changed mod 255 (a "bug") to mod 256.
type Sums []int

// DefaultSums is mod 256 only ([chosen] point 4).
var DefaultSums = Sums{256}

// ParseSums reads "256", "255" or a comma list of both, in preference order.
func ParseSums(s string) (Sums, error) {
	var out Sums
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		switch item {
		case "256", "255":
		default:
			return nil, fmt.Errorf("checksum modulus %q: want 256, 255 or both (\"256,255\")", item)
		}
		m, _ := strconv.Atoi(item)
		for _, have := range out {
			if have == m {
				return nil, fmt.Errorf("checksum modulus %d given twice", m)
			}
		}
		out = append(out, m)
	}
	return out, nil
}

// String is the comma list.
func (s Sums) String() string {
	parts := make([]string, len(s))
	for i, m := range s {
		parts[i] = strconv.Itoa(m)
	}
	return strings.Join(parts, ",")
}

// Record errors. They are values, so a decoder on the packet path reports
// them without allocating.
var (
	ErrLength   = errors.New("record has the wrong length")
	ErrChecksum = errors.New("record checksum mismatch")
)

// Append appends r laid out as l to dst. CHECKSUM is computed (mod the
// first of sums, or 256), not taken from r. It fails when a value does not
// fit its field: an IP that is not IPv4, a port over 255 in one byte, a
// time over 255 in one byte.
func (l Layout) Append(dst []byte, r *Record, sums Sums) ([]byte, error) {
	mod := 256
	if len(sums) > 0 {
		mod = sums[0]
	}
	start := len(dst)
	for _, f := range l.fields {
		switch f.Kind {
		case FieldIP:
			if !r.IP.Is4() && !r.IP.Is4In6() {
				return dst[:start], fmt.Errorf("IP %v is not an IPv4 address (the knock carries 4 bytes)", r.IP)
			}
			a := r.IP.Unmap().As4()
			dst = append(dst, a[:]...)
		case FieldPort:
			if f.Width == 1 && r.Port > 0xff {
				return dst[:start], fmt.Errorf("port %d does not fit the 1-byte PORT field", r.Port)
			}
			dst = appendUint(dst, uint32(r.Port), f.Width)
		case FieldTime:
			if f.Width == 1 && r.Time > 0xff {
				return dst[:start], fmt.Errorf("time %d does not fit the 1-byte TIME field", r.Time)
			}
			dst = appendUint(dst, r.Time, f.Width)
		case FieldFlag:
			dst = append(dst, r.Flags[f.Flag])
		case FieldChecksum:
			dst = append(dst, checksum(dst[start:], mod))
		}
	}
	return dst, nil
}

// Parse reads b laid out as l into r (fields absent from l are zeroed)
// and verifies CHECKSUM against each of sums (none given: 256). On
// ErrChecksum r holds the fields all the same.
func (l Layout) Parse(b []byte, r *Record, sums Sums) error {
	if len(b) != l.size {
		return ErrLength
	}
	*r = Record{}
	off, sumAt := 0, -1
	for _, f := range l.fields {
		v := b[off : off+f.Width]
		switch f.Kind {
		case FieldIP:
			r.IP = netip.AddrFrom4([4]byte(v))
		case FieldPort:
			r.Port = uint16(readUint(v))
		case FieldTime:
			r.Time = readUint(v)
		case FieldFlag:
			r.Flags[f.Flag] = v[0]
		case FieldChecksum:
			r.Checksum, sumAt = v[0], off
		}
		off += f.Width
	}
	if sumAt >= 0 && !sumOK(b[:sumAt], b[sumAt], sums) {
		return ErrChecksum // r is filled in all the same
	}
	return nil
}

// Describe lists r's fields that l has, in layout order, as the daemon's
// log and the client's -v show a knock: "IP=10.1.1.1 PORT=22 FLAG0=1".
func (l Layout) Describe(r *Record) string {
	b := make([]byte, 0, 16*len(l.fields))
	for i, f := range l.fields {
		if i > 0 {
			b = append(b, ' ')
		}
		b = append(b, f.Name()...)
		b = append(b, '=')
		switch f.Kind {
		case FieldIP:
			b = r.IP.AppendTo(b)
		case FieldPort:
			b = strconv.AppendUint(b, uint64(r.Port), 10)
		case FieldTime:
			b = strconv.AppendUint(b, uint64(r.Time), 10)
		case FieldFlag:
			b = strconv.AppendUint(b, uint64(r.Flags[f.Flag]), 10)
		case FieldChecksum:
			b = strconv.AppendUint(b, uint64(r.Checksum), 10)
		}
	}
	return string(b)
}

func sumOK(b []byte, got byte, sums Sums) bool {
	if len(sums) == 0 {
		return checksum(b, 256) == got
	}
	for _, m := range sums {
		if checksum(b, m) == got {
			return true
		}
	}
	return false
}

func checksum(b []byte, mod int) byte {
	sum := 0
	for _, c := range b {
		sum += int(c)
	}
	return byte(sum % mod)
}

func appendUint(dst []byte, v uint32, width int) []byte {
	switch width {
	case 1:
		return append(dst, byte(v))
	case 2:
		return binary.BigEndian.AppendUint16(dst, uint16(v))
	}
	return binary.BigEndian.AppendUint32(dst, v)
}

func readUint(b []byte) uint32 {
	var v uint32
	for _, c := range b {
		v = v<<8 | uint32(c)
	}
	return v
}
