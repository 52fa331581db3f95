package state

import (
	"container/list"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files")

var t0 = time.Date(2024, 11, 5, 10, 0, 0, 0, time.UTC)

func k(parts ...string) []string { return parts }

func dump(s *Store) string {
	var b strings.Builder
	for _, e := range s.Entries() {
		fmt.Fprintf(&b, "%s=%s@%d ", strings.Join(e.Key, "/"), e.Value, e.Updated.Unix()-t0.Unix())
	}
	return strings.TrimSpace(b.String())
}

func open(t *testing.T, path string, o Options) *Store {
	t.Helper()
	s, err := Open(path, o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestPersistAcrossReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	s := open(t, path, Options{})
	must(t, s.Set(k("10.1.1.1", "visits", "num"), "2", t0))
	must(t, s.Set(k("10.1.1.1", "visits", "prevtime"), "1730800800", t0.Add(time.Second)))
	must(t, s.Set(k("10.1.1.1", "uniqueval", "7"), "1", t0.Add(2*time.Second)))
	must(t, s.Set(k("10.1.1.1", "visits", "num"), "3", t0.Add(3*time.Second))) // moves to the end
	if !s.Delete(k("10.1.1.1", "uniqueval", "7")) {
		t.Fatal("Delete found nothing")
	}
	must(t, s.Set(k("2001:db8::1", "a b", "é"), "x", t0.Add(4*time.Second)))
	must(t, s.Close())

	golden := filepath.Join("testdata", "cache.golden")
	data, err := os.ReadFile(path)
	must(t, err)
	if *update {
		must(t, os.WriteFile(golden, data, 0o644))
	}
	want, err := os.ReadFile(golden)
	must(t, err)
	if string(data) != string(want) {
		t.Errorf("cache file:\n%s\nwant:\n%s", data, want)
	}

	s = open(t, path, Options{})
	defer s.Close()
	want2 := "10.1.1.1/visits/prevtime=1730800800@1 10.1.1.1/visits/num=3@3 2001:db8::1/a b/é=x@4"
	if got := dump(s); got != want2 {
		t.Errorf("after reopen: %s\nwant %s", got, want2)
	}
	if v, ok := s.Get(k("10.1.1.1", "visits", "num")); !ok || v != "3" {
		t.Errorf("Get = %q, %v", v, ok)
	}
	if _, ok := s.Get(k("10.1.1.1", "visits")); ok {
		t.Errorf("a key prefix reads as an entry")
	}
}

// TestKeysDoNotCollide: paths that join to the same text are different.
func TestKeysDoNotCollide(t *testing.T) {
	s := open(t, "", Options{})
	must(t, s.Set(k("a,b", "c"), "1", t0))
	must(t, s.Set(k("a", "b,c"), "2", t0))
	must(t, s.Set(k("a:b"), "3", t0))
	must(t, s.Set(k("1:a", "b"), "4", t0))
	if s.Len() != 4 {
		t.Errorf("%d entries, want 4: %s", s.Len(), dump(s))
	}
}

func TestTornTempFileIgnored(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state.json")
	s := open(t, path, Options{})
	must(t, s.Set(k("a"), "1", t0))
	must(t, s.Close())
	torn := filepath.Join(dir, ".state.json.12345.tmp")
	must(t, os.WriteFile(torn, []byte(`{"format":"doorward-state","version":1,"entries":[`+"\n"+`{"key":["a"],"val`), 0o600))
	other := filepath.Join(dir, "unrelated.tmp")
	must(t, os.WriteFile(other, nil, 0o600))

	s = open(t, path, Options{})
	defer s.Close()
	if got := dump(s); got != "a=1@0" {
		t.Errorf("state %q", got)
	}
	if _, err := os.Stat(torn); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("torn temp file left behind: %v", err)
	}
	if _, err := os.Stat(other); err != nil {
		t.Errorf("unrelated file removed: %v", err)
	}
}

// TestCrashBeforeRename: a crash after the temp file is written but before
// it replaces the cache leaves the old cache, complete; a later Flush
// writes the new state.
func TestCrashBeforeRename(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state.json")
	s := open(t, path, Options{})
	must(t, s.Set(k("a"), "1", t0))
	must(t, s.Flush())
	before, _ := os.ReadFile(path)

	must(t, s.Set(k("a"), "2", t0))
	s.crash = func(string) { panic("crash") }
	func() {
		defer func() { recover() }()
		s.Flush()
	}()
	after, _ := os.ReadFile(path)
	if string(after) != string(before) {
		t.Fatalf("cache changed by an interrupted write:\n%s", after)
	}
	// The "crashed" process's temp file is still there; a new process
	// (after the lock is gone) ignores it.
	s.lock.Close()
	s2 := open(t, path, Options{})
	if got := dump(s2); got != "a=1@0" {
		t.Errorf("after crash: %q", got)
	}
	tmps, _ := filepath.Glob(filepath.Join(dir, ".state.json.*.tmp"))
	if len(tmps) != 0 {
		t.Errorf("temp files left: %v", tmps)
	}
	must(t, s2.Set(k("a"), "2", t0))
	must(t, s2.Close())
	s3 := open(t, path, Options{})
	defer s3.Close()
	if got := dump(s3); got != "a=2@0" {
		t.Errorf("after a successful flush: %q", got)
	}
}

// TestEveryFlushIsComplete reads the cache after every change: it always
// parses and holds exactly what had been flushed.
func TestEveryFlushIsComplete(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	s := open(t, path, Options{MaxEntries: 50})
	defer s.Close()
	for i := range 200 {
		must(t, s.Set(k("ip", fmt.Sprint(i%70)), fmt.Sprint(i), t0.Add(time.Duration(i)*time.Second)))
		must(t, s.Flush())
		r, err := readOnly(path)
		if err != nil {
			t.Fatalf("after change %d: %v", i, err)
		}
		got := r.Entries()
		if !slices.EqualFunc(got, s.Entries(), func(a, b Entry) bool {
			return slices.Equal(a.Key, b.Key) && a.Value == b.Value && a.Updated.Equal(b.Updated)
		}) {
			t.Fatalf("after change %d: file has %d entries, memory %d", i, len(got), s.Len())
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// readOnly loads a cache file as Open would, without taking the lock that
// the writer holds.
func readOnly(path string) (*Store, error) {
	r := &Store{path: path, max: DefaultMax, logf: func(string, ...any) {}, entries: map[string]*list.Element{}, order: list.New()}
	return r, r.load()
}

func TestEviction(t *testing.T) {
	var logs []string
	s := open(t, "", Options{MaxEntries: 3, Logf: func(f string, a ...any) { logs = append(logs, fmt.Sprintf(f, a...)) }})
	must(t, s.Set(k("a"), "1", t0))
	must(t, s.Set(k("b"), "1", t0.Add(1*time.Second)))
	must(t, s.Set(k("c"), "1", t0.Add(2*time.Second)))
	must(t, s.Set(k("a"), "2", t0.Add(3*time.Second))) // a is now the most recent
	must(t, s.Set(k("d"), "1", t0.Add(4*time.Second))) // evicts b
	if got, want := dump(s), "c=1@2 a=2@3 d=1@4"; got != want {
		t.Errorf("state %q, want %q", got, want)
	}
	want := []string{"state: store full (3 entries): evicted the 1 least recently updated"}
	if !slices.Equal(logs, want) {
		t.Errorf("logs %q, want %q", logs, want)
	}
}

// TestLoadOverBound: a cache written with a larger bound keeps its most
// recently updated entries.
func TestLoadOverBound(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	s := open(t, path, Options{})
	for i := range 5 {
		must(t, s.Set(k(fmt.Sprint(i)), "x", t0.Add(time.Duration(i)*time.Second)))
	}
	must(t, s.Close())
	s = open(t, path, Options{MaxEntries: 2})
	defer s.Close()
	if got := dump(s); got != "3=x@3 4=x@4" {
		t.Errorf("state %q", got)
	}
}

func TestLimits(t *testing.T) {
	s := open(t, "", Options{})
	long := strings.Repeat("x", MaxPartLen+1)
	tests := []struct {
		name  string
		key   []string
		value string
		want  string
	}{
		{"no key", nil, "1", "state(): a key has 1 to 16 parts, not 0"},
		{"too many parts", make([]string, 17), "1", "state(,,,,,,,,,,,,,,,,): a key has 1 to 16 parts, not 17"},
		{"long part", k(long), "1", "key part longer than 256 bytes"},
		{"long value", k("a"), strings.Repeat("v", MaxValueLen+1), "state(a): value longer than 1024 bytes"},
		{"bad utf-8", k("\xff"), "1", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.Set(tt.key, tt.value, t0)
			if tt.want == "" {
				return
			}
			if err == nil || !strings.HasSuffix(err.Error(), tt.want) {
				t.Errorf("Set: %v, want %s", err, tt.want)
			}
		})
	}
	if err := s.Set(k(string([]byte{0xff})), "1", t0); err == nil {
		t.Errorf("a key that is not UTF-8 was stored")
	}
}

func TestForeignFileRefused(t *testing.T) {
	tests := map[string]string{
		"perl storable": "pst0\x04\x0b\x03binary",
		"other json":    `{"a":1}`,
		"truncated":     `{"format":"doorward-state","version":1,"entries":[` + "\n" + `{"key":["a"],"value":"1"}`,
		"future":        `{"format":"doorward-state","version":2,"entries":[]}`,
		"bad entry":     `{"format":"doorward-state","version":1,"entries":[{"key":[],"value":"1"}]}`,
	}
	for name, content := range tests {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "portknock.cache")
			must(t, os.WriteFile(path, []byte(content), 0o600))
			s, err := Open(path, Options{})
			if err == nil {
				s.Close()
				t.Fatal("Open accepted a file that is not a doorward state cache")
			}
			if got, _ := os.ReadFile(path); string(got) != content {
				t.Errorf("the file was changed")
			}
			// The lock was released: a second try gets the same error, not "in use".
			if _, err2 := Open(path, Options{}); errors.Is(err2, ErrInUse) {
				t.Errorf("lock kept after a failed Open")
			}
		})
	}
}

func TestInUse(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	s := open(t, path, Options{})
	_, err := Open(path, Options{})
	if !errors.Is(err, ErrInUse) {
		t.Errorf("second Open: %v, want ErrInUse", err)
	}
	must(t, s.Close())
	s2 := open(t, path, Options{})
	must(t, s2.Close())
}

func TestMemoryOnly(t *testing.T) {
	s := open(t, "", Options{})
	must(t, s.Set(k("a"), "1", t0))
	must(t, s.Flush())
	must(t, s.Close())
	if s.Durable() {
		t.Error("memory store is durable")
	}
}

// TestFlushOnlyWhenChanged: a knock that changed nothing writes nothing.
func TestFlushOnlyWhenChanged(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	s := open(t, path, Options{})
	defer s.Close()
	must(t, s.Flush())
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("an unchanged store was written: %v", err)
	}
	must(t, s.Set(k("a"), "1", t0))
	must(t, s.Flush())
	must(t, os.Remove(path))
	must(t, s.Flush())
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a clean store was written again")
	}
}
