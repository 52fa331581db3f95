package daemon

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/doorward/doorward/actions"
	"github.com/doorward/doorward/config/knockd"
	"github.com/doorward/doorward/detectors"
)

// slowKind is a test protocol whose Action takes as long as the test wants
// to handle a knock (a doorman script that runs for 30 s): a hit on TCP
// port 5000 is its knock.
type slowKind struct {
	busy    chan struct{} // a knock is being handled
	release chan struct{} // closed: Handle returns
}

func (k *slowKind) Rules() []detectors.Rule {
	return []detectors.Rule{{Proto: detectors.TCP, Ports: []uint16{5000}}}
}
func (k *slowKind) Observe(p *detectors.Packet, emit func(actions.Event)) {
	emit(actions.Event{Kind: actions.Knock, Door: "slow", Addr: p.Src, Time: p.Time})
}
func (k *slowKind) Expire(time.Time) {}
func (k *slowKind) Handle(context.Context, actions.Event) {
	k.busy <- struct{}{}
	<-k.release
}
func (k *slowKind) Advance(context.Context, time.Time)     {}
func (k *slowKind) Next() (time.Time, bool)                { return time.Time{}, false }
func (k *slowKind) Reconfigure(doors []*knockd.Door) error { return nil }
func (k *slowKind) Close(context.Context)                  {}

// registerSlowKind adds the "slowtest" kind for one test.
func registerSlowKind(t *testing.T) *slowKind {
	k := &slowKind{busy: make(chan struct{}, 1), release: make(chan struct{})}
	registerKind("slowtest", Kind{
		Detector: func([]*knockd.Door, *Env) (detectors.Detector, error) { return k, nil },
		Action:   func([]*knockd.Door, *Env) (Action, error) { return k, nil },
	})
	t.Cleanup(func() { delete(kinds, "slowtest") })
	return k
}

// TestReloadNeverBlocksPackets is issue 12 item 8: while an Action is busy
// (a doorman script runs up to 30 s), SIGHUPs must not stall the packet
// loop: a knock still opens, and SIGTERM is handled at once. It used to
// block on the second SIGHUP, handing the busy Action its new doors.
func TestReloadNeverBlocksPackets(t *testing.T) {
	k := registerSlowKind(t)
	defer close(k.release)
	dir := t.TempDir()
	logPath := filepath.Join(dir, "firewall.log")
	if err := os.WriteFile(logPath, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "knockd.conf")
	text := fmt.Sprintf(fileModeConf, logPath, filepath.Join(dir, "state")) + "\n[slow]\n\tType = slowtest\n"
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	ran := make(chan string, 10)
	var out, errOut syncBuffer
	o := Options{Config: conf, Stdout: &out, Stderr: &errOut, Verbose: true,
		Runner: func(ctx context.Context, line string) (int, error) { ran <- line; return 0, nil }}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	hup := make(chan os.Signal, 1)
	done := make(chan int, 1)
	go func() { done <- Live(ctx, o, hup) }()
	waitFor(t, &out, "starting up, following "+logPath)
	time.Sleep(300 * time.Millisecond) // tail reaches the end of the file
	appendTo := func(text string) {
		f, err := os.OpenFile(logPath, os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString(text)
		f.Close()
	}

	// The slow Action starts handling a knock and does not return.
	appendTo(kernLine(time.Now(), "192.0.2.20", 41000, 5000))
	select {
	case <-k.busy:
	case <-time.After(10 * time.Second):
		t.Fatalf("the slow knock was not handled; log:\n%s", out.String())
	}
	// Two reloads, the second once the first was read and applied, and a
	// third one pending.
	for i := range 2 {
		hup <- syscall.SIGHUP
		waitFor(t, &out, strings.Repeat("re-reading config file: "+conf+"\n", i+1))
		time.Sleep(200 * time.Millisecond)
	}
	hup <- syscall.SIGHUP

	// Packets are still processed: a knock opens its door.
	now := time.Now()
	appendTo(kernLine(now, "192.0.2.10", 40000, 7000) + kernLine(now, "192.0.2.10", 40001, 8000) + kernLine(now, "192.0.2.10", 40002, 9000))
	select {
	case line := <-ran:
		if line != "open 192.0.2.10" {
			t.Fatalf("ran %q", line)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("the knock did not open while an Action was busy; log:\n%s", out.String())
	}

	// SIGTERM is handled at once.
	cancel()
	waitFor(t, &out, "shutting down")
}
