package statecompat

import (
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/doorward/doorward/actions"
	"github.com/doorward/doorward/actions/filestore"
	"github.com/doorward/doorward/actions/journal"
	"github.com/doorward/doorward/actions/state"
	"github.com/doorward/doorward/formats/doorman"
	"github.com/doorward/doorward/formats/otp"
	"github.com/doorward/doorward/internal/spent"
)

// update writes testdata/state/v1 when it is missing. It never overwrites:
// the fixtures are what the pre-reshape release wrote, and no later writer
// may stand in for it.
var update = flag.Bool("update", false, "write testdata/state/v1 if it does not exist (it is frozen once committed)")

const v1 = "testdata/state/v1"

// The files of the state directory, named as an admin's configuration
// names them (docs/doorman.md, docs/knockdaemon-actions.md); the journal
// and the spent store have fixed names in the state directory.
const (
	journalFile = journal.FileName    // doors.journal
	spentFile   = "portspan.spent"    // detectors/knockdaemon.SpentFile
	archiveFile = "doorman.hash"      // Hash_Archive
	cacheFile   = "knockdaemon.state" // [options] StateCache
	otpFile     = "one_time_sequences"
)

var fixtureFiles = []string{journalFile, spentFile, archiveFile, cacheFile, otpFile}

// What v1 holds. The generator writes it and the test expects it, so the
// two cannot drift apart; the bytes on disk are what they agree on.

var t0 = time.Date(2026, 12, 4, 18, 0, 0, 0, time.UTC)

// Doors: ssh stays open, http stays open after two failed stop commands,
// smtp was opened and closed.
var (
	doorSSH = journal.Entry{Door: "openSSH", Name: "openSSH", Addr: "192.0.2.10",
		Stop: "/sbin/iptables -D INPUT -s 192.0.2.10 -p tcp --dport 22 -j ACCEPT", Due: t0.Add(30 * time.Second)}
	doorHTTP = journal.Entry{Door: "openHTTP", Name: "openHTTP", Addr: "2001:db8::7",
		Stop: `/usr/sbin/nft delete element inet filter knocked '{ 2001:db8::7 }' && logger "http closed" > /dev/null`, Due: t0.Add(time.Minute)}
	doorSMTP = journal.Entry{Door: "openSMTP", Name: "openSMTP", Addr: "198.51.100.3",
		Stop: "/sbin/iptables -D INPUT -s 198.51.100.3 -p tcp --dport 25 -j ACCEPT", Due: t0.Add(10 * time.Second)}
	httpRetry = struct {
		due      time.Time
		failures int
	}{t0.Add(2 * time.Minute), 2}
)

// Doorman knocks accepted (their digests are in the archive) and one
// that never was.
type dmKnock struct {
	port   uint16
	group  string
	tag    uint32
	secret string
	at     time.Time
}

const archiveSize = doorman.MinRecords

var (
	dmAccepted = []dmKnock{
		{22, "admins", 1234567890, "s3cret-admins", t0.Add(1 * time.Second)},
		{22, "admins", 42, "s3cret-admins", t0.Add(2 * time.Second)},
		{443, "web", 7, "web secret", t0.Add(3 * time.Second)},
	}
	dmFresh = dmKnock{22, "admins", 43, "s3cret-admins", t0}
)

// Port-span spent store: a ring of spentSize records.
const spentSize = 64

func spentDigest(s string) spent.Digest {
	h := sha256.Sum256([]byte(s))
	return spent.Digest(h[:spent.DigestSize])
}

var (
	spentAccepted = []struct {
		key   string
		stamp int64
	}{
		{"knock one", t0.UnixNano()},
		{"knock two", t0.Add(time.Second).UnixNano()},
		{"knock three", t0.Add(2 * time.Second).UnixNano()},
	}
	spentFresh = "knock four"
)

// knockdaemon state: the entries in the order set (least recently
// updated first); visits is set twice.
var cacheEntries = []state.Entry{
	{Key: []string{"192.0.2.10", "otp", "knock-3"}, Value: "used", Updated: t0.Add(1 * time.Second)},
	{Key: []string{"2001:db8::7", "note"}, Value: "a value with spaces, \"quotes\" and ünïcode", Updated: t0.Add(2 * time.Second)},
	{Key: []string{"192.0.2.10", "visits", "num"}, Value: "2", Updated: t0.Add(3 * time.Second)},
}

// One-time sequences: the first two valid lines used (knockd marks them
// with '#' over their first byte), one line that never parsed.
const otpWritten = `# one-time sequences for openSSH
2001,2002,2003
 2004:udp,2005
this is not a sequence
3001,3002:udp,3003
4001,4002
`

const (
	otpUsed     = 2
	otpNextLine = 5
	otpNextSeq  = "3001:tcp,3002:udp,3003:tcp"
)

// TestV1Loads is the promise: what the pre-reshape release wrote, today's
// readers read, with nothing lost and nothing recreated.
func TestV1Loads(t *testing.T) {
	if *update {
		writeV1(t)
	}
	dir := copyV1(t)

	// knockd --status reads v1's journal as it is (before Open rewrites
	// it): the same doors, no opening time or port (v1 did not record
	// them), no damage.
	t.Run("journal read by --status", func(t *testing.T) {
		s, err := journal.Read(dir)
		if err != nil {
			t.Fatal(err)
		}
		ssh, http := doorSSH, doorHTTP
		ssh.ID, http.ID = 1, 2
		http.Due, http.Failures = httpRetry.due, httpRetry.failures
		if want := []journal.Entry{ssh, http}; !reflect.DeepEqual(s.Doors, want) || s.Damaged != 0 {
			t.Errorf("doors:\n got %+v (%d damaged)\nwant %+v", s.Doors, s.Damaged, want)
		}
	})

	t.Run("journal", func(t *testing.T) {
		j, open, err := journal.Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		defer j.Shutdown()
		ssh, http := doorSSH, doorHTTP
		ssh.ID, http.ID = 1, 2
		http.Due, http.Failures = httpRetry.due, httpRetry.failures
		if want := []journal.Entry{ssh, http}; !reflect.DeepEqual(open, want) {
			t.Errorf("open doors:\n got %+v\nwant %+v", open, want)
		}
		if w := j.Warnings(); len(w) != 0 {
			t.Errorf("warnings: %q", w)
		}
		// IDs keep increasing across the restart: a new door does not
		// take the closed smtp door's ID.
		e, err := j.OpenDoor(doorSMTP)
		if err != nil {
			t.Fatal(err)
		}
		if e.ID <= 3 {
			t.Errorf("new door got ID %d, want > 3", e.ID)
		}
	})

	t.Run("doorman archive", func(t *testing.T) {
		a, info, err := doorman.OpenArchive(filepath.Join(dir, archiveFile), archiveSize)
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		if info != (doorman.OpenInfo{}) {
			t.Errorf("open rewrote the archive: %+v", info)
		}
		for _, k := range dmAccepted {
			at, seen := a.Lookup(dmDigest(t, k))
			if !seen || !at.Equal(k.at) {
				t.Errorf("knock %d/%s/%d: seen %v at %v, want refused as accepted at %v", k.port, k.group, k.tag, seen, at, k.at)
			}
		}
		if at, seen := a.Lookup(dmDigest(t, dmFresh)); seen {
			t.Errorf("a knock never sent is recorded at %v", at)
		}
	})

	t.Run("port-span spent store", func(t *testing.T) {
		s, info, err := spent.Open(filepath.Join(dir, spentFile), spentSize, spent.Options{What: "port-span spent store"})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if info != (spent.OpenInfo{}) {
			t.Errorf("open rewrote the store: %+v", info)
		}
		for _, k := range spentAccepted {
			stamp, found := s.Lookup(spentDigest(k.key))
			if !found || stamp != k.stamp {
				t.Errorf("%q: found %v stamp %d, want refused, stamp %d", k.key, found, stamp, k.stamp)
			}
		}
		if _, found := s.Lookup(spentDigest(spentFresh)); found {
			t.Errorf("%q was never spent but is recorded", spentFresh)
		}
	})

	t.Run("knockdaemon state cache", func(t *testing.T) {
		s, err := state.Open(filepath.Join(dir, cacheFile), state.Options{Logf: t.Logf})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if got := s.Entries(); !reflect.DeepEqual(got, cacheEntries) {
			t.Errorf("entries:\n got %+v\nwant %+v", got, cacheEntries)
		}
	})

	t.Run("one-time sequences", func(t *testing.T) {
		f, err := otp.Open(filepath.Join(dir, otpFile))
		if err != nil {
			t.Fatal(err)
		}
		seq, line, ok := f.Current()
		var parts []string
		for _, k := range seq {
			parts = append(parts, fmt.Sprintf("%d:%v", k.Port, k.Proto))
		}
		if got := strings.Join(parts, ","); !ok || line != otpNextLine || got != otpNextSeq {
			t.Errorf("current: %q at line %d (ok %v), want %q at line %d", got, line, ok, otpNextSeq, otpNextLine)
		}
		if p := f.Problems(); len(p) != 1 {
			t.Errorf("problems: %v, want the one line that is not a sequence", p)
		}
	})
}

// TestV1LoadsThroughStore: the same promise through the state layer the
// daemon uses (actions/filestore): every file of v1 is a space of one
// Store, opened as the protocols declare it, and answers as it did.
func TestV1LoadsThroughStore(t *testing.T) {
	dir := copyV1(t)
	jr, _, err := journal.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer jr.Shutdown()
	store := filestore.New(filestore.Options{Dir: dir, Doors: jr, Logf: t.Logf})

	t.Run("doors", func(t *testing.T) {
		ssh, http := doorSSH, doorHTTP
		ssh.ID, http.ID = 1, 2
		http.Due, http.Failures = httpRetry.due, httpRetry.failures
		if got, want := store.OpenDoors(), []actions.DoorEntry{ssh, http}; !reflect.DeepEqual(got, want) {
			t.Errorf("open doors:\n got %+v\nwant %+v", got, want)
		}
	})

	// spends checks that each accepted token is refused as first spent
	// at its time, and that a fresh one is accepted.
	spends := func(t *testing.T, sp actions.Space, accepted map[string][]byte, at map[string]time.Time, fresh []byte) {
		tok, info, err := store.Tokens(sp)
		if err != nil {
			t.Fatal(err)
		}
		defer tok.Close()
		if info != (actions.SpaceInfo{}) {
			t.Errorf("open rewrote the file: %+v", info)
		}
		for name, d := range accepted {
			got, err := tok.Spend(t0.Add(time.Hour), d)
			if err != nil || got.Fresh || !got.At.Equal(at[name]) {
				t.Errorf("%s: %+v, %v; want refused as spent at %v", name, got, err, at[name])
			}
		}
		if got, err := tok.Spend(t0.Add(time.Hour), fresh); err != nil || !got.Fresh {
			t.Errorf("a token never spent: %+v, %v; want fresh", got, err)
		}
	}

	t.Run("doorman archive", func(t *testing.T) {
		accepted, at := map[string][]byte{}, map[string]time.Time{}
		for _, k := range dmAccepted {
			name := fmt.Sprintf("knock %d/%s/%d", k.port, k.group, k.tag)
			d := dmDigest(t, k)
			accepted[name], at[name] = d[:], k.at
		}
		fresh := dmDigest(t, dmFresh)
		path := filepath.Join(dir, archiveFile)
		spends(t, actions.Space{Name: path, File: path, Layout: actions.HashArchive, Size: archiveSize}, accepted, at, fresh[:])
	})

	t.Run("port-span spent store", func(t *testing.T) {
		accepted, at := map[string][]byte{}, map[string]time.Time{}
		for _, k := range spentAccepted {
			d := spentDigest(k.key)
			accepted[k.key], at[k.key] = d[:], time.Unix(0, k.stamp)
		}
		fresh := spentDigest(spentFresh)
		spends(t, actions.Space{Name: spentFile, Layout: actions.Ring, Size: spentSize, Sync: true}, accepted, at, fresh[:])
	})

	t.Run("knockdaemon state cache", func(t *testing.T) {
		v, err := store.Values(actions.Space{Name: "StateCache", File: filepath.Join(dir, cacheFile)})
		if err != nil {
			t.Fatal(err)
		}
		defer v.Close()
		for _, e := range cacheEntries {
			if got, ok, err := v.Value(e.Key); err != nil || !ok || got != e.Value {
				t.Errorf("%q: %q, %v, %v; want %q", e.Key, got, ok, err, e.Value)
			}
		}
		if n, err := v.Add([]string{"192.0.2.10", "visits", "num"}, 1, t0.Add(time.Hour)); err != nil || n != 3 {
			t.Errorf("visits after one more: %d, %v; want 3", n, err)
		}
		if err := v.Sync(); err != nil {
			t.Error(err)
		}
	})

	t.Run("one-time sequences", func(t *testing.T) {
		path := filepath.Join(dir, otpFile)
		tok, _, err := store.Tokens(actions.Space{Name: path, File: path, Layout: actions.OneTimeLines})
		if err != nil {
			t.Fatal(err)
		}
		defer tok.Close()
		f := tok.(*filestore.OneTime)
		if _, line, ok := f.Current(); !ok || line != otpNextLine {
			t.Errorf("current at line %d (ok %v), want line %d", line, ok, otpNextLine)
		}
		if got, err := tok.Spend(t0, []byte(otpNextSeq)); err != nil || !got.Fresh {
			t.Fatalf("spending %s: %+v, %v", otpNextSeq, got, err)
		}
		if got, _ := tok.Spend(t0, []byte(otpNextSeq)); got.Fresh {
			t.Errorf("%s spent twice", otpNextSeq)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		// knockd's mark: '#' over the line's first byte, nothing else.
		want := strings.Replace(otpWritten, "2001,2002,2003\n 2004", "#001,2002,2003\n#2004", 1)
		want = strings.Replace(want, "\n3001,", "\n#001,", 1)
		if string(data) != want {
			t.Errorf("file after the spend:\n%s\nwant\n%s", data, want)
		}
	})
}

// copyV1 copies the fixtures into a fresh state directory that passes
// internal/trust (git keeps no owner and no mode but x), so that the
// readers, some of which rewrite what they open, never touch testdata.
func copyV1(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "state")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, name := range fixtureFiles {
		b, err := os.ReadFile(filepath.Join(v1, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func dmDigest(t *testing.T, k dmKnock) [16]byte {
	t.Helper()
	p, err := doorman.Parse(doorman.Format(k.port, k.group, k.tag, []byte(k.secret)))
	if err != nil {
		t.Fatal(err)
	}
	d, ok := p.Verify([]byte(k.secret))
	if !ok {
		t.Fatalf("knock %d/%s/%d does not verify", k.port, k.group, k.tag)
	}
	return d
}

// writeV1 writes the fixtures with the release's own writers, the way the
// daemon drives them, into a scratch state directory, and copies the
// files into testdata/state/v1. It refuses to overwrite.
func writeV1(t *testing.T) {
	if _, err := os.Stat(v1); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("%s exists (%v): it is frozen; a new format gets a new directory", v1, err)
	}
	dir := filepath.Join(t.TempDir(), "state")
	must(t, os.Mkdir(dir, 0o700))

	j, left, err := journal.Open(dir)
	must(t, err)
	if len(left) != 0 {
		t.Fatalf("fresh journal has %d entries", len(left))
	}
	_, err = j.OpenDoor(doorSSH)
	must(t, err)
	http, err := j.OpenDoor(doorHTTP)
	must(t, err)
	smtp, err := j.OpenDoor(doorSMTP)
	must(t, err)
	must(t, j.CloseDoor(smtp.ID))
	http.Due, http.Failures = httpRetry.due, httpRetry.failures
	must(t, j.UpdateDoor(http))
	must(t, j.Shutdown())

	a, _, err := doorman.OpenArchive(filepath.Join(dir, archiveFile), archiveSize)
	must(t, err)
	for _, k := range dmAccepted {
		must(t, a.Add(dmDigest(t, k), k.at))
	}
	must(t, a.Close())

	s, _, err := spent.Open(filepath.Join(dir, spentFile), spentSize, spent.Options{What: "port-span spent store", Sync: true})
	must(t, err)
	for _, k := range spentAccepted {
		must(t, s.Add(spentDigest(k.key), k.stamp))
	}
	must(t, s.Close())

	st, err := state.Open(filepath.Join(dir, cacheFile), state.Options{Logf: t.Logf})
	must(t, err)
	must(t, st.Set(cacheEntries[2].Key, "1", t0)) // updated again below
	for _, e := range cacheEntries {
		must(t, st.Set(e.Key, e.Value, e.Updated))
	}
	must(t, st.Flush())
	must(t, st.Close())

	must(t, os.WriteFile(filepath.Join(dir, otpFile), []byte(otpWritten), 0o600))
	f, err := otp.Open(filepath.Join(dir, otpFile))
	must(t, err)
	for range otpUsed {
		seq, _, ok := f.Current()
		if !ok {
			t.Fatal("no sequence left")
		}
		must(t, f.Use(seq))
	}

	must(t, os.MkdirAll(v1, 0o755))
	for _, name := range fixtureFiles {
		b, err := os.ReadFile(filepath.Join(dir, name))
		must(t, err)
		must(t, os.WriteFile(filepath.Join(v1, name), b, 0o644))
	}
	t.Logf("wrote %s", v1)
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
