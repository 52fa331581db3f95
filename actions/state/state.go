// Package state is the store behind knockdaemon's state(K1,K2,…): entries
// keyed by a path of strings (state(IP,visits,num) on a knock from
// 10.1.1.1 is the entry 10.1.1.1 → visits → num), kept in memory and, when
// a cache file is configured, on disk so that a restart loses nothing.
//
// Each full key path is one entry: state(A,B) and state(A,B,C) are
// different entries, and reading state(A,B) does not tell whether entries
// below it exist (Perl would have returned a hash reference there).
//
// # Durability
//
// Changes are made in memory (Set, Delete) and written by Flush, which the
// action calls once per knock, after the knock's State statements and
// before its commands run. Flush writes the whole store to a temp file in
// the cache's directory, fsyncs it, renames it over the cache and fsyncs
// the directory: a crash at any point leaves the old file or the new one,
// both complete; leftover temp files are ignored and removed at Open. So a
// knock whose commands ran is on disk, and a crash loses at most the knock
// being handled. If Flush fails the action does not run the knock's
// commands (a one-time knock that could be replayed after a restart is not
// honoured), and the next Flush tries again.
//
// # Bounds
//
// The store holds at most MaxEntries entries (default 100 000, about 10 MB
// of cache). When a Set would exceed it, the entry updated least recently
// is evicted and the eviction is logged. Beware: an evicted "this value was
// used" entry makes that one-time knock usable again; size the bound for
// the knocks you expect (the Perl prototype's store grew without bound).
//
// # Format
//
// The cache is JSON, one entry per line, oldest update first:
//
//	{"format":"doorward-state","version":1,"entries":[
//	{"key":["10.1.1.1","visits","num"],"value":"2","updated":"2024-11-05T10:00:00Z"}
//	]}
//
// The Perl knockdaemon's cache format is not documented and is not read: a
// new cache starts empty, and a file that is not ours is refused rather
// than overwritten.
//
// Only one process may use a cache: Open takes an exclusive flock on
// FILE.lock until Close. The cache, its lock and their directory must pass
// internal/trust (owned by root or the daemon's uid, not writable by group
// or others, no symbolic link followed): a cache under /tmp, the Perl
// default, is refused.
package state

import (
	"bytes"
	"container/list"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/doorward/doorward/actions"

	"github.com/doorward/doorward/internal/flock"
	"github.com/doorward/doorward/internal/trust"
)

// Limits on one entry, checked by Set and on load.
const (
	MaxKeyParts   = 16
	MaxPartLen    = 256
	MaxValueLen   = 1024
	DefaultMax    = 100_000
	maxFile       = 64 << 20
	formatName    = "doorward-state"
	formatVersion = 1
)

// ErrInUse is wrapped by the error Open returns when another process holds
// the cache.
var ErrInUse = errors.New("in use by another process")

// Options tune a Store.
type Options struct {
	// MaxEntries bounds the store; 0 means DefaultMax.
	MaxEntries int
	// Logf receives evictions and load notes; nil discards them.
	Logf actions.Logf
}

// Entry is one state entry.
type Entry struct {
	Key     []string
	Value   string
	Updated time.Time // when it was last set (the knock's time)
}

// Store is the state. It is not safe for concurrent use: the knockdaemon
// action drives it from one goroutine.
type Store struct {
	path    string // "" keeps the state in memory only
	lock    *os.File
	max     int
	logf    actions.Logf
	entries map[string]*list.Element // of *Entry, by encoded key
	order   *list.List               // least recently updated first
	dirty   bool
	evicted int // since the last log line

	// crash, if set, is called where a test simulates a crash: "synced"
	// (temp file complete and fsynced, not yet renamed).
	crash func(point string)
}

// Open returns the store kept in path, reading it if it exists; path ""
// gives a store in memory only. On error nothing is left locked.
func Open(path string, o Options) (*Store, error) {
	s := &Store{path: path, max: o.MaxEntries, logf: o.Logf, entries: map[string]*list.Element{}, order: list.New()}
	if s.max <= 0 {
		s.max = DefaultMax
	}
	if s.logf == nil {
		s.logf = actions.Discard
	}
	if path == "" {
		return s, nil
	}
	// The lock and the cache are opened by the state-file rules
	// (internal/trust): no symbolic link followed, nothing someone else
	// could have written believed.
	lock, err := flock.Open(path + ".lock")
	if errors.Is(err, flock.ErrWouldBlock) {
		return nil, fmt.Errorf("state cache %s: %w", path, ErrInUse)
	}
	if err != nil {
		return nil, fmt.Errorf("state cache: lock %w", err)
	}
	s.lock = lock
	s.removeTemps()
	if err := s.load(); err != nil {
		lock.Close()
		return nil, err
	}
	return s, nil
}

func tempPattern(path string) (dir, pattern string) {
	return filepath.Dir(path), "." + filepath.Base(path) + ".*.tmp"
}

// removeTemps deletes temp files a crash left behind: the cache itself was
// not replaced, so they are garbage (possibly torn).
func (s *Store) removeTemps() {
	dir, pattern := tempPattern(s.path)
	matches, _ := filepath.Glob(filepath.Join(dir, pattern))
	for _, m := range matches {
		os.Remove(m)
	}
}

type fileEntry struct {
	Key     []string  `json:"key"`
	Value   string    `json:"value"`
	Updated time.Time `json:"updated"`
}

type file struct {
	Format  string      `json:"format"`
	Version int         `json:"version"`
	Entries []fileEntry `json:"entries"`
}

func (s *Store) load() error {
	f, err := trust.Open(s.path)
	if errors.Is(err, os.ErrNotExist) {
		s.logf("state cache %s: no file yet, starting empty", s.path)
		return nil
	}
	if err != nil {
		return fmt.Errorf("state cache: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFile+1))
	if err != nil {
		return fmt.Errorf("state cache %s: %w", s.path, err)
	}
	if len(data) > maxFile {
		return fmt.Errorf("state cache %s: over %d MiB; not reading it", s.path, maxFile>>20)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	var fl file
	if err := json.Unmarshal(data, &fl); err != nil || fl.Format != formatName {
		return fmt.Errorf("state cache %s: not a doorward state cache (the Perl knockdaemon's cache is not read); move it away to start with empty state", s.path)
	}
	if fl.Version != formatVersion {
		return fmt.Errorf("state cache %s: version %d, this daemon reads version %d", s.path, fl.Version, formatVersion)
	}
	for i, e := range fl.Entries {
		if err := check(e.Key, e.Value); err != nil {
			return fmt.Errorf("state cache %s: entry %d: %w", s.path, i+1, err)
		}
		s.put(e.Key, e.Value, e.Updated)
	}
	s.dirty = false
	s.logEvictions()
	s.logf("state cache %s: %d entries", s.path, s.order.Len())
	return nil
}

// check enforces the entry limits, so memory and the cache stay bounded
// however the statements are written.
func check(key []string, value string) error {
	if len(key) == 0 || len(key) > MaxKeyParts {
		return fmt.Errorf("a key has 1 to %d parts, not %d", MaxKeyParts, len(key))
	}
	for _, p := range key {
		if len(p) > MaxPartLen {
			return fmt.Errorf("key part longer than %d bytes", MaxPartLen)
		}
		if !utf8.ValidString(p) {
			return errors.New("key part is not UTF-8")
		}
	}
	if len(value) > MaxValueLen {
		return fmt.Errorf("value longer than %d bytes", MaxValueLen)
	}
	if !utf8.ValidString(value) {
		return errors.New("value is not UTF-8")
	}
	return nil
}

// encode makes a map key that no two different paths share: each part is
// length-prefixed.
func encode(key []string) string {
	var b strings.Builder
	for _, p := range key {
		b.WriteString(strconv.Itoa(len(p)))
		b.WriteByte(':')
		b.WriteString(p)
	}
	return b.String()
}

// Get returns the value at key.
func (s *Store) Get(key []string) (string, bool) {
	el, ok := s.entries[encode(key)]
	if !ok {
		return "", false
	}
	return el.Value.(*Entry).Value, true
}

// Set stores value at key, updated at now. It only changes memory; Flush
// writes. When the store is full, the least recently updated entry goes.
func (s *Store) Set(key []string, value string, now time.Time) error {
	if err := check(key, value); err != nil {
		return fmt.Errorf("state(%s): %w", strings.Join(key, ","), err)
	}
	s.put(key, value, now)
	s.logEvictions()
	return nil
}

func (s *Store) put(key []string, value string, now time.Time) {
	k := encode(key)
	s.dirty = true
	if el, ok := s.entries[k]; ok {
		e := el.Value.(*Entry)
		e.Value, e.Updated = value, now
		s.order.MoveToBack(el)
		return
	}
	for s.order.Len() >= s.max {
		old := s.order.Front()
		s.order.Remove(old)
		delete(s.entries, encode(old.Value.(*Entry).Key))
		s.evicted++
	}
	s.entries[k] = s.order.PushBack(&Entry{Key: append([]string(nil), key...), Value: value, Updated: now})
}

func (s *Store) logEvictions() {
	if s.evicted > 0 {
		s.logf("state: store full (%d entries): evicted the %d least recently updated", s.max, s.evicted)
		s.evicted = 0
	}
}

// Delete removes the entry at key, reporting whether there was one.
func (s *Store) Delete(key []string) bool {
	k := encode(key)
	el, ok := s.entries[k]
	if !ok {
		return false
	}
	s.order.Remove(el)
	delete(s.entries, k)
	s.dirty = true
	return true
}

// Len is the number of entries.
func (s *Store) Len() int { return s.order.Len() }

// Entries returns a copy of every entry, least recently updated first.
func (s *Store) Entries() []Entry {
	out := make([]Entry, 0, s.order.Len())
	for el := s.order.Front(); el != nil; el = el.Next() {
		e := *el.Value.(*Entry)
		e.Key = append([]string(nil), e.Key...)
		out = append(out, e)
	}
	return out
}

// Durable reports whether the store has a cache file.
func (s *Store) Durable() bool { return s.path != "" }

// Flush writes the store to its cache if anything changed since the last
// successful Flush. A memory-only store does nothing.
func (s *Store) Flush() error {
	if !s.dirty || s.path == "" {
		return nil
	}
	if s.lock == nil {
		return fmt.Errorf("state cache %s: closed", s.path)
	}
	if err := s.write(); err != nil {
		return fmt.Errorf("state cache %s: %w", s.path, err)
	}
	s.dirty = false
	return nil
}

func (s *Store) marshal() ([]byte, error) {
	var b bytes.Buffer
	fmt.Fprintf(&b, `{"format":%q,"version":%d,"entries":[`, formatName, formatVersion)
	i := 0
	for el := s.order.Front(); el != nil; el = el.Next() {
		e := el.Value.(*Entry)
		line, err := json.Marshal(fileEntry{Key: e.Key, Value: e.Value, Updated: e.Updated.Round(0).UTC()})
		if err != nil {
			return nil, err
		}
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('\n')
		b.Write(line)
		i++
	}
	b.WriteString("\n]}\n")
	return b.Bytes(), nil
}

// write replaces the cache atomically: temp file in the same directory,
// fsync, rename, fsync of the directory.
func (s *Store) write() error {
	data, err := s.marshal()
	if err != nil {
		return err
	}
	dir, pattern := tempPattern(s.path)
	tmp, err := os.CreateTemp(dir, pattern) // mode 0600
	if err != nil {
		return err
	}
	defer func() {
		if tmp != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err := tmp.Write(data); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if s.crash != nil {
		s.crash("synced")
	}
	if err := os.Rename(tmp.Name(), s.path); err != nil {
		return err
	}
	tmp = nil
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Close flushes and releases the cache. Calling it again does nothing.
func (s *Store) Close() error {
	if s.lock == nil {
		return nil
	}
	err := s.Flush()
	if cerr := s.lock.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("state cache %s: %w", s.path, cerr)
	}
	s.lock = nil
	return err
}
