package knockdaemon

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/doorward/doorward/actions"
	"github.com/doorward/doorward/actions/filestore"
	"github.com/doorward/doorward/actions/journal"
	"github.com/doorward/doorward/actions/state"
	"github.com/doorward/doorward/config/knockd"
	"github.com/rogpeppe/go-internal/txtar"
)

var update = flag.Bool("update", false, "rewrite the want sections of testdata/*.txtar")

// t0 is the scripts' time zero: a Tuesday, 10:00 UTC.
var t0 = time.Date(2024, 11, 5, 10, 0, 0, 0, time.UTC)

// TestScripts runs each testdata/*.txtar: a knockd.conf, a list of knock
// events at chosen times, and the transcript they must produce (every log
// line, with the virtual time it was written at, then the state left).
//
// events lines:
//
//	OFFSET DOOR NAME=VALUE…   a knock decoded at t0+OFFSET: record fields
//	                          (IP, PORT, TIME, FLAGn, CHECKSUM), LOGIP the sender
//	OFFSET restart            the daemon stops (Close) and starts again
//	OFFSET crash              the daemon dies and starts again
//	OFFSET fail TEXT          commands containing TEXT fail from now on
//
// The state cache and the journal are real files in a temp dir, so restart
// and crash show what survives. At the end the clock runs out (every
// delayed command is due within MaxDelay) and the daemon stops.
func TestScripts(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.txtar"))
	if len(files) == 0 {
		t.Fatal("no testdata/*.txtar")
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txtar"), func(t *testing.T) {
			ar, err := txtar.ParseFile(file)
			if err != nil {
				t.Fatal(err)
			}
			sec := map[string]int{}
			for i, f := range ar.Files {
				sec[f.Name] = i
			}
			for _, n := range []string{"knockd.conf", "events", "want"} {
				if _, ok := sec[n]; !ok {
					t.Fatalf("%s: no %s section", file, n)
				}
			}
			got := runScript(t, ar.Files[sec["knockd.conf"]].Data, string(ar.Files[sec["events"]].Data))
			want := string(ar.Files[sec["want"]].Data)
			if *update {
				ar.Files[sec["want"]].Data = []byte(got)
				if err := os.WriteFile(file, txtar.Format(ar), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if got != want {
				t.Errorf("transcript differs (go test -update to accept):\n--- got\n%s--- want\n%s", got, want)
			}
		})
	}
}

type script struct {
	t     *testing.T
	dir   string
	doors []*knockd.Door
	keys  map[*knockd.Door]string
	now   time.Time
	out   bytes.Buffer
	fail  string
	a     *Action
	st    *state.Store
	jr    *journal.Journal
}

func (s *script) logf(format string, args ...any) {
	msg := strings.ReplaceAll(fmt.Sprintf(format, args...), s.dir, "$DIR")
	fmt.Fprintf(&s.out, "%-8v %s\n", s.now.Sub(t0), msg)
}

func (s *script) run(_ context.Context, line string) (int, error) {
	if s.fail != "" && strings.Contains(line, s.fail) {
		return 1, nil
	}
	return 0, nil
}

// start opens the journal (running what a previous run left in it, as the
// daemon's engine does before anything else), the state cache and the
// action.
func (s *script) start() {
	jr, left, err := journal.Open(filepath.Join(s.dir, "statedir"))
	if err != nil {
		s.t.Fatal(err)
	}
	for _, e := range left {
		st, _ := s.run(context.Background(), e.Stop)
		s.logf("recover: %s: %s: ran %s: status %d", e.Addr, e.Name, e.Stop, st)
		if st == 0 {
			jr.CloseDoor(e.ID)
		}
	}
	st, err := state.Open(filepath.Join(s.dir, "state.json"), state.Options{Logf: s.logf})
	if err != nil {
		s.t.Fatal(err)
	}
	a, err := New(s.doors, Options{Logf: s.logf, Run: s.run, Journal: jr, State: filestore.StateCache(st), Replay: true,
		Key: func(d *knockd.Door) string { return s.keys[d] }, Location: time.UTC})
	if err != nil {
		s.t.Fatal(err)
	}
	s.a, s.st, s.jr = a, st, jr
}

// until runs the delayed commands due up to t, each at its own time.
func (s *script) until(t time.Time) {
	for {
		next, ok := s.a.Next()
		if !ok || next.After(t) {
			break
		}
		s.now = next
		s.a.Advance(context.Background(), next)
	}
	s.now = t
}

func runScript(t *testing.T, conf []byte, events string) string {
	cfg, err := knockd.Parse("knockd.conf", conf)
	if err != nil {
		t.Fatal(err)
	}
	s := &script{t: t, dir: t.TempDir(), doors: cfg.Doors, keys: cfg.Keys(), now: t0}
	s.start()
	ctx := context.Background()
	for n, line := range strings.Split(events, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		d, err := time.ParseDuration(f[0])
		if err != nil || len(f) < 2 {
			t.Fatalf("events:%d: want OFFSET WHAT…: %q", n+1, line)
		}
		s.until(t0.Add(d))
		switch f[1] {
		case "restart":
			s.a.Close(ctx)
			s.jr.Shutdown()
			s.start()
		case "crash":
			// The action is dropped as it is: nothing runs, nothing more
			// is written. (Its store was flushed by the last knock, so
			// closing it only releases the lock, as death would.)
			s.st.Close()
			s.jr.Shutdown()
			s.start()
		case "fail":
			s.fail = strings.Join(f[2:], " ")
		default:
			ev := actions.Event{Kind: actions.Knock, Door: f[1], Time: s.now, Record: &actions.Record{}}
			for _, kv := range f[2:] {
				if err := setField(&ev, kv); err != nil {
					t.Fatalf("events:%d: %v", n+1, err)
				}
			}
			s.a.Handle(ctx, ev)
		}
	}
	s.until(s.now.Add(MaxDelay))
	s.a.Close(ctx)
	s.jr.Shutdown()
	for _, e := range s.st.Entries() {
		fmt.Fprintf(&s.out, "state %s = %s (set at %v)\n", strings.Join(e.Key, ","), e.Value, e.Updated.Sub(t0))
	}
	return s.out.String()
}

// setField sets one NAME=VALUE of a script's knock line: a record field,
// or LOGIP (the sender). IP is also the address to open for.
func setField(ev *actions.Event, kv string) error {
	name, v, _ := strings.Cut(kv, "=")
	r := ev.Record
	if name == "IP" || name == "LOGIP" {
		a, err := netip.ParseAddr(v)
		if err != nil {
			return err
		}
		if name == "LOGIP" {
			ev.Sender = a
		} else {
			ev.Addr, r.IP, r.Has = a, a, r.Has|actions.HasIP
		}
		return nil
	}
	n, err := strconv.ParseUint(v, 10, 32)
	if err != nil {
		return fmt.Errorf("%s: %v", kv, err)
	}
	switch name {
	case "PORT":
		r.Port, r.Has = uint16(n), r.Has|actions.HasPort
	case "TIME":
		r.Time, r.Has = uint32(n), r.Has|actions.HasTime
	case "CHECKSUM":
		r.Checksum, r.Has = uint8(n), r.Has|actions.HasChecksum
	default:
		i, err := strconv.Atoi(strings.TrimPrefix(name, "FLAG"))
		if !strings.HasPrefix(name, "FLAG") || err != nil || i < 0 || i >= actions.MaxFlags {
			return fmt.Errorf("%s: not a record field", kv)
		}
		r.Flags[i], r.Has = uint8(n), r.Has|actions.HasFlag(i)
	}
	return nil
}
