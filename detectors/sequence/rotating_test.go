package sequence_test

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/doorward/doorward/actions"
	"github.com/doorward/doorward/actions/filestore"
	"github.com/doorward/doorward/config/knockd"
	"github.com/doorward/doorward/detectors"
	"github.com/doorward/doorward/detectors/detectortest"
	"github.com/doorward/doorward/detectors/pcaptest"
	"github.com/doorward/doorward/detectors/sequence"
	"github.com/doorward/doorward/formats/rotating"
	fseq "github.com/doorward/doorward/formats/sequence"
)

// The secrets of the rotating test doors: RFC 6238's test secret, and
// another.
const (
	sshSecret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
	webSecret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
)

const rotatingConf = `
[ssh]
	Rotating_Secret = $DIR/ssh.secret
	Rotating_Ports  = 20000-40000
	Rotating_Skew   = 1
	Seq_Timeout     = 10
	TCPFlags        = syn
	command         = true
[web]
	Rotating_Secret = $DIR/web.secret
	Rotating_Ports  = 20000-40000
	Rotating_Skew   = 0
	Seq_Timeout     = 10
	TCPFlags        = syn
	command         = true
[fixed]
	Sequence = 20001,20002,20003
	command  = true
`

// rotatingDoors writes the secrets and reads rotatingConf.
func rotatingDoors(t *testing.T) []sequence.Door {
	t.Helper()
	dir := t.TempDir()
	for name, s := range map[string]string{"ssh.secret": sshSecret, "web.secret": webSecret} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := knockd.Parse("knockd.conf", []byte(strings.ReplaceAll(rotatingConf, "$DIR", dir)))
	if err != nil {
		t.Fatal(err)
	}
	return mustDoors(t, cfg)
}

// rotKnock is a client's knock: the sequence of door derived with secret
// for the window its clock says (the true time plus skew), sent from src
// at the true time at (seconds after the window w0 starts).
type rotKnock struct {
	at     float64
	src    string
	secret string
	door   string
	skew   time.Duration // the client's clock error
}

// w0 is the window the test cases start in.
const w0 = 59000000

func w0Start() time.Time { return rotating.Start(w0, 30) }

func (k rotKnock) frames(t *testing.T) []pcaptest.Frame {
	t.Helper()
	key, err := rotating.ParseSecret(k.secret)
	if err != nil {
		t.Fatal(err)
	}
	ports, _ := rotating.ParsePorts("20000-40000")
	p := rotating.Params{Secret: key, Door: k.door, Period: 30, Length: 4, Ports: ports}
	at := w0Start().Add(time.Duration(k.at * float64(time.Second)))
	seq, err := rotating.Derive(nil, &p, rotating.Window(at.Add(k.skew), 30))
	if err != nil {
		t.Fatal(err)
	}
	var out []pcaptest.Frame
	src := netip.MustParseAddr(k.src)
	for i, s := range seq {
		out = append(out, pcaptest.Frame{
			Time: at.Add(time.Duration(i) * 100 * time.Millisecond),
			Src:  netip.AddrPortFrom(src, 40000), Dst: netip.AddrPortFrom(netip.MustParseAddr("10.0.0.1"), s.Port),
			Proto: s.Proto, Flags: detectors.SYN,
		})
	}
	return out
}

// runRotating replays the knocks through the real replay loop (packet time
// is the clock) against a committed detector on a memory store, and
// returns the events ("door addr") and the log.
func runRotating(t *testing.T, store actions.Store, knocks []rotKnock) (events []string, log string) {
	t.Helper()
	var frames []pcaptest.Frame
	for _, k := range knocks {
		frames = append(frames, k.frames(t)...)
	}
	slices.SortStableFunc(frames, func(a, b pcaptest.Frame) int { return a.Time.Compare(b.Time) })
	var out strings.Builder
	det := sequence.New(rotatingDoors(t), sequence.Options{Store: store, LogRate: -1,
		Logf: func(f string, a ...any) { fmt.Fprintf(&out, f+"\n", a...) }})
	if err := det.Commit(); err != nil {
		t.Fatal(err)
	}
	defer det.Close()
	disp := detectors.NewDispatcher([]detectors.Detector{det}, func(ev actions.Event) {
		events = append(events, ev.Door+" "+ev.Addr.String())
	})
	var now time.Time
	detectortest.Replay(t, detectortest.WriteFrames(t, frames), disp, &now, nil)
	return events, out.String()
}

func TestRotating(t *testing.T) {
	const half = 30 * time.Second / 2
	for _, c := range []struct {
		name   string
		knocks []rotKnock
		want   []string
	}{
		{"current window opens", []rotKnock{{at: 5, src: "192.0.2.1", secret: sshSecret, door: "ssh"}}, []string{"ssh 192.0.2.1"}},
		{"each door its own", []rotKnock{
			{at: 5, src: "192.0.2.1", secret: sshSecret, door: "ssh"},
			{at: 6, src: "192.0.2.1", secret: webSecret, door: "web"},
		}, []string{"ssh 192.0.2.1", "web 192.0.2.1"}},
		{"replay in the same window refused", []rotKnock{
			{at: 5, src: "192.0.2.1", secret: sshSecret, door: "ssh"},
			{at: 10, src: "198.51.100.9", secret: sshSecret, door: "ssh", skew: -5 * time.Second},
			{at: 15, src: "192.0.2.1", secret: sshSecret, door: "ssh", skew: -10 * time.Second},
		}, []string{"ssh 192.0.2.1"}},
		{"replay in the next window refused", []rotKnock{
			{at: 5, src: "192.0.2.1", secret: sshSecret, door: "ssh"},
			// the window-w0 sequence, sent during w0+1: within the skew,
			// but spent.
			{at: 35, src: "198.51.100.9", secret: sshSecret, door: "ssh", skew: -30 * time.Second},
		}, []string{"ssh 192.0.2.1"}},
		{"replay two windows later refused", []rotKnock{
			{at: 5, src: "192.0.2.1", secret: sshSecret, door: "ssh"},
			{at: 65, src: "198.51.100.9", secret: sshSecret, door: "ssh", skew: -60 * time.Second},
		}, []string{"ssh 192.0.2.1"}},
		{"the next window opens again", []rotKnock{
			{at: 5, src: "192.0.2.1", secret: sshSecret, door: "ssh"},
			{at: 35, src: "192.0.2.1", secret: sshSecret, door: "ssh"},
		}, []string{"ssh 192.0.2.1", "ssh 192.0.2.1"}},
		{"another door's secret refused", []rotKnock{
			{at: 5, src: "192.0.2.1", secret: webSecret, door: "ssh"},
		}, nil},
		{"another door's sequence refused", []rotKnock{
			{at: 5, src: "192.0.2.1", secret: sshSecret, door: "web"},
		}, nil},
		{"clock behind within the skew", []rotKnock{{at: 5, src: "192.0.2.1", secret: sshSecret, door: "ssh", skew: -30 * time.Second}}, []string{"ssh 192.0.2.1"}},
		{"clock ahead within the skew", []rotKnock{{at: 5, src: "192.0.2.1", secret: sshSecret, door: "ssh", skew: 30 * time.Second}}, []string{"ssh 192.0.2.1"}},
		{"clock behind beyond the skew", []rotKnock{{at: 5, src: "192.0.2.1", secret: sshSecret, door: "ssh", skew: -60 * time.Second}}, nil},
		{"clock ahead beyond the skew", []rotKnock{{at: 5, src: "192.0.2.1", secret: sshSecret, door: "ssh", skew: 60 * time.Second}}, nil},
		{"skew 0 accepts only the current window", []rotKnock{
			{at: 5, src: "192.0.2.1", secret: webSecret, door: "web", skew: -30 * time.Second},
			{at: 10, src: "192.0.2.2", secret: webSecret, door: "web"},
		}, []string{"web 192.0.2.2"}},
		{"a knock across a window boundary", []rotKnock{
			{at: 29.85, src: "192.0.2.1", secret: sshSecret, door: "ssh"},
		}, []string{"ssh 192.0.2.1"}},
		{"a window boundary mid-knock at skew 0", []rotKnock{
			// the sequence of w0 finishes in w0+1, which web no longer
			// accepts.
			{at: 29.85, src: "192.0.2.1", secret: webSecret, door: "web"},
		}, nil},
		{"half a period off is the same window or the next", []rotKnock{
			{at: 1, src: "192.0.2.1", secret: sshSecret, door: "ssh", skew: half},
		}, []string{"ssh 192.0.2.1"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, log := runRotating(t, filestore.Memory(), c.knocks)
			if !slices.Equal(got, c.want) {
				t.Errorf("events %q, want %q\nlog:\n%s", got, c.want, log)
			}
		})
	}
}

// TestRotatingSpentShared: two detectors sharing one store (two hosts of
// a fleet, or a reload) never both open for one window.
func TestRotatingSpentShared(t *testing.T) {
	store := filestore.Memory()
	// Held open throughout, as the shared backend holds what it spent: a
	// memory space goes with its last handle.
	hold, _, err := store.Tokens(actions.Space{Name: sequence.SpentSpace, Layout: actions.Ring})
	if err != nil {
		t.Fatal(err)
	}
	defer hold.Close()
	k := []rotKnock{{at: 5, src: "192.0.2.1", secret: sshSecret, door: "ssh"}}
	if got, _ := runRotating(t, store, k); !slices.Equal(got, []string{"ssh 192.0.2.1"}) {
		t.Fatalf("first host: %q", got)
	}
	k[0].src = "192.0.2.2"
	got, log := runRotating(t, store, k)
	if got != nil || !strings.Contains(log, "192.0.2.2: ssh: the rotating sequence of window 59000000 was used already, door not opened") {
		t.Errorf("second host: %q\n%s", got, log)
	}
}

// TestRotatingUncommitted: without its spent store a rotating door opens
// nothing (fail closed).
func TestRotatingUncommitted(t *testing.T) {
	var out strings.Builder
	det := sequence.New(rotatingDoors(t), sequence.Options{LogRate: -1, Logf: func(f string, a ...any) { fmt.Fprintf(&out, f+"\n", a...) }})
	opened := 0
	disp := detectors.NewDispatcher([]detectors.Detector{det}, func(actions.Event) { opened++ })
	var now time.Time
	frames := rotKnock{at: 5, src: "192.0.2.1", secret: sshSecret, door: "ssh"}.frames(t)
	detectortest.Replay(t, detectortest.WriteFrames(t, frames), disp, &now, nil)
	if opened != 0 || !strings.Contains(out.String(), "not committed") {
		t.Errorf("opened %d times\n%s", opened, out.String())
	}
}

// TestRotatingRules: the filter and the dispatch index hold the whole port
// set of a rotating door (over its protocols), fixed doors' ports as before.
func TestRotatingRules(t *testing.T) {
	det := sequence.New(rotatingDoors(t), sequence.Options{})
	var tcp int
	for _, r := range det.Rules() {
		if r.Proto == detectors.TCP {
			tcp += len(r.Ports)
		} else {
			t.Errorf("a UDP rule: %v", r.Ports[:min(5, len(r.Ports))])
		}
	}
	if want := 2*20001 + 3; tcp != want {
		t.Errorf("%d TCP ports in the rules, want %d", tcp, want)
	}
}

func TestRotatingSetup(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, mode)
		return p
	}
	for _, c := range []struct {
		name, content string
		mode          os.FileMode
		want          string
	}{
		{"ok", sshSecret + "\n# comment\n", 0o600, ""},
		{"readable", sshSecret, 0o644, "knockd.conf:3: Rotating_Secret: $F: holds a secret but is readable or writable by group or others (mode 0644); chmod go= it"},
		{"writable", sshSecret, 0o620, "knockd.conf:3: Rotating_Secret: $F: writable by group or others (mode 0620); chmod go-w it"},
		{"short", "JBSWY3DPEHPK3PXP", 0o600, "knockd.conf:3: Rotating_Secret: $F: a secret of 10 bytes is too short (at least 16: 26 base32 characters)"},
		{"bad", "not base32!", 0o600, "knockd.conf:3: Rotating_Secret: $F: secret is not base32 (RFC 4648): bad character or length at offset 9"},
		{"missing", "", 0, "knockd.conf:3: Rotating_Secret: open $F: no such file or directory"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := filepath.Join(dir, c.name)
			if c.mode != 0 {
				f = write(c.name, c.content, c.mode)
			}
			cfg, err := knockd.Parse("knockd.conf", []byte("[ssh]\n\tRotating_Ports = 20000-40000\n\tRotating_Secret = "+f+"\n"))
			if err != nil {
				t.Fatal(err)
			}
			doors, err := sequence.FromConfig(cfg, nil)
			got := ""
			if err != nil {
				got = err.Error()
			}
			if want := strings.ReplaceAll(c.want, "$F", f); got != want {
				t.Errorf("got  %q\nwant %q", got, want)
			}
			if err == nil {
				r := doors[0].Rotating
				if r == nil || fseq.Format(nil) != "" || string(r.Params.Secret) != "12345678901234567890" || r.Params.Door != "ssh" || r.Skew != 1 {
					t.Errorf("door %+v", r)
				}
			}
		})
	}
}
