package journal

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

// opened is door(n) as a knock opens it now: with the knock's time and,
// for some doors, a port.
func opened(n int, port uint16) Entry {
	e := door(n)
	e.Opened, e.Port = e.Due.Add(-30*time.Second), port
	return e
}

// TestReadWhileLocked: knockd --status reads the journal while the daemon
// holds it, names the daemon, and changes nothing on disk.
func TestReadWhileLocked(t *testing.T) {
	dir := t.TempDir()
	j, _, _ := open(t, dir)
	a, err := j.OpenDoor(opened(1, 22))
	if err != nil {
		t.Fatal(err)
	}
	b, err := j.OpenDoor(opened(2, 0))
	if err != nil {
		t.Fatal(err)
	}
	b.Failures = 2
	if err := j.UpdateDoor(b); err != nil {
		t.Fatal(err)
	}
	before := listDir(t, dir)
	s, err := Read(dir)
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	if want := []Entry{a, b}; !reflect.DeepEqual(s.Doors, want) {
		t.Errorf("doors: got %+v\nwant %+v", s.Doors, want)
	}
	if s.Doors[0].Port != 22 || !s.Doors[0].Opened.Equal(t0.Add(30*time.Second)) {
		t.Errorf("opened/port not kept: %+v", s.Doors[0])
	}
	if s.DaemonKnown && s.DaemonPID != os.Getpid() {
		t.Errorf("daemon pid %d, want ours %d", s.DaemonPID, os.Getpid())
	}
	if !s.DaemonKnown && os.Getenv("CI") == "true" {
		t.Errorf("no /proc/locks: the lock's holder is unknown")
	}
	if s.NoDir || s.NoFile || s.Damaged != 0 {
		t.Errorf("snapshot %+v", s)
	}
	if after := listDir(t, dir); !reflect.DeepEqual(after, before) {
		t.Errorf("Read changed the state directory:\n%v\nwas\n%v", after, before)
	}
	// The daemon still owns the directory: Read took no lock.
	if _, err := j.OpenDoor(opened(3, 0)); err != nil {
		t.Fatalf("the daemon's journal after Read: %v", err)
	}
	j.Shutdown()
	if s, err := Read(dir); err != nil || (s.DaemonKnown && s.DaemonPID != 0) || len(s.Doors) != 3 {
		t.Errorf("after shutdown: %+v, %v", s, err)
	}
}

func listDir(t *testing.T, dir string) map[string]string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, de := range ents {
		b, err := os.ReadFile(filepath.Join(dir, de.Name()))
		if err != nil {
			t.Fatal(err)
		}
		m[de.Name()] = string(b)
	}
	return m
}

func TestReadNothing(t *testing.T) {
	dir := t.TempDir()
	s, err := Read(filepath.Join(dir, "nope"))
	if err != nil || !s.NoDir || len(s.Doors) != 0 {
		t.Errorf("missing dir: %+v, %v", s, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "nope")); !os.IsNotExist(err) {
		t.Errorf("Read created the state directory")
	}
	s, err = Read(dir)
	if err != nil || s.NoDir || !s.NoFile || len(s.Doors) != 0 || !s.DaemonKnown && os.Getenv("CI") == "true" {
		t.Errorf("empty dir: %+v, %v", s, err)
	}
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	if _, err := Read(dir); err == nil || !strings.Contains(err.Error(), "journal: state directory "+dir+": writable by group or others") {
		t.Errorf("untrusted dir: %v", err)
	}
}

// TestReadTorn: a record being appended while --status reads is cut
// anywhere; every prefix of the file reads without error, shows no
// damage, and shows a state the journal went through.
func TestReadTorn(t *testing.T) {
	full := line(`{"op":"next","next":1}`) +
		line(`{"op":"open","id":1,"door":"ssh","name":"openSSH","addr":"10.0.0.1","stop":"x","due":"2026-11-25T08:00:00Z","opened":"2026-11-25T07:59:30Z","port":22}`) +
		line(`{"op":"update","id":1,"door":"ssh","name":"openSSH","addr":"10.0.0.1","stop":"x","due":"2026-11-25T08:10:00Z","failures":1}`) +
		line(`{"op":"close","id":1}`)
	openEnd := strings.Index(full, `"port":22}`) + len(`"port":22}`)
	dir := t.TempDir()
	path := filepath.Join(dir, FileName)
	for n := 0; n <= len(full); n++ {
		if err := os.WriteFile(path, []byte(full[:n]), 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := Read(dir)
		if err != nil || s.Damaged != 0 {
			t.Fatalf("prefix %d: %+v, %v", n, s, err)
		}
		// A record counts once its JSON is whole, newline or not.
		want := 0
		if n >= openEnd && n < len(full)-1 {
			want = 1
		}
		if len(s.Doors) != want {
			t.Fatalf("prefix %d: %d doors, want %d", n, len(s.Doors), want)
		}
	}
	// A damaged record that is not the last is reported.
	bad := strings.Replace(full, `"addr":"10.0.0.1","stop":"x","due":"2026-11-25T08:00:00Z"`, `"addr":"10.0.0.9","stop":"x","due":"2026-11-25T08:00:00Z"`, 1)
	if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	if s, err := Read(dir); err != nil || s.Damaged != 1 {
		t.Errorf("damaged middle record: %+v, %v", s, err)
	}
}

// TestReadDuringAppends: the daemon opens, extends and closes doors while
// --status reads over and over; no read fails or sees damage.
func TestReadDuringAppends(t *testing.T) {
	dir := t.TempDir()
	j, _, _ := open(t, dir)
	defer j.Shutdown()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 1; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			e, err := j.OpenDoor(opened(i%200, 22))
			if err != nil {
				t.Error(err)
				return
			}
			e.Failures = 1
			j.UpdateDoor(e)
			if i%3 != 0 {
				j.CloseDoor(e.ID)
			}
		}
	}()
	for end := time.Now().Add(500 * time.Millisecond); time.Now().Before(end); {
		s, err := Read(dir)
		if err != nil || s.Damaged != 0 {
			t.Fatalf("read during appends: damaged %d, %v", s.Damaged, err)
		}
	}
	close(stop)
	wg.Wait()
}

// TestRecordFieldsCompatible: the fields knockd --status added are read by
// a daemon that predates them (its record type, frozen here, ignores
// them: encoding/json skips unknown keys and the checksum covers the bytes
// as written), and a record without them reads as "unknown".
func TestRecordFieldsCompatible(t *testing.T) {
	type v1Record struct { // record before "opened" and "port"
		Op       string    `json:"op"`
		Next     uint64    `json:"next,omitempty"`
		ID       uint64    `json:"id,omitempty"`
		Door     string    `json:"door,omitempty"`
		Name     string    `json:"name,omitempty"`
		Addr     string    `json:"addr,omitempty"`
		Stop     string    `json:"stop,omitempty"`
		Due      time.Time `json:"due,omitzero"`
		Failures int       `json:"failures,omitempty"`
	}
	e := opened(1, 22)
	e.ID = 1
	ln, err := encode(entryRecord(opOpen, e))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(ln, []byte(`"opened":"2026-11-25T08:00:30Z","port":22}`)) {
		t.Errorf("new fields not written last and in UTC: %s", ln)
	}
	var old v1Record
	if err := json.Unmarshal(bytes.TrimSpace(ln[9:]), &old); err != nil {
		t.Fatalf("an old daemon cannot read %s: %v", ln, err)
	}
	if old.ID != 1 || old.Stop != e.Stop || !old.Due.Equal(e.Due) {
		t.Errorf("an old daemon reads %+v", old)
	}
	r, err := decode([]byte(strings.TrimSuffix(line(`{"op":"open","id":1,"stop":"x","due":"2026-11-25T08:00:00Z"}`), "\n")))
	if err != nil || !r.Opened.IsZero() || r.Port != 0 {
		t.Errorf("old record: %+v, %v", r, err)
	}
}
