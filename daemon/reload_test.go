package daemon

import (
	"bytes"
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
	"github.com/doorward/doorward/actions/filestore"
	kclient "github.com/doorward/doorward/client/knockdaemon"
	"github.com/doorward/doorward/config/knockd"
	"github.com/doorward/doorward/detectors"
	kdetect "github.com/doorward/doorward/detectors/knockdaemon"
	"github.com/doorward/doorward/formats/doorman"
	"github.com/doorward/doorward/internal/spent"
)

// TestRejectedReloadTouchesNoFile is issue 12 item 5: a reload that is
// rejected must leave the running door's anti-replay file alone (doorman's
// hash archive, the port-span spent store). It used to resize the hash
// archive while building the new config (renaming a new file over it),
// even when the config was then rejected for an error elsewhere, so the
// running detector recorded the next knock in the unlinked old file and,
// after a restart, the same knock opened the door again. The port-span
// store was opened lazily, at the first packet, tick or reload, and not by
// the start. An accepted reload resizes the file, keeping the knocks.
func TestRejectedReloadTouchesNoFile(t *testing.T) {
	registerFailCommitKind(t)
	const (
		untouched = iota // the rejected reload leaves the file as it was
		resized          // accepted: the file now has the door's 2000
		restored         // failed to commit: the file has its 1000 again
	)
	for _, tc := range []struct {
		name   string
		proto  string // of the door: doorman or portspan (see antiReplay)
		reload string // {{door 2000}}: the door with a bigger file; {{dir}}: the test's directory
		file   int
	}{
		{name: "error in another door", proto: "doorman", reload: "{{door 2000}}[bad]\n\tType = nosuchkind\n", file: untouched},
		{name: "archive directory missing", proto: "doorman", reload: "{{door 2000}}[other]\n\tType = doorman\n\tGuestlist = {{dir}}/guestlist\n\tFirewall_Add = {{dir}}/add\n\tFirewall_Del = {{dir}}/del\n\tHash_Archive = {{dir}}/missing/hash\n\tPort = 1002\n\tCheck_Permissions = no\n", file: untouched},
		{name: "commit fails after the archive was resized", proto: "doorman", reload: "{{door 2000}}[z]\n\tType = zfailcommit\n", file: restored},
		{name: "accepted", proto: "doorman", reload: "{{door 2000}}", file: resized},
		{name: "error in another door", proto: "knockdaemon", reload: "{{door 2000}}[bad]\n\tType = nosuchkind\n", file: untouched},
		{name: "error in an action section", proto: "knockdaemon", reload: "{{door 2000}}[a]\n\tType = action\n\tCondition = PORT = 22\n\tSystem = true\n", file: untouched},
		{name: "commit fails after the store was resized", proto: "knockdaemon", reload: "{{door 2000}}[z]\n\tType = zfailcommit\n", file: restored},
		{name: "accepted", proto: "knockdaemon", reload: "{{door 2000}}", file: resized},
	} {
		t.Run(tc.proto+"/"+tc.name, func(t *testing.T) {
			proto := antiReplay[tc.proto]
			dir := doormanSetup(t)
			conf := filepath.Join(dir, "knockd.conf")
			door := func(size int) string { return proto.door(dir, size) }
			write := func(text string) {
				t.Helper()
				text = strings.ReplaceAll(strings.ReplaceAll(text, "{{door 2000}}", door(2000)), "{{dir}}", dir)
				if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			var events []actions.Event
			route := func(_ string, ev actions.Event) { events = append(events, ev) }
			// The daemon's one Store: a reload's detectors open the same
			// spaces as the running ones.
			env := &Env{Logf: t.Logf, StateDir: dir, Store: filestore.New(filestore.Options{Dir: dir, Logf: t.Logf})}
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
			file := filepath.Join(dir, proto.file)
			before := fileID(t, file)

			// SIGHUP: the new config is built off the packet path, then
			// swapped in on it if it was accepted.
			write(tc.reload)
			l := &live{o: o, log: NewLogger(LogOptions{Stdout: discardWriter{}}), env: env, route: route}
			if np := l.load(); np != nil {
				running = l.swap(running, np)
			}
			after := fileID(t, file)
			switch {
			case tc.file == untouched && after != before:
				t.Errorf("the rejected reload changed %s: %+v, was %+v", proto.file, after, before)
			case tc.file == resized && after.size != 2000*proto.recordBytes,
				tc.file == restored && after.size != 1000*proto.recordBytes:
				t.Errorf("%s has %d bytes after the reload", proto.file, after.size)
			}

			// A knock, served by whichever config runs.
			dispatch := func(p *plan, at time.Time, srcPort uint16) {
				for _, pkt := range proto.knock(t, at, srcPort) {
					p.disp.Dispatch(&pkt)
				}
			}
			dispatch(running, time.Unix(1_800_000_000, 0), 40000)
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
			dispatch(restarted, time.Unix(1_800_000_060, 0), 41000)
			if len(events) != 1 {
				t.Errorf("after a restart the replayed knock opened a door again (%d events)", len(events))
			}
		})
	}
}

// antiReplay are the protocols with a durable anti-replay file, as
// TestRejectedReloadTouchesNoFile drives them.
var antiReplay = map[string]struct {
	door        func(dir string, size int) string // a door whose file has room for size knocks
	file        string                            // the file, in the test's directory (the state directory)
	recordBytes int64                             // the file's bytes a knock
	// knock is always the same knock: a replay of itself.
	knock func(t *testing.T, at time.Time, srcPort uint16) []detectors.Packet
}{
	"doorman": {
		door: func(dir string, size int) string {
			return fmt.Sprintf("[ssh]\n\tType = doorman\n\tGuestlist = %[1]s/guestlist\n\tFirewall_Add = %[1]s/add\n\tFirewall_Del = %[1]s/del\n\tHash_Archive = %[1]s/hash\n\tHash_Archive_Size = %[2]d\n\tInterface = eth0\n\tCheck_Permissions = no\n", dir, size)
		},
		file:        "hash",
		recordBytes: doorman.RecordSize,
		knock: func(_ *testing.T, at time.Time, srcPort uint16) []detectors.Packet {
			return []detectors.Packet{doormanKnock(at, srcPort)}
		},
	},
	"knockdaemon": {
		door: func(_ string, size int) string {
			return fmt.Sprintf("[span]\n\tType = knockdaemon\n\t%s\n\tSpent_Knocks = %d\n", strings.ReplaceAll(spanDoor, "\n", "\n\t"), size)
		},
		file:        kdetect.SpentFile,
		recordBytes: 2 * spent.RecordSize, // two 8-byte blocks of ciphertext
		knock:       spanKnock,
	},
}

// spanDoor is the port-span door of TestRejectedReloadTouchesNoFile, as
// knockd.conf directives and as client settings.
const spanDoor = "Portspan = 1024-1279\nKnock = IP,PORT,FLAG0,CHECKSUM\nKey = my_secret_phrase"

// spanKnock is our client's knock for port 22 from 10.0.0.2 on spanDoor,
// with a fixed IV: one SYN a port, a millisecond apart, from srcPort on.
func spanKnock(t *testing.T, at time.Time, srcPort uint16) []detectors.Packet {
	t.Helper()
	c := kclient.Conf{"port": "22", "flag0": "1", "client": "10.0.0.2"}
	for _, line := range strings.Split(spanDoor, "\n") {
		k, v, _ := strings.Cut(line, " = ")
		c[strings.ToLower(k)] = v
	}
	k, err := c.Plan(netip.MustParseAddr("10.0.0.1"), netip.Addr{}, at)
	if err != nil {
		t.Fatal(err)
	}
	_, ports, err := k.Encode(bytes.NewReader(bytes.Repeat([]byte{7}, 64)))
	if err != nil {
		t.Fatal(err)
	}
	var out []detectors.Packet
	for i, port := range ports {
		out = append(out, detectors.Packet{
			Time: at.Add(time.Duration(i) * time.Millisecond), Src: netip.MustParseAddr("10.0.0.2"), Dst: netip.MustParseAddr("10.0.0.1"),
			SrcPort: srcPort + uint16(i), DstPort: port, Proto: detectors.TCP, Flags: detectors.SYN, Length: 40,
		})
	}
	return out
}

// failCommit is a test protocol whose files cannot be opened: its Commit
// fails after every kind sorted before it (doorman, portspan) has
// committed; its name sorts it after every real kind.
type failCommit struct{}

func (failCommit) Rules() []detectors.Rule                        { return nil }
func (failCommit) Observe(*detectors.Packet, func(actions.Event)) {}
func (failCommit) Expire(time.Time)                               {}
func (failCommit) Commit() error                                  { return errors.New("failcommit: cannot open its file") }

func registerFailCommitKind(t *testing.T) {
	t.Cleanup(detectors.RegisterForTest(detectors.Protocol{Name: "zfailcommit", Commands: true,
		Detector: func([]*knockd.Door, *detectors.Env) (detectors.Detector, error) { return failCommit{}, nil }}))
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
