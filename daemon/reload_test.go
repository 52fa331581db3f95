package daemon

import (
	"crypto/sha256"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/doorward/doorward/actions"
	"github.com/doorward/doorward/detectors"
	"github.com/doorward/doorward/formats/doorman"
)

// TestRejectedReloadTouchesNoFile is issue 12 item 5: a reload whose
// config is rejected (here: an unknown door type next to a doorman door
// whose Hash_Archive_Size changed) must leave the running door's hash
// archive alone. It used to resize the file by renaming a new one over it,
// so the running detector recorded the next knock in the unlinked old file
// and, after a restart, the same knock opened the door again.
func TestRejectedReloadTouchesNoFile(t *testing.T) {
	dir := doormanSetup(t)
	conf := filepath.Join(dir, "knockd.conf")
	door := func(size int) string {
		return fmt.Sprintf("[ssh]\n\tType = doorman\n\tGuestlist = %[1]s/guestlist\n\tFirewall_Add = %[1]s/add\n\tFirewall_Del = %[1]s/del\n\tHash_Archive = %[1]s/hash\n\tHash_Archive_Size = %[2]d\n\tInterface = eth0\n\tCheck_Permissions = no\n", dir, size)
	}
	write := func(text string) {
		t.Helper()
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

	// SIGHUP with a bigger archive and an error elsewhere in the file.
	write(door(2000) + "[bad]\n\tType = nosuchkind\n")
	l := &live{o: o, log: NewLogger(LogOptions{Stdout: discardWriter{}})}
	if np := l.load(env, route); np != nil {
		t.Fatal("the bad config was accepted")
	}
	if after := fileID(t, archive); after != before {
		t.Errorf("the rejected reload changed the archive: %+v, was %+v", after, before)
	}

	// A knock, served by the running config.
	knock := doormanKnock(time.Unix(1_800_000_000, 0), 40000)
	running.disp.Dispatch(&knock)
	if len(events) != 1 {
		t.Fatalf("the knock opened %d doors, want 1", len(events))
	}

	// Restart with the original config: the same knock is a replay.
	running.close()
	write(door(1000))
	restarted := start()
	defer restarted.close()
	again := doormanKnock(time.Unix(1_800_000_060, 0), 40001)
	restarted.disp.Dispatch(&again)
	if len(events) != 1 {
		t.Errorf("after a restart the replayed knock opened a door again (%d events)", len(events))
	}
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
	ino uint64
	sum [sha256.Size]byte
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
	return fileState{ino: fi.Sys().(*syscall.Stat_t).Ino, sum: sha256.Sum256(b)}
}

type discardWriter struct{}

func (discardWriter) Write(b []byte) (int, error) { return len(b), nil }
