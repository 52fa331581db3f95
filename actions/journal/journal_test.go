package journal

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"hash/crc32"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC)

// door returns the entry a knock from 10.0.0.n would journal (ID unset).
func door(n int) Entry {
	addr := fmt.Sprintf("10.0.0.%d", n)
	return Entry{
		Door: "ssh",
		Name: "openSSH",
		Addr: addr,
		Stop: "/sbin/iptables -D INPUT -s " + addr + " -p tcp --dport 22 -j ACCEPT && logger closed",
		Due:  t0.Add(time.Duration(n) * time.Minute),
	}
}

func with(e Entry, id uint64, due time.Duration, failures int) Entry {
	e.ID, e.Due, e.Failures = id, e.Due.Add(due), failures
	return e
}

func open(t testing.TB, dir string) (*Journal, []Entry, []string) {
	t.Helper()
	j, got, err := Open(dir)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return j, got, j.Warnings()
}

func damagedWarning(dir string, n int) []string {
	if n == 0 {
		return nil
	}
	return []string{fmt.Sprintf("journal: ignored %d damaged records in %s; the file as read is saved as %s",
		n, filepath.Join(dir, FileName), DamagedName)}
}

// step is one call in a history; "reopen" shuts the journal down and opens
// it again, checking that it comes back with what it had.
type step struct {
	do       string // open, update, close, reopen
	n        int    // open: door(n); update, close: ID
	due      time.Duration
	failures int
}

func play(t testing.TB, dir string, steps []step) *Journal {
	t.Helper()
	j, _, _ := open(t, dir)
	for _, s := range steps {
		var err error
		switch s.do {
		case "open":
			_, err = j.OpenDoor(door(s.n))
		case "update":
			e := j.OpenDoors()[slices.IndexFunc(j.OpenDoors(), func(e Entry) bool { return e.ID == uint64(s.n) })]
			e.Due, e.Failures = e.Due.Add(s.due), s.failures
			err = j.UpdateDoor(e)
		case "close":
			err = j.CloseDoor(uint64(s.n))
		case "reopen":
			before := j.OpenDoors()
			if err := j.Shutdown(); err != nil {
				t.Fatal(err)
			}
			var got []Entry
			j, got, _ = open(t, dir)
			if !reflect.DeepEqual(got, before) {
				t.Fatalf("reopen: got %v, want %v", got, before)
			}
		}
		if err != nil {
			t.Fatalf("%+v: %v", s, err)
		}
	}
	return j
}

func TestRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name   string
		steps  []step
		want   []Entry
		nextID uint64
	}{
		{name: "empty", nextID: 1},
		{
			name:   "open two close one",
			steps:  []step{{do: "open", n: 1}, {do: "open", n: 2}, {do: "close", n: 1}},
			want:   []Entry{with(door(2), 2, 0, 0)},
			nextID: 3,
		},
		{
			name: "latest update wins",
			steps: []step{
				{do: "open", n: 1}, {do: "update", n: 1, due: time.Hour, failures: 1},
				{do: "update", n: 1, due: time.Hour, failures: 2}, {do: "open", n: 2},
			},
			want:   []Entry{with(door(1), 1, 2*time.Hour, 2), with(door(2), 2, 0, 0)},
			nextID: 3,
		},
		{
			name: "update after reopen",
			steps: []step{
				{do: "open", n: 1}, {do: "reopen"}, {do: "update", n: 1, due: time.Minute, failures: 3}, {do: "reopen"},
			},
			want:   []Entry{with(door(1), 1, time.Minute, 3)},
			nextID: 2,
		},
		{
			name: "IDs keep increasing when everything closed",
			steps: []step{
				{do: "open", n: 1}, {do: "close", n: 1}, {do: "reopen"}, {do: "open", n: 2}, {do: "close", n: 2},
				{do: "reopen"}, {do: "reopen"}, {do: "open", n: 3},
			},
			want:   []Entry{with(door(3), 3, 0, 0)},
			nextID: 4,
		},
		{
			name: "close then reopen keeps the rest",
			steps: []step{
				{do: "open", n: 1}, {do: "open", n: 2}, {do: "open", n: 3}, {do: "close", n: 2},
				{do: "reopen"}, {do: "close", n: 1}, {do: "update", n: 3, failures: 1},
			},
			want:   []Entry{with(door(3), 3, 0, 1)},
			nextID: 4,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			j := play(t, dir, tc.steps)
			if got := j.OpenDoors(); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Entries: got %v, want %v", got, tc.want)
			}
			j.Shutdown()
			j, got, warn := open(t, dir)
			defer j.Shutdown()
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("reopened: got %v, want %v", got, tc.want)
			}
			if warn != nil {
				t.Errorf("warnings: %q", warn)
			}
			e, err := j.OpenDoor(door(9))
			if err != nil || e.ID != tc.nextID {
				t.Errorf("next Open: ID %d, %v; want ID %d", e.ID, err, tc.nextID)
			}
		})
	}
}

func TestErrors(t *testing.T) {
	huge := door(1)
	huge.Stop = strings.Repeat("x", maxLine)
	for _, tc := range []struct {
		name string
		call func(j *Journal) error
		want string
	}{
		{"update unknown", func(j *Journal) error { return j.UpdateDoor(Entry{ID: 7}) }, "journal: update: no open entry 7"},
		{"close unknown", func(j *Journal) error { return j.CloseDoor(7) }, "journal: close: no open entry 7"},
		{"close twice", func(j *Journal) error { j.CloseDoor(1); return j.CloseDoor(1) }, "journal: close: no open entry 1"},
		{"invalid UTF-8", func(j *Journal) error {
			e := door(2)
			e.Stop = "rm \xff"
			_, err := j.OpenDoor(e)
			return err
		}, `journal: open: entry has invalid UTF-8 "rm \xff" (the journal cannot store it exactly)`},
		{"record too long", func(j *Journal) error { _, err := j.OpenDoor(huge); return err }, "journal: open: record is 65653 bytes, over the 65536-byte limit"},
		{"negative failures", func(j *Journal) error { return j.UpdateDoor(with(door(1), 1, 0, -1)) }, "journal: update: negative failures"},
		{"year out of range", func(j *Journal) error {
			return j.UpdateDoor(Entry{ID: 1, Due: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)})
		}, "journal: update: json: error calling MarshalJSON for type time.Time: Time.MarshalJSON: year outside of range [0,9999]"},
		{"open after shutdown", func(j *Journal) error { j.Shutdown(); _, err := j.OpenDoor(door(2)); return err }, ErrShutdown.Error()},
		{"close after shutdown", func(j *Journal) error { j.Shutdown(); return j.CloseDoor(1) }, ErrShutdown.Error()},
		{"compact after shutdown", func(j *Journal) error { j.Shutdown(); return j.Compact() }, ErrShutdown.Error()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			j, _, _ := open(t, dir)
			defer j.Shutdown()
			if _, err := j.OpenDoor(door(1)); err != nil {
				t.Fatal(err)
			}
			err := tc.call(j)
			if err == nil || err.Error() != tc.want {
				t.Fatalf("got %v, want %s", err, tc.want)
			}
			// A refused call changes nothing on disk.
			want := j.OpenDoors()
			j.Shutdown()
			j, got, _ := open(t, dir)
			defer j.Shutdown()
			if !reflect.DeepEqual(got, want) {
				t.Errorf("after error: got %v, want %v", got, want)
			}
		})
	}
}

// history writes a journal: open 1, 2, 3; update 2; close 3; open 4. It
// returns the file and the byte offsets of its lines (line 0 is the header
// written by Open's compaction).
func history(t testing.TB) (data []byte, lines [][2]int) {
	t.Helper()
	dir := t.TempDir()
	play(t, dir, []step{
		{do: "open", n: 1}, {do: "open", n: 2}, {do: "open", n: 3},
		{do: "update", n: 2, due: time.Hour, failures: 1}, {do: "close", n: 3}, {do: "open", n: 4},
	}).Shutdown()
	data, err := os.ReadFile(filepath.Join(dir, FileName))
	if err != nil {
		t.Fatal(err)
	}
	for start := 0; start < len(data); {
		end := start + bytes.IndexByte(data[start:], '\n') + 1
		lines = append(lines, [2]int{start, end})
		start = end
	}
	if len(lines) != 7 {
		t.Fatalf("history has %d lines:\n%s", len(lines), data)
	}
	return data, lines
}

var (
	e1  = with(door(1), 1, 0, 0)
	e2  = with(door(2), 2, 0, 0)
	e2u = with(door(2), 2, time.Hour, 1)
	e3  = with(door(3), 3, 0, 0)
	e4  = with(door(4), 4, 0, 0)
)

func reopenBytes(t *testing.T, data []byte, next uint64) (got []Entry, warn []string, dir string) {
	t.Helper()
	dir = t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, FileName), data, 0o600); err != nil {
		t.Fatal(err)
	}
	j, got, warn := open(t, dir)
	defer j.Shutdown()
	// Whatever was damaged, the next ID is past every ID the file shows.
	if e, err := j.OpenDoor(door(9)); err != nil || e.ID != next {
		t.Errorf("next Open: ID %d, %v; want %d", e.ID, err, next)
	}
	return got, warn, dir
}

func TestTornTail(t *testing.T) {
	data, lines := history(t)
	last := lines[len(lines)-1] // open 4
	for cut := last[0]; cut <= last[1]; cut++ {
		complete := cut >= last[1]-1 // with or without its newline
		next := uint64(4)
		if complete {
			next = 5
		}
		got, warn, dir := reopenBytes(t, data[:cut], next)
		want, damaged := []Entry{e1, e2u}, 0
		switch {
		case complete:
			want = []Entry{e1, e2u, e4}
		case cut > last[0]:
			damaged = 1
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("cut at %d: got %v, want %v", cut, got, want)
		}
		if w := damagedWarning(dir, damaged); !reflect.DeepEqual(warn, w) {
			t.Errorf("cut at %d: warnings %q, want %q", cut, warn, w)
		}
	}
}

func TestCorruptByte(t *testing.T) {
	data, lines := history(t)
	for _, tc := range []struct {
		name string
		line int
		want []Entry
		next uint64
	}{
		{"header", 0, []Entry{e1, e2u, e4}, 5},
		{"open loses the entry", 1, []Entry{e2u, e4}, 5},
		{"open restored by a later update", 2, []Entry{e1, e2u, e4}, 5},
		{"update keeps the previous state", 4, []Entry{e1, e2, e4}, 5},
		{"close leaves the door to close again", 5, []Entry{e1, e2u, e3, e4}, 5},
		{"last open", 6, []Entry{e1, e2u}, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := lines[tc.line]
			for off := l[0]; off < l[1]-1; off++ { // every byte but the newline
				for _, flip := range []byte{0x01, 0x20, 0x80} {
					bad := bytes.Clone(data)
					bad[off] ^= flip
					if off != l[0] && off != (l[0]+l[1])/2 {
						// The parser alone, for speed; Open on a few offsets.
						s := parse(bad)
						got := slices.SortedFunc(maps.Values(s.open), func(a, b Entry) int { return cmp.Compare(a.ID, b.ID) })
						if !reflect.DeepEqual(got, tc.want) || s.damaged != 1 || s.next != tc.next {
							t.Fatalf("byte %d ^ %#x: got %v, %d damaged, next %d; want %v, 1, %d", off, flip, got, s.damaged, s.next, tc.want, tc.next)
						}
						continue
					}
					got, warn, dir := reopenBytes(t, bad, tc.next)
					if !reflect.DeepEqual(got, tc.want) {
						t.Fatalf("byte %d ^ %#x: got %v, want %v", off, flip, got, tc.want)
					}
					if w := damagedWarning(dir, 1); !reflect.DeepEqual(warn, w) {
						t.Fatalf("byte %d ^ %#x: warnings %q, want %q", off, flip, warn, w)
					}
					if saved, _ := os.ReadFile(filepath.Join(dir, DamagedName)); !bytes.Equal(saved, bad) {
						t.Fatalf("byte %d: %s does not hold the file as read", off, DamagedName)
					}
				}
			}
		})
	}
}

// line returns a journal line with a correct checksum around js.
func line(js string) string {
	return fmt.Sprintf("%08x %s\n", crc32.Checksum([]byte(js), castagnoli), js)
}

func TestDamagedLines(t *testing.T) {
	ok := line(`{"op":"open","id":1,"door":"ssh","due":"2026-11-25T08:00:00Z"}`)
	want := []Entry{{ID: 1, Door: "ssh", Due: t0}}
	for _, tc := range []struct {
		name    string
		file    string
		want    []Entry
		damaged int
	}{
		{"good", ok, want, 0},
		{"over 64 KiB", ok + line(`{"op":"open","id":2,"stop":"`+strings.Repeat("x", maxLine)+`"}`), want, 1},
		{"uppercase checksum", ok + strings.ToUpper(line(`{"op":"open","id":2}`)[:8]) + line(`{"op":"open","id":2}`)[8:], want, 1},
		{"unknown op", ok + line(`{"op":"delete","id":1}`), want, 1},
		{"ID zero", ok + line(`{"op":"open","id":0}`), want, 1},
		{"ID too large", ok + line(`{"op":"open","id":18446744073709551615}`), want, 1},
		{"next too large", ok + line(`{"op":"next","next":18446744073709551615}`), want, 1},
		{"negative failures", ok + line(`{"op":"open","id":2,"failures":-1}`), want, 1},
		{"due past 9999 in UTC", ok + line(`{"op":"open","id":2,"due":"9999-12-31T23:00:00-05:00"}`), want, 1},
		{"not JSON", ok + line(`{"op":"open","id":2`), want, 1},
		{"empty lines", "\n" + ok + "\n\n", want, 3},
		{"NUL tail", ok + "\x00\x00\x00\x00", want, 1},
		{"CRLF", strings.ReplaceAll(ok, "\n", "\r\n"), nil, 1},
		{"close of an unknown ID is not damage", ok + line(`{"op":"close","id":3}`), want, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			os.WriteFile(filepath.Join(dir, FileName), []byte(tc.file), 0o600)
			j, got, warn := open(t, dir)
			defer j.Shutdown()
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
			if w := damagedWarning(dir, tc.damaged); !reflect.DeepEqual(warn, w) {
				t.Errorf("warnings %q, want %q", warn, w)
			}
			if w := j.Warnings(); w != nil {
				t.Errorf("warnings are not drained: %q", w)
			}
		})
	}
}

func TestTooBig(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, FileName)
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	f.Truncate(maxFile + 1) // sparse
	f.Close()
	_, _, err = Open(dir)
	want := fmt.Sprintf("journal: %s is over 64 MiB; not reading it: inspect it, then move it away", path)
	if err == nil || err.Error() != want {
		t.Fatalf("got %v, want %s", err, want)
	}
	os.Remove(path) // the admin looked; the lock was released
	j, _, _ := open(t, dir)
	j.Shutdown()
}

func TestLock(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	j, _, _ := open(t, dir)
	fi, err := os.Stat(dir)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("state directory: %v, %v; want mode 0700", fi.Mode(), err)
	}
	_, _, err = Open(dir)
	want := fmt.Sprintf("state directory %s is in use by another process", dir)
	if err == nil || err.Error() != want || !errors.Is(err, ErrInUse) {
		t.Fatalf("second Open: got %v, want %s", err, want)
	}
	if err := j.Shutdown(); err != nil {
		t.Fatal(err)
	}
	if err := j.Shutdown(); err != nil {
		t.Fatalf("second Shutdown: %v", err)
	}
	j, _, _ = open(t, dir)
	j.Shutdown()
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func TestCompact(t *testing.T) {
	dir := t.TempDir()
	stale := filepath.Join(dir, "doors.journal.123.tmp") // a crash during compaction
	os.WriteFile(stale, []byte("half a journ"), 0o600)
	j := play(t, dir, []step{
		{do: "open", n: 1}, {do: "open", n: 2}, {do: "open", n: 3}, {do: "open", n: 4},
		{do: "close", n: 1}, {do: "close", n: 3}, {do: "update", n: 4, due: time.Hour, failures: 2},
	})
	defer j.Shutdown()
	if err := j.Compact(); err != nil {
		t.Fatal(err)
	}
	var want []byte
	for _, r := range []record{
		{Op: opNext, Next: 5}, entryRecord(opOpen, e2), entryRecord(opOpen, with(door(4), 4, time.Hour, 2)),
	} {
		l, _ := encode(r)
		want = append(want, l...)
	}
	got, _ := os.ReadFile(filepath.Join(dir, FileName))
	if !bytes.Equal(got, want) {
		t.Errorf("compacted file:\n%s\nwant:\n%s", got, want)
	}
	if names := dirNames(t, dir); !slices.Equal(names, []string{FileName, LockName}) {
		t.Errorf("state directory holds %q", names)
	}
	// Appends after a compaction go to the new file.
	if _, err := j.OpenDoor(door(5)); err != nil {
		t.Fatal(err)
	}
	want = append(want, must(encode(entryRecord(opOpen, with(door(5), 5, 0, 0))))...)
	if got, _ := os.ReadFile(filepath.Join(dir, FileName)); !bytes.Equal(got, want) {
		t.Errorf("after append:\n%s\nwant:\n%s", got, want)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestAutoCompact(t *testing.T) {
	dir := t.TempDir()
	j, _, _ := open(t, dir)
	defer j.Shutdown()
	keep, err := j.OpenDoor(door(1))
	if err != nil {
		t.Fatal(err)
	}
	written, maxSize := int64(0), int64(0)
	for i := range 600 {
		e, err := j.OpenDoor(door(2 + i%200))
		if err != nil {
			t.Fatal(err)
		}
		if err := j.CloseDoor(e.ID); err != nil {
			t.Fatal(err)
		}
		written += 2 * 150
		fi, _ := os.Stat(filepath.Join(dir, FileName))
		maxSize = max(maxSize, fi.Size())
	}
	if maxSize > compactMin+1024 || maxSize >= written/2 {
		t.Errorf("journal grew to %d bytes", maxSize)
	}
	if w := j.Warnings(); w != nil {
		t.Errorf("warnings: %q", w)
	}
	if got := j.OpenDoors(); !reflect.DeepEqual(got, []Entry{keep}) {
		t.Errorf("got %v", got)
	}
}

func BenchmarkOpenClose(b *testing.B) {
	dir := b.TempDir()
	j, _, err := Open(dir)
	if err != nil {
		b.Fatal(err)
	}
	defer j.Shutdown()
	e := door(1)
	for b.Loop() {
		o, err := j.OpenDoor(e)
		if err != nil {
			b.Fatal(err)
		}
		if err := j.CloseDoor(o.ID); err != nil {
			b.Fatal(err)
		}
	}
}
