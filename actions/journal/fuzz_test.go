package journal

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// FuzzRead feeds arbitrary bytes to Open as a journal file. Open must not
// fail or panic; it returns well-formed entries in ID order; the file it
// rewrites reads back the same with no damage; the next ID is past them.
func FuzzRead(f *testing.F) {
	data, _ := history(f)
	f.Add(data)
	f.Add(data[:len(data)-20])
	f.Add([]byte{})
	f.Add([]byte("\n\n\x00\x00"))
	f.Add([]byte(line(`{"op":"open","id":1,"door":"ssh","name":"n","addr":"::1","stop":"x","due":"2026-11-25T08:00:00+01:00","failures":2}`) +
		line(`{"op":"update","id":7,"due":"9999-12-31T23:59:59Z"}`) + line(`{"op":"close","id":1}`) +
		line(`{"op":"open","id":4611686018427387903}`) + line(`{"op":"next","next":4611686018427387904}`) +
		line(`{"op":"open","id":2,"id":3,"Door":"\xff\u2028","stop":"a\nb"}`) + line(`{"op":"open","id":5,"failures":-1}`) +
		line(`{"op":"open","id":6,"due":"0000-01-01T00:30:00+01:00"}`) + line(`[]`) + line(`null`) +
		line(`{"op":"close","id":5,"extra":[1,2,{}]}`) + "0000000 {}\n" + strings.Repeat("x", maxLine+5)))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := memDir(t)
		if err := os.WriteFile(filepath.Join(dir, FileName), data, 0o600); err != nil {
			t.Fatal(err)
		}
		j, got, err := Open(dir)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		var last uint64
		for _, e := range got {
			if e.ID <= last || e.ID >= maxID || e.Failures < 0 || e.Due.Location() != time.UTC ||
				e.Due.Year() < 0 || e.Due.Year() > 9999 || checkEntry(e) != nil {
				t.Fatalf("bad entry %+v after ID %d", e, last)
			}
			last = e.ID
		}
		next, err := j.OpenDoor(Entry{Door: "d"})
		if last == maxID-1 && err != nil && err.Error() == "journal: open: IDs exhausted" {
			j.Shutdown()
			return
		}
		if err != nil || next.ID <= last {
			t.Fatalf("next Open: %+v, %v after ID %d", next, err, last)
		}
		j.Shutdown()
		j, again, err := Open(dir)
		if err != nil {
			t.Fatalf("reopen: %v", err)
		}
		defer j.Shutdown()
		if want := append(got, next); !reflect.DeepEqual(again, want) {
			t.Fatalf("reopen: got %v, want %v", again, want)
		}
		if w := j.Warnings(); w != nil {
			t.Fatalf("reopen: %q", w)
		}
		for _, e := range again {
			if !utf8.ValidString(e.Stop) {
				t.Fatalf("invalid UTF-8 in %+v", e)
			}
		}
	})
}

// memDir is a temporary directory on tmpfs if there is one: fsync is the
// cost of every Open, and the fuzzer runs thousands.
func memDir(t *testing.T) string {
	dir, err := os.MkdirTemp("/dev/shm", "journal-fuzz-")
	if err != nil {
		return t.TempDir()
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}
