package fwknop

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/doorward/doorward/actions"
	"github.com/doorward/doorward/formats/proto"
)

// TestGroupOpenings: a port an SPA packet seen here opened is told to
// Opened under the fwknop door's key (not the engine's per-port key), with
// its due time; an opening another host of the group published (Until)
// opens the port with that host's expiry in the rule, closes at Until
// whatever the request's timeout, and is not told back.
func TestGroupOpenings(t *testing.T) {
	var lines, told []string
	run := func(_ context.Context, l string) (int, error) { lines = append(lines, l); return 0, nil }
	a := New([]Door{{Key: "spa", Name: "spa"}}, Options{Run: run, Opened: func(ev actions.Event, due time.Time) {
		told = append(told, fmt.Sprintf("%s %s %d %v", ev.Door, ev.Addr, ev.Record.Port, due.Sub(t0)))
	}})
	ctx := context.Background()
	a.Handle(ctx, actions.Event{Kind: actions.Knock, Door: "spa", Addr: client, Sender: client, Time: t0, Record: record(proto.TCP, 22, 30)})
	member := actions.Event{Kind: actions.Knock, Door: "spa", Addr: v6, Sender: v6, Time: t0, Record: record(proto.TCP, 22, 30), Until: t0.Add(5 * time.Second)}
	a.Handle(ctx, member)
	a.Advance(ctx, t0.Add(5*time.Second))
	got := fmt.Sprintf("told %q\nlines %d, last %q", told, len(lines), lines[len(lines)-1])
	_, del := Rule("ip6tables", v6, Request{Proto: proto.TCP, Port: 22}, t0.Unix()+5)
	want := fmt.Sprintf("told %q\nlines %d, last %q", []string{"spa 192.0.2.7 22 30s"}, 3, del)
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}
