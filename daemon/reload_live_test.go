package daemon

import (
	"context"
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

// registerSlowKind adds the "slowtest" protocol for one test.
func registerSlowKind(t *testing.T) *slowKind {
	k := &slowKind{busy: make(chan struct{}, 1), release: make(chan struct{})}
	t.Cleanup(detectors.RegisterForTest(detectors.Protocol{Name: "slowtest",
		Detector: func([]*knockd.Door, *detectors.Env) (detectors.Detector, error) { return k, nil }}))
	t.Cleanup(actions.RegisterForTest("slowtest", func([]*knockd.Door, *actions.Env) (actions.Action, error) { return k, nil }))
	return k
}

// TestReloadNeverBlocksPackets is issue 12 item 8: while an Action is busy
// (a doorman script runs up to 30 s), SIGHUPs must not stall the packet
// loop: a knock still opens, and SIGTERM is handled at once. It used to
// block on the second SIGHUP, handing the busy Action its new doors.
func TestReloadNeverBlocksPackets(t *testing.T) {
	k := registerSlowKind(t)
	defer close(k.release)
	var out syncBuffer
	r := startFileMode(t, "\n[slow]\n\tType = slowtest\n", Options{Stdout: &out, Verbose: true})

	// The slow Action starts handling a knock and does not return.
	r.append(kernLine(time.Now(), "192.0.2.20", 41000, 5000))
	select {
	case <-k.busy:
	case <-time.After(10 * time.Second):
		t.Fatalf("the slow knock was not handled; log:\n%s", out.String())
	}
	// Two reloads, the second once the first was read and applied, and a
	// third one pending.
	for i := range 2 {
		r.hup <- syscall.SIGHUP
		r.waitFor(strings.Repeat("re-reading config file: "+r.conf+"\n", i+1))
		time.Sleep(200 * time.Millisecond)
	}
	r.hup <- syscall.SIGHUP

	// Packets are still processed: a knock opens its door.
	r.knock("192.0.2.10")
	if line := r.command(5*time.Second, "a knock while an Action is busy"); line != "open 192.0.2.10" {
		t.Fatalf("ran %q", line)
	}

	// SIGTERM is handled at once.
	r.cancel()
	r.waitFor("shutting down")
}
