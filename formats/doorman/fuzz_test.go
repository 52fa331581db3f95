package doorman

import (
	"crypto/md5"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// FuzzParse: Parse never panics, returns fields that obey doormand's
// limits and contain no space or NUL, and Format's output always parses
// back and verifies.
func FuzzParse(f *testing.F) {
	for _, v := range vectors(f) {
		f.Add([]byte(v.payload), v.secret)
		f.Add([]byte(v.payload+"\n"), v.secret)
	}
	f.Add([]byte("22 martink 4270a3248a23c209b37d35bb060e1cd6"), "") // three fields
	f.Add([]byte("  022\tx  y\x00z"), "s")
	f.Fuzz(func(t *testing.T, payload []byte, secret string) {
		k, err := Parse(payload)
		if err == ErrTokens {
			return
		}
		for _, fld := range [][]byte{k.Service, k.Group, k.Tag, k.Hash} {
			for _, c := range fld {
				if c == ' ' || c == 0 {
					t.Fatalf("field %q contains a separator", fld)
				}
			}
		}
		if err == nil {
			if len(k.Service) > MaxService || len(k.Group) > MaxGroup || len(k.Tag) > MaxTag || len(k.Hash) != HashLen {
				t.Fatalf("accepted lengths %d %d %d %d", len(k.Service), len(k.Group), len(k.Tag), len(k.Hash))
			}
			k.Verify([]byte(secret))
		}
		// Round trip with a group taken from the fuzz input.
		group := string(k.Group)
		if group == "" {
			return
		}
		p := Format(22, group, 12345, []byte(secret))
		k2, err := Parse(p)
		if len(group) <= MaxGroup && err != nil {
			t.Fatalf("Format output %q does not parse: %v", p, err)
		}
		if err == nil {
			if _, ok := k2.Verify([]byte(secret)); !ok {
				t.Fatalf("Format output %q does not verify", p)
			}
		}
	})
}

// FuzzArchive: an archive file with any content is read (recreated when
// too small, resized when its count differs) without panicking, and the
// result works: every record that survived is found, in whatever slot,
// and a digest added is found. The file round trip itself is covered by
// the unit tests; here it is all in memory, so the fuzzer runs fast.
func FuzzArchive(f *testing.F) {
	// Small seeds (the fuzzer is slow on large inputs); the body tiles
	// them up to a full archive.
	f.Add([]byte{}, uint16(0))
	f.Add(make([]byte, RecordSize), uint16(0))
	rec := make([]byte, 3*RecordSize+7)
	for i := range rec {
		rec[i] = byte(i * 7)
	}
	f.Add(rec, uint16(2))
	f.Add(rec, uint16(1))
	f.Fuzz(func(t *testing.T, data []byte, extra uint16) {
		// Most inputs are small: tile them to reach MinRecords records
		// often, so the index and resize paths run too.
		if len(data) > 0 && len(data) < MinRecords*RecordSize && extra%2 == 0 {
			for len(data) < MinRecords*RecordSize {
				data = append(data, data...)
			}
		}
		old := ReadRecords(data)
		if len(old) != len(data)/RecordSize {
			t.Fatalf("%d records from %d bytes", len(old), len(data))
		}
		size := MinRecords + int(extra)%3*500
		path := filepath.Join(t.TempDir(), "hash")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		a, info, err := OpenArchive(path, size)
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		recs := a.Records()
		if len(recs) != size {
			t.Fatalf("%d slots, want %d", len(recs), size)
		}
		if !info.Created && !info.Resized && len(old) != size {
			t.Fatalf("kept a file of %d records as %d", len(old), size)
		}
		for _, r := range recs {
			if r.Digest != ([md5.Size]byte{}) {
				if _, ok := a.Lookup(r.Digest); !ok {
					t.Fatalf("record %x in the table but not found", r.Digest)
				}
			}
		}
		d := md5.Sum(data)
		a.Add(d, time.Unix(5, 0))
		if at, ok := a.Lookup(d); !ok || at.Unix() != 5 {
			t.Fatal("added digest not found")
		}
		if a.Records()[Index(d, size)].Digest != d {
			t.Fatal("added digest not in its slot")
		}
	})
}
