package knockdaemon

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func TestParseLayout(t *testing.T) {
	for _, tc := range []struct {
		in         string
		port, time int
		want       string // String() and size, or the error
	}{
		{"IP,PORT,FLAG0,CHECKSUM", 2, 1, "IP,PORT,FLAG0,CHECKSUM 8"},
		{"ip, port ,flag0,checksum", 1, 1, "IP,PORT,FLAG0,CHECKSUM 7"},
		{"CLIENT,PORT,TIME,FLAG0,CHECKSUM", 2, 4, "IP,PORT,TIME,FLAG0,CHECKSUM 12"},
		{"FLAG31,FLAG2,IP", 2, 1, "FLAG31,FLAG2,IP 6"},
		{"PORT", 2, 1, "PORT 2"},
		{"", 2, 1, "empty knock field list"},
		{"IP,,PORT", 2, 1, "empty field in knock field list"},
		{"IP,CLIENT", 2, 1, "knock field IP given twice"},
		{"FLAG1,FLAG01", 2, 1, `unknown knock field "FLAG01" (want IP, CLIENT, PORT, TIME, FLAG0…FLAG31, CHECKSUM)`},
		{"FLAG32", 2, 1, `unknown knock field "FLAG32" (want IP, CLIENT, PORT, TIME, FLAG0…FLAG31, CHECKSUM)`},
		{"LOGIP", 2, 1, `unknown knock field "LOGIP" (want IP, CLIENT, PORT, TIME, FLAG0…FLAG31, CHECKSUM)`},
		{"IP", 3, 1, "port width 3: want 1 or 2"},
		{"IP", 2, 2, "time width 2: want 1 or 4"},
	} {
		l, err := ParseLayout(tc.in, tc.port, tc.time)
		got := fmt.Sprintf("%v %d", l, l.Size())
		if err != nil {
			got = err.Error()
		}
		if got != tc.want {
			t.Errorf("ParseLayout(%q, %d, %d) = %q, want %q", tc.in, tc.port, tc.time, got, tc.want)
		}
	}
}

func TestAppendRange(t *testing.T) {
	l1, _ := ParseLayout("IP,PORT,TIME", 1, 1)
	ip := netip.MustParseAddr("10.0.0.1")
	for _, tc := range []struct {
		name string
		r    Record
		want string
	}{
		{"fits", Record{IP: ip, Port: 255, Time: 255}, "0a000001ffff"},
		{"4in6", Record{IP: netip.MustParseAddr("::ffff:10.0.0.1"), Port: 1, Time: 2}, "0a0000010102"},
		{"port", Record{IP: ip, Port: 256}, "port 256 does not fit the 1-byte PORT field"},
		{"time", Record{IP: ip, Time: 256}, "time 256 does not fit the 1-byte TIME field"},
		{"ipv6", Record{IP: netip.MustParseAddr("fd00::1")}, "IP fd00::1 is not an IPv4 address (the knock carries 4 bytes)"},
		{"no ip", Record{}, "IP invalid IP is not an IPv4 address (the knock carries 4 bytes)"},
	} {
		b, err := l1.Append(nil, &tc.r, nil)
		got := fmt.Sprintf("%x", b)
		if err != nil {
			got = err.Error()
		}
		if got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
}

// Every problem of a setting block is reported at once, each naming its
// key so the daemon can point at its line.
func TestSettingsErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    Settings
		want []string
	}{
		{"missing", Settings{}, []string{
			"Portspan: missing (the span of ports knocks are spelled on)",
			"Knock: missing (the record's field list, e.g. IP,PORT,FLAG0,CHECKSUM)",
			"Key: missing (the passphrase; or set Encrypt = no)",
		}},
		{"bad values", Settings{
			Portspan: "1-3", Knock: "IP,PORT", Encrypt: "maybe", Cipher: "IDEA", IV: "sometimes",
			PortWidth: "3", TimeWidth: "2", ChecksumMod: "257", SpanTail: "left", Header: "lax", IVHex: "xyz",
		}, []string{
			"Portspan: port span has 3 ports, want a power of two from 2 to 32768",
			`Port_Width: "3" is not auto, 1 or 2`,
			`Time_Width: "2" is not 1 or 4`,
			`Checksum_Mod: checksum modulus "257": want 256, 255 or both ("256,255")`,
			`Span_Tail: "left" is not auto, pad or raw`,
			`Encrypt: "maybe" is not yes or no`,
			`IV: "sometimes" is not yes, header, no or salted`,
			`IV_Hex: "xyz" is not 16 hex digits`,
			`Header: "lax" is not auto, magic or strict`,
			`Cipher: cipher "IDEA" is not supported (supported: blowfish)`,
			"Key: missing (the passphrase; or set Encrypt = no)",
		}},
		{"iv hex with header", Settings{Portspan: "1-2", Knock: "IP", Key: "k", IVHex: "0001020304050607"}, []string{
			"IV_Hex: only applies with IV = no (a header carries the IV)",
		}},
		{"ok unencrypted", Settings{Portspan: "1-2", Knock: "IP", Encrypt: "no", Cipher: "Blowfish"}, nil},
		{"ok iv hex", Settings{Portspan: "1-2", Knock: "IP", Key: "k", IV: "no", IVHex: "0001020304050607"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.s.Codec()
			var got []string
			if err != nil {
				for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
					var se *SettingError
					if !errors.As(e, &se) {
						t.Errorf("%v is not a *SettingError", e)
					}
					got = append(got, e.Error())
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

// randomCodec draws settings from r: a span of 2^N ports over up to five
// non-contiguous ranges listed out of port order, a random field list and
// widths, with or without encryption and each header, and a tail reading.
func randomCodec(r *rand.Rand) (*Codec, Settings) {
	bits := 1 + r.IntN(15)
	size := 1 << bits
	parts := 1 + r.IntN(5)
	if parts > size {
		parts = size
	}
	// Cut size into parts lengths, lay them out ascending with gaps, then
	// list them in a shuffled order.
	cuts := []int{0, size}
	for len(cuts) < parts+1 {
		c := 1 + r.IntN(size-1)
		if !slices.Contains(cuts, c) {
			cuts = append(cuts, c)
		}
	}
	slices.Sort(cuts)
	var ranges []string
	port := 1 + r.IntN(1000)
	for i := 0; i < parts; i++ {
		n := cuts[i+1] - cuts[i]
		if n == 1 {
			ranges = append(ranges, fmt.Sprint(port))
		} else {
			ranges = append(ranges, fmt.Sprintf("%d-%d", port, port+n-1))
		}
		port += n + 1 + r.IntN((65535-port-n-(size-cuts[i+1]))/(parts-i)/4+1)
	}
	r.Shuffle(len(ranges), func(i, j int) { ranges[i], ranges[j] = ranges[j], ranges[i] })

	names := []string{"IP", "PORT", "TIME", "CHECKSUM", "FLAG0", "FLAG1", fmt.Sprintf("FLAG%d", 2+r.IntN(MaxFlags-2))}
	r.Shuffle(len(names), func(i, j int) { names[i], names[j] = names[j], names[i] })
	names = names[:1+r.IntN(len(names))]

	s := Settings{
		Portspan:    strings.Join(ranges, ","),
		Knock:       strings.Join(names, ","),
		PortWidth:   []string{"auto", "1", "2"}[r.IntN(3)],
		TimeWidth:   []string{"1", "4"}[r.IntN(2)],
		ChecksumMod: []string{"256", "255", "256,255", "255,256"}[r.IntN(4)],
		SpanTail:    []string{"auto", "pad", "raw"}[r.IntN(3)],
		Encrypt:     []string{"yes", "no"}[r.IntN(2)],
		IV:          []string{"yes", "no", "salted"}[r.IntN(3)],
		Key:         fmt.Sprintf("key-%x", r.Uint64()),
	}
	if s.IV == "no" && r.IntN(2) == 0 {
		s.IVHex = fmt.Sprintf("%016x", r.Uint64())
	}
	c, err := s.Codec()
	if err != nil {
		panic(fmt.Sprintf("%+v: %v", s, err))
	}
	return c, s
}

func randomRecord(r *rand.Rand, l Layout) Record {
	var rec Record
	rec.IP = netip.AddrFrom4([4]byte{byte(r.Uint32()), byte(r.Uint32()), byte(r.Uint32()), byte(r.Uint32())})
	for _, f := range l.Fields() {
		switch f.Kind {
		case FieldPort:
			rec.Port = uint16(r.Uint32() >> (32 - 8*f.Width))
		case FieldTime:
			rec.Time = r.Uint32() >> (32 - 8*f.Width)
		case FieldFlag:
			rec.Flags[f.Flag] = byte(r.Uint32())
		}
	}
	return rec
}

// TestRoundTrip is the property test: for random settings and records,
// decoding the encoded knock gives the record back (with its checksum), the
// knock has one of Lengths() hits, and every hit is in the span.
func TestRoundTrip(t *testing.T) {
	seed := rand.NewChaCha8([32]byte{5, 2004 % 256})
	r := rand.New(seed)
	n := 3000
	if testing.Short() {
		n = 300
	}
	for i := range n {
		c, s := randomCodec(r)
		l := c.Layouts[0]
		rec := randomRecord(r, l)
		if !l.Has(FieldIP) {
			rec.IP = netip.Addr{}
		}
		ports, err := c.Encode(nil, &rec, seed) // IVs and salts from the seed too
		if err != nil {
			t.Fatalf("#%d %+v: Encode(%+v): %v", i, s, rec, err)
		}
		if !slices.Contains(c.Lengths(), len(ports)) {
			t.Fatalf("#%d %+v: %d ports, not one of %v", i, s, len(ports), c.Lengths())
		}
		for _, p := range ports {
			if _, ok := c.Span.Index(p); !ok {
				t.Fatalf("#%d %+v: port %d outside the span", i, s, p)
			}
		}
		var got Record
		gl, ok := c.Decode(ports, &got)
		// The encoder computed the checksum; Parse fills it in.
		plain, _ := l.Append(nil, &rec, c.Sums)
		if l.Has(FieldChecksum) {
			rec.Checksum = plain[checksumOffset(l)]
		}
		if !ok || got != rec || gl.String() != l.String() {
			t.Fatalf("#%d %+v:\nencoded %+v as %v\ndecoded %+v, %v (layout %v)", i, s, rec, ports, got, ok, gl)
		}
	}
}

func checksumOffset(l Layout) int {
	off := 0
	for _, f := range l.Fields() {
		if f.Kind == FieldChecksum {
			return off
		}
		off += f.Width
	}
	return -1
}

// A knock spoiled anywhere (one port replaced by another span port) is
// refused, except in the rare case the damage survives padding and checksum.
func TestCorruptionDetected(t *testing.T) {
	seed := rand.NewChaCha8([32]byte{1})
	r := rand.New(seed)
	var passed, total int
	for range 3000 {
		c, _ := randomCodec(r)
		fs := c.Layouts[0].Fields()
		if c.Crypt == nil || fs[len(fs)-1].Kind != FieldChecksum {
			continue // bytes after CHECKSUM are not covered by it
		}
		rec := randomRecord(r, c.Layouts[0])
		ports, err := c.Encode(nil, &rec, seed)
		if err != nil {
			t.Fatal(err)
		}
		i := r.IntN(len(ports))
		ports[i] = c.Span.Port(r.IntN(c.Span.Size()))
		var got Record
		if l, ok := c.Decode(ports, &got); ok {
			a, _ := l.Append(nil, &got, c.Sums)
			b, _ := c.Layouts[0].Append(nil, &rec, c.Sums)
			if !bytes.Equal(a, b) {
				passed++
				t.Logf("%v IV=%v: hit %d of %d replaced: %x decoded as %x", c.Layouts[0], c.Crypt.Header(), i, len(ports), b, a)
			}
		}
		total++
	}
	// Padding (about 1/256 when the last block is hit) and checksum (1/256)
	// together let through far fewer than 1%.
	if total < 200 || passed*100 > total {
		t.Errorf("%d of %d corrupted knocks decoded to a different record", passed, total)
	}
}

// Decode allocates nothing once its buffers have grown: it runs for every
// span hit a detector sees.
func TestDecodeAllocs(t *testing.T) {
	for _, v := range loadVectors(t).Vectors {
		if v.ID == "V5" {
			continue // Salted__: a key schedule per salt, documented
		}
		c, err := settings(t, v.Settings).Codec()
		if err != nil {
			t.Fatal(err)
		}
		var rec Record
		bad := slices.Clone(v.Ports)
		bad[0] = bad[1]
		allocs := testing.AllocsPerRun(100, func() {
			c.Decode(v.Ports, &rec)
			c.Decode(bad, &rec)
		})
		if allocs != 0 {
			t.Errorf("%s: %v allocations per Decode", v.ID, allocs)
		}
	}
}

func BenchmarkDecode(b *testing.B) {
	for _, v := range loadVectors(b).Vectors {
		c, err := settings(b, v.Settings).Codec()
		if err != nil {
			b.Fatal(err)
		}
		b.Run(v.ID, func(b *testing.B) {
			b.ReportAllocs()
			var rec Record
			for b.Loop() {
				c.Decode(v.Ports, &rec)
			}
		})
	}
}

// FuzzDecode feeds arbitrary hits to decoders of every vector's settings:
// nothing may panic, and whatever decodes re-encodes to a record that
// decodes to the same values.
func FuzzDecode(f *testing.F) {
	vf := loadVectors(f)
	var codecs []*Codec
	for _, v := range vf.Vectors {
		c, err := settings(f, v.Settings).Codec()
		if err != nil {
			f.Fatal(err)
		}
		codecs = append(codecs, c)
		var b []byte
		for _, p := range v.Ports {
			b = append(b, byte(p>>8), byte(p))
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ports := make([]uint16, len(data)/2)
		for i := range ports {
			ports[i] = uint16(data[2*i])<<8 | uint16(data[2*i+1])
		}
		for _, c := range codecs {
			for _, tail := range []Tail{TailAuto, TailPad, TailRaw} {
				c.Tail = tail
				var rec Record
				l, ok := c.Decode(ports, &rec)
				if !ok {
					continue
				}
				plain, err := l.Append(nil, &rec, c.Sums)
				if err != nil {
					t.Fatalf("decoded record %+v does not encode: %v", rec, err)
				}
				var again Record
				if err := l.Parse(plain, &again, c.Sums); err != nil || again.IP != rec.IP || again.Port != rec.Port || again.Flags != rec.Flags {
					t.Fatalf("decoded %+v, re-parsed %+v, %v", rec, again, err)
				}
			}
		}
	})
}

// FuzzOpen: Crypt.Open takes any bytes without panicking and never
// returns more than it was given.
func FuzzOpen(f *testing.F) {
	for _, v := range loadVectors(f).Vectors {
		f.Add(unhex(f, v.Wire))
	}
	f.Add([]byte("RandomIV"))
	f.Add([]byte("Salted__12345678"))
	crypts := make([]*Crypt, 0, 6)
	for _, h := range []Header{HeaderNone, HeaderRandomIV, HeaderSalted} {
		for _, strict := range []bool{false, true} {
			c, err := NewCrypt([]byte("password"), CryptOptions{Header: h, Strict: strict})
			if err != nil {
				f.Fatal(err)
			}
			crypts = append(crypts, c)
		}
	}
	f.Fuzz(func(t *testing.T, ct []byte) {
		for _, c := range crypts {
			pt, err := c.Open(nil, ct)
			if err == nil && len(pt) >= len(ct) {
				t.Fatalf("%d bytes of plaintext from %d of ciphertext", len(pt), len(ct))
			}
			if err == nil {
				// What opened seals back to the same bytes with the same IV.
				var iv []byte
				switch {
				case bytes.HasPrefix(ct, magicRandomIV) || bytes.HasPrefix(ct, magicSalted):
					iv = ct[8:16]
				}
				hdr := HeaderNone
				if iv != nil {
					hdr = map[bool]Header{true: HeaderRandomIV, false: HeaderSalted}[bytes.HasPrefix(ct, magicRandomIV)]
				}
				c2, _ := NewCrypt([]byte("password"), CryptOptions{Header: hdr})
				again, err := c2.Seal(nil, pt, bytes.NewReader(iv))
				if err != nil || !bytes.Equal(again, ct) {
					t.Fatalf("Open(%x) = %x; sealing it back gives %x, %v", ct, pt, again, err)
				}
			}
		}
	})
}

// FuzzLayout: any field list either fails to parse or lays out any record
// bytes of its size and back unchanged (with a correct checksum).
func FuzzLayout(f *testing.F) {
	for _, s := range []string{"IP,PORT,FLAG0,CHECKSUM", "CLIENT,PORT,TIME,FLAG0,CHECKSUM", "flag31,checksum,ip", "IP,IP", "FLAG01", ""} {
		f.Add(s, uint8(2), uint8(1), []byte("0123456789abcdef"))
	}
	f.Fuzz(func(t *testing.T, s string, pw, tw uint8, data []byte) {
		l, err := ParseLayout(s, int(pw), int(tw))
		if err != nil {
			return
		}
		if len(data) < l.Size() {
			return
		}
		var r Record
		if err := l.Parse(data[:l.Size()], &r, Sums{256, 255}); err != nil && err != ErrChecksum {
			t.Fatalf("%q: Parse of %d bytes: %v", s, l.Size(), err)
		}
		b, err := l.Append(nil, &r, nil)
		if err != nil {
			t.Fatalf("%q: parsed record %+v does not lay out: %v", s, r, err)
		}
		var again Record
		if err := l.Parse(b, &again, nil); err != nil {
			t.Fatalf("%q: %x does not parse back: %v", s, b, err)
		}
		if !l.Has(FieldChecksum) && !bytes.Equal(b, data[:l.Size()]) {
			t.Fatalf("%q: %x laid out as %x", s, data[:l.Size()], b)
		}
	})
}
