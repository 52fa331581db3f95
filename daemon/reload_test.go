package daemon

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/doorward/doorward/actions"
	"github.com/doorward/doorward/config/knockd"
	"github.com/doorward/doorward/detectors"
	"github.com/doorward/doorward/formats/doorman"
)

// TestRejectedReloadTouchesNoFile is issue 12 item 5: a reload that is
// rejected must leave the running door's hash archive alone. It used to
// resize the file while building the new config (renaming a new file over
// it), even when the config was then rejected for an error elsewhere, so
// the running detector recorded the next knock in the unlinked old file
// and, after a restart, the same knock opened the door again. An accepted
// reload resizes it, keeping the knocks.
func TestRejectedReloadTouchesNoFile(t *testing.T) {
	registerFailCommitKind(t)
	const (
		untouched = iota // the rejected reload leaves the file as it was
		resized          // accepted: the file now has 2000 records
		restored         // failed to commit: the file has 1000 records again
	)
	for _, tc := range []struct {
		name   string
		reload string // {{door 2000}}: the door with a bigger archive; {{dir}}: the test's directory
		file   int
	}{
		{name: "error in another door", reload: "{{door 2000}}[bad]\n\tType = nosuchkind\n", file: untouched},
		{name: "archive directory missing", reload: "{{door 2000}}[other]\n\tType = doorman\n\tGuestlist = {{dir}}/guestlist\n\tFirewall_Add = {{dir}}/add\n\tFirewall_Del = {{dir}}/del\n\tHash_Archive = {{dir}}/missing/hash\n\tPort = 1002\n\tCheck_Permissions = no\n", file: untouched},
		{name: "commit fails after the archive was resized", reload: "{{door 2000}}[z]\n\tType = failcommit\n", file: restored},
		{name: "accepted", reload: "{{door 2000}}", file: resized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := doormanSetup(t)
			conf := filepath.Join(dir, "knockd.conf")
			door := func(size int) string {
				return fmt.Sprintf("[ssh]\n\tType = doorman\n\tGuestlist = %[1]s/guestlist\n\tFirewall_Add = %[1]s/add\n\tFirewall_Del = %[1]s/del\n\tHash_Archive = %[1]s/hash\n\tHash_Archive_Size = %[2]d\n\tInterface = eth0\n\tCheck_Permissions = no\n", dir, size)
			}
			write := func(text string) {
				t.Helper()
				text = strings.ReplaceAll(strings.ReplaceAll(text, "{{door 2000}}", door(2000)), "{{dir}}", dir)
				if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			var events []actions.Event
			route := func(_ string, ev actions.Event) { events = append(events, ev) }
			env := &Env{Logf: t.Logf}
			o := Options{Config: conf}
			o.defaults()
			start := func() *plan {
				t.Helper()
				cfg, err := o.loadConfig()
				if err != nil {
					t.Fatal(err)
				}
				p, err := startPlan(cfg, env, route)
				if err != nil {
					t.Fatal(err)
				}
				return p
			}

			write(door(1000))
			running := start()
			archive := filepath.Join(dir, "hash")
			before := fileID(t, archive)

			// SIGHUP: the new config is built off the packet path, then
			// swapped in on it if it was accepted.
			write(tc.reload)
			l := &live{o: o, log: NewLogger(LogOptions{Stdout: discardWriter{}}), env: env, route: route}
			if np := l.load(); np != nil {
				running = l.swap(running, np)
			}
			after := fileID(t, archive)
			switch {
			case tc.file == untouched && after != before:
				t.Errorf("the rejected reload changed the archive: %+v, was %+v", after, before)
			case tc.file == resized && after.size != 2000*doorman.RecordSize,
				tc.file == restored && after.size != 1000*doorman.RecordSize:
				t.Errorf("the archive has %d bytes after the reload", after.size)
			}

			// A knock, served by whichever config runs.
			knock := doormanKnock(time.Unix(1_800_000_000, 0), 40000)
			running.disp.Dispatch(&knock)
			if len(events) != 1 {
				t.Fatalf("the knock opened %d doors, want 1", len(events))
			}

			// Restart with the config that ran: the same knock is a
			// replay.
			running.close()
			if tc.file != resized {
				write(door(1000))
			}
			restarted := start()
			defer restarted.close()
			again := doormanKnock(time.Unix(1_800_000_060, 0), 40001)
			restarted.disp.Dispatch(&again)
			if len(events) != 1 {
				t.Errorf("after a restart the replayed knock opened a door again (%d events)", len(events))
			}
		})
	}
}

// failCommit is a test protocol whose files cannot be opened: its Commit
// fails after every kind sorted before it (doorman) has committed.
type failCommit struct{}

func (failCommit) Rules() []detectors.Rule                        { return nil }
func (failCommit) Observe(*detectors.Packet, func(actions.Event)) {}
func (failCommit) Expire(time.Time)                               {}
func (failCommit) Commit() error                                  { return errors.New("failcommit: cannot open its file") }

func registerFailCommitKind(t *testing.T) {
	registerKind("failcommit", Kind{Detector: func([]*knockd.Door, *Env) (detectors.Detector, error) { return failCommit{}, nil }})
	t.Cleanup(func() { delete(kinds, "failcommit") })
}

// doormanKnock is martink's knock for port 22 from 10.0.0.2 (the guest
// list of doormanSetup), always the same tag: a replay of itself.
func doormanKnock(at time.Time, srcPort uint16) detectors.Packet {
	payload := doorman.Format(22, "martink", 12345, []byte("hushhush"))
	return detectors.Packet{
		Time: at, Src: netip.MustParseAddr("10.0.0.2"), Dst: netip.MustParseAddr("10.0.0.1"),
		SrcPort: srcPort, DstPort: 1001, Proto: detectors.UDP, Length: 28 + len(payload), Payload: payload,
	}
}

// fileState is what a reload must not change: the inode and the bytes.
type fileState struct {
	ino  uint64
	size int64
	sum  [sha256.Size]byte
}

func fileID(t *testing.T, path string) fileState {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return fileState{ino: fi.Sys().(*syscall.Stat_t).Ino, size: fi.Size(), sum: sha256.Sum256(b)}
}

type discardWriter struct{}

func (discardWriter) Write(b []byte) (int, error) { return len(b), nil }
