package logtail

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/doorward/doorward/detectors"
)

// longLine is far past any bound: a local user's logger(1) line, or junk.
const longLine = 8 << 20

// allocated returns the bytes allocated by the whole process so far.
func allocated() uint64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.TotalAlloc
}

// maxAlloc is what reading the long line and the knock after it may
// allocate: a few line buffers, far below the line itself.
const maxAlloc = 1 << 20

// TestLongLineFollow: an 8 MiB line in the followed log is skipped without
// being held in memory (issue 12: nxadm/tail read it whole, twice over,
// before splitting it), and the knock on the next line still comes out.
func TestLongLineFollow(t *testing.T) {
	for _, poll := range []bool{false, true} {
		t.Run(map[bool]string{false: "inotify", true: "poll"}[poll], func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "kern.log")
			appendFile(t, path, noise)
			src, err := Open(path, Options{Poll: poll})
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			c := collect(src)
			time.Sleep(200 * time.Millisecond)
			junk := strings.Repeat("x", longLine)
			before := allocated()
			// Written in pieces, as a writer would: the reader sees a
			// partial line, then more of it.
			f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i < len(junk); i += 1 << 20 {
				if _, err := f.WriteString(junk[i : i+1<<20]); err != nil {
					t.Fatal(err)
				}
				time.Sleep(5 * time.Millisecond)
			}
			f.WriteString("\n" + kernLine(t0, "192.0.2.10", 40000, 7000))
			f.Close()
			c.want(t, knock(0))
			if got := allocated() - before; got > maxAlloc {
				t.Errorf("reading an %d MiB line allocated %d KiB; the bound is %d KiB", longLine>>20, got>>10, maxAlloc>>10)
			}
			if st := src.Stats(); st.TooLong != 1 || st.Packets != 1 {
				t.Errorf("stats %+v, want 1 too long, 1 packet", st)
			}
		})
	}
}

// TestLongLineFile: the same for a log read once (--replay).
func TestLongLineFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kern.log")
	appendFile(t, path, noise+strings.Repeat("x", longLine)+"\n"+kernLine(t0, "192.0.2.10", 40000, 7000))
	before := allocated()
	src, err := OpenFile(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var p detectors.Packet
	if err := src.ReadPacket(&p); err != nil || p.DstPort != 7000 {
		t.Fatalf("ReadPacket: %v, port %d", err, p.DstPort)
	}
	if got := allocated() - before; got > maxAlloc {
		t.Errorf("reading an %d MiB line allocated %d KiB; the bound is %d KiB", longLine>>20, got>>10, maxAlloc>>10)
	}
	if st := src.Stats(); st.TooLong != 1 {
		t.Errorf("stats %+v, want 1 too long", st)
	}
}
