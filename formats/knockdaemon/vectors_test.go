package knockdaemon

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// vector is one entry of testdata/vectors.json: the spec's §12 vectors.
type vector struct {
	ID       string            `json:"id"`
	Settings map[string]string `json:"settings"`
	Fields   map[string]string `json:"fields"`
	Random   string            `json:"random"`
	Record   string            `json:"record"`
	Wire     string            `json:"wire"`
	Ports    []uint16          `json:"ports"`
	PortsRaw []uint16          `json:"ports_raw"`
}

type vectorFile struct {
	Keys    map[string]string `json:"keys"`
	Vectors []vector          `json:"vectors"`
}

func loadVectors(t testing.TB) vectorFile {
	t.Helper()
	b, err := os.ReadFile("testdata/vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var vf vectorFile
	if err := json.Unmarshal(b, &vf); err != nil {
		t.Fatal(err)
	}
	if len(vf.Vectors) != 7 {
		t.Fatalf("%d vectors, want the manual's and V1-V5 with V3b", len(vf.Vectors))
	}
	return vf
}

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

// settings maps a vector's INI keys onto Settings.
func settings(t testing.TB, m map[string]string) Settings {
	t.Helper()
	var s Settings
	for k, v := range m {
		switch k {
		case "Portspan":
			s.Portspan = v
		case "Knock":
			s.Knock = v
		case "Encrypt":
			s.Encrypt = v
		case "Key":
			s.Key = v
		case "IV":
			s.IV = v
		case "Port_Width":
			s.PortWidth = v
		case "Time_Width":
			s.TimeWidth = v
		default:
			t.Fatalf("vector setting %q not mapped", k)
		}
	}
	return s
}

func record(t testing.TB, fields map[string]string) Record {
	t.Helper()
	var r Record
	for k, v := range fields {
		if k == "IP" {
			r.IP = netip.MustParseAddr(v)
			continue
		}
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			t.Fatalf("field %s=%q: %v", k, v, err)
		}
		switch {
		case k == "PORT":
			r.Port = uint16(n)
		case k == "TIME":
			r.Time = uint32(n)
		case k == "CHECKSUM":
			r.Checksum = uint8(n)
		case strings.HasPrefix(k, "FLAG"):
			i, _ := strconv.Atoi(k[4:])
			r.Flags[i] = uint8(n)
		default:
			t.Fatalf("unknown field %q", k)
		}
	}
	return r
}

func TestStretchKey(t *testing.T) {
	for pass, want := range loadVectors(t).Keys {
		got := StretchKey([]byte(pass))
		if !bytes.Equal(got[:], unhex(t, want)) {
			t.Errorf("StretchKey(%q) = %x, want %s", pass, got, want)
		}
	}
}

// TestVectors checks every vector of the spec in both directions and at
// each stage: fields → record bytes → ciphertext → ports (readings A and
// B), and ports → record through Codec.Decode with every tail setting that
// should accept them.
func TestVectors(t *testing.T) {
	for _, v := range loadVectors(t).Vectors {
		t.Run(v.ID, func(t *testing.T) {
			c, err := settings(t, v.Settings).Codec()
			if err != nil {
				t.Fatal(err)
			}
			want := record(t, v.Fields)
			l := c.Layouts[0]

			plain, err := l.Append(nil, &want, c.Sums)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(plain, unhex(t, v.Record)) {
				t.Errorf("record = %x, want %s", plain, v.Record)
			}
			wire, err := c.Seal(nil, &want, strings.NewReader(v.Random))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(wire, unhex(t, v.Wire)) {
				t.Errorf("wire = %x, want %s", wire, v.Wire)
			}
			ports, err := c.Encode(nil, &want, strings.NewReader(v.Random))
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(ports, v.Ports) {
				t.Errorf("ports = %v, want %v", ports, v.Ports)
			}
			raw := v.PortsRaw
			if raw == nil {
				raw = v.Ports // the last group is a whole N bits, or its short bits are zero
			}
			if got := c.Span.Encode(nil, wire, TailRaw); !slices.Equal(got, raw) {
				t.Errorf("reading B ports = %v, want %v", got, raw)
			}
			if got := c.Lengths(); !slices.Contains(got, len(v.Ports)) {
				t.Errorf("Lengths() = %v, want one of %d", got, len(v.Ports))
			}

			// Back: each port list decodes under the tails that accept it.
			for _, tc := range []struct {
				tail  Tail
				ports []uint16
				ok    bool
			}{
				{TailAuto, v.Ports, true},
				{TailAuto, raw, true},
				{TailPad, v.Ports, true},
				{TailPad, raw, slices.Equal(raw, v.Ports)},
				{TailRaw, raw, true},
				{TailRaw, v.Ports, slices.Equal(raw, v.Ports)},
			} {
				c.Tail = tc.tail
				var got Record
				gl, ok := c.Decode(tc.ports, &got)
				if ok != tc.ok {
					t.Errorf("tail %v, ports %v: decoded = %v, want %v", tc.tail, tc.ports, ok, tc.ok)
					continue
				}
				if !ok {
					continue
				}
				if got != want {
					t.Errorf("tail %v: record = %+v, want %+v", tc.tail, got, want)
				}
				if gl.String() != l.String() || gl.PortWidth() != l.PortWidth() {
					t.Errorf("tail %v: layout %v/%d, want %v/%d", tc.tail, gl, gl.PortWidth(), l, l.PortWidth())
				}
				if got, want := gl.Describe(&got), describe(gl, v.Fields); got != want {
					t.Errorf("Describe = %q, want %q", got, want)
				}
			}
		})
	}
}

// A port width of "auto" accepts both the pre-0.24 one-byte PORT (V1) and
// the two-byte one (V2), told apart by the knock's length.
func TestPortWidthAuto(t *testing.T) {
	vf := loadVectors(t)
	for _, v := range vf.Vectors {
		if v.ID != "V1" && v.ID != "V2" {
			continue
		}
		s := settings(t, v.Settings)
		s.PortWidth = ""
		c, err := s.Codec()
		if err != nil {
			t.Fatal(err)
		}
		var got Record
		l, ok := c.Decode(v.Ports, &got)
		if !ok || got != record(t, v.Fields) {
			t.Errorf("%s with Port_Width auto: ok=%v record=%+v", v.ID, ok, got)
		}
		wantW := map[string]int{"V1": 1, "V2": 2}[v.ID]
		if l.PortWidth() != wantW {
			t.Errorf("%s: port width %d, want %d", v.ID, l.PortWidth(), wantW)
		}
		// Encoding uses the 2-byte PORT.
		if c.Layouts[0].PortWidth() != 2 {
			t.Errorf("auto encodes with width %d, want 2", c.Layouts[0].PortWidth())
		}
	}
}

// The header is told by its magic unless Header = strict, but a Salted__
// knock (V5), which costs a key derivation, is only taken by a door that
// asks for it: IV = salted, or Header = magic (Crypt::CBC's own rule).
func TestHeaderMagic(t *testing.T) {
	var v5 vector
	for _, v := range loadVectors(t).Vectors {
		if v.ID == "V5" {
			v5 = v
		}
	}
	for _, tc := range []struct {
		iv, header string
		ok         bool
	}{
		{"yes", "", false},
		{"yes", "auto", false},
		{"yes", "magic", true},
		{"no", "magic", false}, // another length
		{"salted", "", true},
		{"salted", "magic", true},
		{"salted", "strict", true},
		{"yes", "strict", false},
	} {
		s := settings(t, v5.Settings)
		s.IV, s.Header = tc.iv, tc.header
		c, err := s.Codec()
		if err != nil {
			t.Fatal(err)
		}
		var got Record
		if _, ok := c.Decode(v5.Ports, &got); ok != tc.ok {
			t.Errorf("IV=%s Header=%q: decoded = %v, want %v", tc.iv, tc.header, ok, tc.ok)
		}
	}
}

// Checksum_Mod 255 is the pre-0.24 checksum: V2's bytes sum to 267, which
// is 11 mod 256 and 12 mod 255.
func TestChecksumModulus(t *testing.T) {
	l, err := ParseLayout("IP,PORT,FLAG0,CHECKSUM", 2, 1)
	if err != nil {
		t.Fatal(err)
	}
	r := Record{IP: netip.MustParseAddr("10.3.2.1"), Port: 3306, Flags: [MaxFlags]uint8{5}}
	b255, _ := l.Append(nil, &r, Sums{255})
	b256, _ := l.Append(nil, &r, Sums{256})
	if b255[7] != 12 || b256[7] != 11 {
		t.Fatalf("checksums %d (mod 255), %d (mod 256); want 12, 11", b255[7], b256[7])
	}
	for _, tc := range []struct {
		name string
		b    []byte
		sums Sums
		want error
	}{
		{"256 accepts 256", b256, Sums{256}, nil},
		{"256 refuses 255", b255, Sums{256}, ErrChecksum},
		{"255 accepts 255", b255, Sums{255}, nil},
		{"both accept 256", b256, Sums{256, 255}, nil},
		{"both accept 255", b255, Sums{256, 255}, nil},
		{"short", b256[:7], Sums{256}, ErrLength},
	} {
		var got Record
		if err := l.Parse(tc.b, &got, tc.sums); err != tc.want {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
		}
	}
}

// describe is Layout.Describe written from a vector's fields, which must be
// exactly the layout's.
func describe(l Layout, fields map[string]string) string {
	var parts []string
	for _, f := range l.Fields() {
		v, ok := fields[f.Name()]
		if !ok {
			v = "(missing)"
		}
		parts = append(parts, f.Name()+"="+v)
	}
	if len(fields) != len(l.Fields()) {
		parts = append(parts, fmt.Sprintf("(%d fields in the vector)", len(fields)))
	}
	return strings.Join(parts, " ")
}
