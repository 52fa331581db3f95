package knockdaemon

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
)

// macVector is one entry of testdata/mac-vectors.json, computed with
// Python's hmac from the wire bytes of the vector of the same id.
type macVector struct {
	ID     string   `json:"id"`
	MacKey string   `json:"mac_key"`
	TagLen int      `json:"tag_len"`
	Tag    string   `json:"tag"`
	Ports  []uint16 `json:"ports"`
}

func loadMACVectors(t testing.TB) []macVector {
	t.Helper()
	b, err := os.ReadFile("testdata/mac-vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var f struct{ Vectors []macVector }
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	if len(f.Vectors) == 0 {
		t.Fatal("no MAC vectors")
	}
	return f.Vectors
}

// macCodec is the Codec of spec vector id with the MAC key of mv.
func macCodec(t testing.TB, v vector, key string) *Codec {
	t.Helper()
	s := settings(t, v.Settings)
	s.MacKey = key
	c, err := s.Codec()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestMACVectors: the authenticated knock of each vector is its wire bytes
// and the tag, spelled as the vector's ports; the ports decode to the
// vector's fields; and the same ports are refused with another MAC key,
// with none, and with any one port changed.
func TestMACVectors(t *testing.T) {
	byID := map[string]vector{}
	for _, v := range loadVectors(t).Vectors {
		byID[v.ID] = v
	}
	for _, mv := range loadMACVectors(t) {
		t.Run(mv.ID, func(t *testing.T) {
			v := byID[mv.ID]
			c := macCodec(t, v, mv.MacKey)
			if got := MacTagLen(len(unhex(t, v.Wire)), c.Span.Bits()); got != mv.TagLen {
				t.Errorf("MacTagLen = %d, want %d", got, mv.TagLen)
			}
			want := record(t, v.Fields)
			knock, err := c.Knock(nil, &want, bytes.NewReader([]byte(v.Random)))
			if err != nil {
				t.Fatal(err)
			}
			if wantKnock := append(unhex(t, v.Wire), unhex(t, mv.Tag)...); !bytes.Equal(knock, wantKnock) {
				t.Errorf("Knock = %x\nwant   %x", knock, wantKnock)
			}
			ports, err := c.Encode(nil, &want, bytes.NewReader([]byte(v.Random)))
			if err != nil || !slices.Equal(ports, mv.Ports) {
				t.Errorf("Encode = %v, %v\nwant %v", ports, err, mv.Ports)
			}
			var got Record
			if _, ok := c.Decode(mv.Ports, &got); !ok {
				t.Fatal("the vector's ports do not decode")
			}
			if got.IP != want.IP || got.Port != want.Port || got.Flags != want.Flags {
				t.Errorf("decoded %+v, want %+v", got, want)
			}
			other := macCodec(t, v, mv.MacKey+"!")
			if _, ok := other.Decode(mv.Ports, &got); ok {
				t.Error("decoded with another MAC key")
			}
			plain := macCodec(t, v, "")
			if _, ok := plain.Decode(mv.Ports, &got); ok {
				t.Error("a door without MAC key decoded an authenticated knock")
			}
			if _, ok := c.Decode(v.Ports, &got); ok {
				t.Error("an unauthenticated knock decoded on a MAC door")
			}
			for i := range mv.Ports {
				bad := append([]uint16(nil), mv.Ports...)
				idx, _ := c.Span.Index(bad[i])
				bad[i] = c.Span.Port(idx ^ 1)
				if _, ok := c.Decode(bad, &got); ok {
					t.Errorf("port %d altered: still decodes", i)
				}
			}
		})
	}
}

// TestMACForgeries: the IV flip and the one-block cut of a captured
// authenticated knock fail the tag, before any decryption.
func TestMACForgeries(t *testing.T) {
	s := Settings{Portspan: "1024-1279", Knock: "IP,PORT,FLAG0,CHECKSUM", Key: "k", MacKey: "m"}
	c, err := s.Codec()
	if err != nil {
		t.Fatal(err)
	}
	r := Record{Port: 22}
	r.IP = netip.MustParseAddr("10.1.1.1")
	knock, err := c.Knock(nil, &r, strings.NewReader("12345678"))
	if err != nil {
		t.Fatal(err)
	}
	var got Record
	decodes := func(b []byte) bool {
		_, ok := c.Decode(c.Span.Encode(nil, b, TailPad), &got)
		return ok
	}
	if !decodes(knock) {
		t.Fatal("the knock itself does not decode")
	}
	for m := range 256 {
		f := bytes.Clone(knock)
		f[8+3] ^= 1 // the IP's last byte
		f[8+7] ^= byte(m)
		if decodes(f) {
			t.Fatalf("IV flip with checksum mask %d decodes", m)
		}
	}
	wn := c.WireLen(c.Layouts[0])
	for k := 16; k+8 <= wn; k += 8 {
		// A one-block knock (1-byte PORT): header, a chosen IV, block k,
		// and the captured tag (the attacker cannot make a new one).
		f := append(append([]byte("RandomIV"), make([]byte, 8)...), knock[k:k+8]...)
		f = append(f, knock[wn:]...)
		if decodes(f) {
			t.Fatalf("one-block cut of block %d decodes", k/8)
		}
	}
}

// FuzzDecodeMAC: the authenticated decoder never panics, and whatever it
// accepts carries the tag of its wire bytes.
func FuzzDecodeMAC(f *testing.F) {
	for _, mv := range loadMACVectors(f) {
		b := make([]byte, 0, 2*len(mv.Ports))
		for _, p := range mv.Ports {
			b = append(b, byte(p>>8), byte(p))
		}
		f.Add(b)
	}
	s := Settings{Portspan: "1024-1279", Knock: "IP,PORT,FLAG0,CHECKSUM", Key: "my_secret_phrase", MacKey: "mac key for V1", Header: "magic"}
	c, err := s.Codec()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		idx := make([]uint16, 0, len(b)/2)
		for i := 0; i+1 < len(b); i += 2 {
			idx = append(idx, (uint16(b[i])<<8|uint16(b[i+1]))%uint16(c.Span.Size()))
		}
		var r Record
		l, ok := c.DecodeIndexes(idx, &r)
		if !ok {
			return
		}
		wire := c.last
		n := c.KnockLen(l)
		full, _ := c.Span.DecodeIndexes(nil, idx, n, TailPad)
		if full == nil {
			full, _ = c.Span.DecodeIndexes(nil, idx, n, TailRaw)
		}
		if !bytes.Equal(full[:len(wire)], wire) || !bytes.Equal(c.mac.tag(wire)[:n-len(wire)], full[len(wire):]) {
			t.Fatalf("accepted %x without its tag", full)
		}
	})
}
