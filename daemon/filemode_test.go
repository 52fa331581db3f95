package daemon

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fileModeRun is Live in file mode for a test: a firewall log as the only
// source (no capture, no privileges), the shell commands recorded.
type fileModeRun struct {
	t       *testing.T
	logPath string
	conf    string
	out     interface{ String() string }
	ran     chan string
	limits  chan time.Duration // each command's time left when it started
	hup     chan os.Signal
	done    chan int
	ended   chan struct{} // closed when Live returned, whoever read done
	cancel  context.CancelFunc
}

// startFileMode writes fileModeConf followed by extra, runs Live with o
// (its Config and Runner are set here; its Stdout must have a String
// method) and returns once the log is being followed. Live is stopped when
// the test ends.
func startFileMode(t *testing.T, extra string, o Options) *fileModeRun {
	t.Helper()
	dir := t.TempDir()
	r := &fileModeRun{t: t, logPath: filepath.Join(dir, "firewall.log"), conf: filepath.Join(dir, "knockd.conf"),
		ran: make(chan string, 10), limits: make(chan time.Duration, 10), hup: make(chan os.Signal, 1), done: make(chan int, 1)}
	if err := os.WriteFile(r.logPath, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	text := fmt.Sprintf(fileModeConf, r.logPath, filepath.Join(dir, "state")) + extra
	if err := os.WriteFile(r.conf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	r.out = o.Stdout.(interface{ String() string })
	o.Config = r.conf
	o.Runner = func(ctx context.Context, line string) (int, error) {
		if dl, ok := ctx.Deadline(); ok {
			select {
			case r.limits <- time.Until(dl):
			default:
			}
		}
		r.ran <- line
		return 0, nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	r.ended = make(chan struct{})
	// The test ends only once Live has: a daemon left running would go on
	// reloading into the next test (and its registrations).
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.ended:
		case <-time.After(10 * time.Second):
			t.Errorf("Live did not return within 10 s of its context's end")
		}
	})
	go func() {
		defer close(r.ended)
		r.done <- Live(ctx, o, r.hup)
	}()
	r.waitFor("starting up, following " + r.logPath)
	time.Sleep(300 * time.Millisecond) // tail reaches the end of the file
	return r
}

// waitFor waits up to 10 s for text on Live's stdout.
func (r *fileModeRun) waitFor(text string) {
	r.t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(r.out.String(), text); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			r.t.Fatalf("no %q in:\n%s", text, r.out.String())
		}
	}
}

// append adds lines to the followed log.
func (r *fileModeRun) append(text string) {
	r.t.Helper()
	f, err := os.OpenFile(r.logPath, os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		r.t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(text); err != nil {
		r.t.Fatal(err)
	}
}

// knock appends the three hits of fileModeConf's door from src.
func (r *fileModeRun) knock(src string) {
	now := time.Now()
	var b strings.Builder
	for i, port := range []int{7000, 8000, 9000} {
		b.WriteString(kernLine(now, src, 40000+i, port))
	}
	r.append(b.String())
}

// command returns the next command run, failing after within.
func (r *fileModeRun) command(within time.Duration, why string) string {
	r.t.Helper()
	select {
	case line := <-r.ran:
		return line
	case <-time.After(within):
		r.t.Fatalf("%s: no command ran within %v; log:\n%.3000s", why, within, r.out.String())
		return ""
	}
}
