package doorman

import (
	"crypto/md5"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func digest(s string) [md5.Size]byte { return md5.Sum([]byte(s)) }

// TestIndex pins the slot formula: the four little-endian words summed
// modulo 2^32, sign bit cleared, modulo size.
func TestIndex(t *testing.T) {
	var d [md5.Size]byte
	for i := range 4 {
		binary.LittleEndian.PutUint32(d[4*i:], 0xffffffff)
	}
	// 4 × 0xffffffff = 0x3fffffffc, mod 2^32 = 0xfffffffc, & 0x7fffffff = 0x7ffffffc.
	if got, want := Index(d, 1000), 0x7ffffffc%1000; got != want {
		t.Errorf("Index = %d, want %d", got, want)
	}
	binary.LittleEndian.PutUint32(d[0:], 1)
	for i := 1; i < 4; i++ {
		binary.LittleEndian.PutUint32(d[4*i:], 2)
	}
	if got := Index(d, 5); got != 7%5 {
		t.Errorf("Index = %d, want 2", got)
	}
}

// TestArchiveLayout writes a record and reads the file back byte for byte:
// digest, then the time as int64 little-endian, at slot*24.
func TestArchiveLayout(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hash")
	a, info, err := OpenArchive(path, MinRecords)
	if err != nil {
		t.Fatal(err)
	}
	if !info.Created {
		t.Errorf("info = %+v, want Created", info)
	}
	d := digest("knock")
	at := time.Unix(1700000000, 0)
	if err := a.Add(d, at); err != nil {
		t.Fatal(err)
	}
	a.Close()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(data) != MinRecords*RecordSize {
		t.Fatalf("file is %d bytes, want %d", len(data), MinRecords*RecordSize)
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	off := Index(d, MinRecords) * RecordSize
	if [md5.Size]byte(data[off:off+md5.Size]) != d || binary.LittleEndian.Uint64(data[off+md5.Size:]) != 1700000000 {
		t.Errorf("record at slot %d = % x", off/RecordSize, data[off:off+RecordSize])
	}
}

// TestArchivePersists is the replay-across-restart property at the file
// level: a digest added before Close is found by the next OpenArchive.
func TestArchivePersists(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hash")
	a, _, err := OpenArchive(path, 2000)
	if err != nil {
		t.Fatal(err)
	}
	d := digest("x")
	a.Add(d, time.Unix(42, 0))
	a.Close()
	b, info, err := OpenArchive(path, 2000)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if info != (OpenInfo{}) {
		t.Errorf("reopen: %+v, want nothing done", info)
	}
	if at, ok := b.Lookup(d); !ok || at.Unix() != 42 {
		t.Errorf("Lookup after reopen = %v, %v", at, ok)
	}
}

// TestArchiveAnySlot: a record in the "wrong" slot (as a 64-bit doormand
// writes them) is still found.
func TestArchiveAnySlot(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hash")
	d := digest("written by a 64-bit doormand")
	a := openForeign(t, path, map[int]Record{(Index(d, MinRecords) + 7) % MinRecords: {d, 99}})
	if at, ok := a.Lookup(d); !ok || at.Unix() != 99 {
		t.Errorf("Lookup = %v, %v; want found at 99", at, ok)
	}
}

// TestArchiveCreateAndResize covers §6's creation rules and the resize
// doormand gets wrong.
func TestArchiveCreateAndResize(t *testing.T) {
	dir := t.TempDir()
	t.Run("small file is recreated", func(t *testing.T) {
		path := filepath.Join(dir, "small")
		os.WriteFile(path, make([]byte, 999*RecordSize), 0o644)
		a, info, err := OpenArchive(path, 1500)
		if err != nil {
			t.Fatal(err)
		}
		a.Close()
		fi, _ := os.Stat(path)
		if !info.Created || fi.Size() != 1500*RecordSize || fi.Mode().Perm() != 0o600 {
			t.Errorf("info %+v, size %d, mode %v", info, fi.Size(), fi.Mode().Perm())
		}
	})
	for _, tc := range []struct {
		name     string
		from, to int
	}{{"grow", 1000, 5000}, {"shrink", 5000, 1000}} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, tc.name)
			a, _, err := OpenArchive(path, tc.from)
			if err != nil {
				t.Fatal(err)
			}
			var ds [][md5.Size]byte
			for i := range 50 {
				d := digest(string(rune('a' + i)))
				ds = append(ds, d)
				a.Add(d, time.Unix(int64(1000+i), 0))
			}
			a.Close()
			b, info, err := OpenArchive(path, tc.to)
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			if !info.Resized || info.From != tc.from {
				t.Errorf("info = %+v", info)
			}
			lost := 0
			for _, d := range ds {
				if _, ok := b.Lookup(d); !ok {
					lost++
				}
			}
			// Only collisions in the new size may lose a record.
			if lost != 50-info.Kept || info.Kept < 45 {
				t.Errorf("kept %d, lost %d of 50", info.Kept, lost)
			}
			fi, _ := os.Stat(path)
			if fi.Size() != int64(tc.to)*RecordSize {
				t.Errorf("size %d", fi.Size())
			}
			// The resized file is in the new layout: reopening changes nothing.
			b.Close()
			c, info, _ := OpenArchive(path, tc.to)
			c.Close()
			if info != (OpenInfo{}) {
				t.Errorf("second open: %+v", info)
			}
		})
	}
	t.Run("size out of range", func(t *testing.T) {
		if _, _, err := OpenArchive(filepath.Join(dir, "x"), 999); err == nil {
			t.Error("size 999 accepted")
		}
	})
}

// TestArchiveEvict: an insert evicts whatever had the slot, and the index
// follows; a digest present twice (foreign writer) survives one eviction.
func TestArchiveEvict(t *testing.T) {
	a := NewMemoryArchive(MinRecords)
	d1 := digest("one")
	var d2 [md5.Size]byte
	for i := 0; ; i++ { // find another digest with the same slot
		d2 = digest(string(rune(i)) + "two")
		if Index(d2, MinRecords) == Index(d1, MinRecords) && d2 != d1 {
			break
		}
	}
	a.Add(d1, time.Unix(1, 0))
	a.Add(d2, time.Unix(2, 0))
	if _, ok := a.Lookup(d1); ok {
		t.Error("d1 still found after eviction")
	}
	if _, ok := a.Lookup(d2); !ok {
		t.Error("d2 not found")
	}
	// d2 also in another slot: evicting one copy keeps it findable.
	slot := Index(d2, MinRecords)
	a = openForeign(t, filepath.Join(t.TempDir(), "hash"), map[int]Record{slot: {d2, 2}, (slot + 1) % MinRecords: {d2, 3}})
	a.Add(d1, time.Unix(4, 0))
	if at, ok := a.Lookup(d2); !ok || at.Unix() != 3 {
		t.Errorf("d2 after evicting one of its copies: %v, %v", at, ok)
	}
}

func TestArchiveMerge(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hash")
	old, _, _ := OpenArchive(path, MinRecords)
	nw, _, _ := OpenArchive(path, MinRecords)
	defer nw.Close()
	d := digest("accepted by the old config after the new one loaded")
	old.Add(d, time.Unix(7, 0))
	old.Close()
	if _, ok := nw.Lookup(d); ok {
		t.Fatal("test is wrong: nw already has d")
	}
	if err := nw.Merge(old); err != nil {
		t.Fatal(err)
	}
	if at, ok := nw.Lookup(d); !ok || at.Unix() != 7 {
		t.Errorf("after Merge: %v, %v", at, ok)
	}
}

// openForeign writes an archive of MinRecords slots holding recs at the
// slots given (as a foreign writer may place them) and opens it.
func openForeign(t *testing.T, path string, recs map[int]Record) *Archive {
	t.Helper()
	buf := make([]byte, MinRecords*RecordSize)
	for slot, r := range recs {
		copy(buf[slot*RecordSize:], r.Digest[:])
		binary.LittleEndian.PutUint64(buf[slot*RecordSize+md5.Size:], uint64(r.Time))
	}
	if err := os.WriteFile(path, buf, 0o600); err != nil {
		t.Fatal(err)
	}
	a, _, err := OpenArchive(path, MinRecords)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}
