package fwknop

import (
	crand "crypto/rand"
	"slices"
	"testing"
	"time"

	"github.com/doorward/doorward/actions"
	fwaction "github.com/doorward/doorward/actions/fwknop"
	"github.com/doorward/doorward/formats/fwknop"
)

// TestTally: what the detector tells actions.Tally of the knocks its
// checks refuse, one reason per check, each a reason the protocol
// declares; a knock it passes on is not told (the engine tells whether
// it opened the door).
func TestTally(t *testing.T) {
	now := time.Now()
	msg := func(mut func(*fwknop.Message)) []byte {
		m := fwknop.Message{User: "alice", Time: now.Unix(), Type: fwknop.MsgAccess, Access: "0.0.0.0,tcp/22"}
		if mut != nil {
			mut(&m)
		}
		pkt, err := fwknop.Seal(&m, &keys, crand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return pkt
	}
	other := func() []byte {
		m := fwknop.Message{User: "alice", Time: now.Unix(), Type: fwknop.MsgAccess, Access: "0.0.0.0,tcp/22"}
		pkt, err := fwknop.Seal(&m, &fwknop.Keys{Key: []byte("k1-secret"), HMACKey: []byte("another")}, crand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return pkt
	}
	replayed := msg(nil)
	for _, tc := range []struct {
		name    string
		extra   string
		packets [][]byte
		want    []string
	}{
		{"accepted, then replayed", "", [][]byte{replayed, replayed}, []string{"replay"}},
		{"another HMAC key", "", [][]byte{other()}, []string{"bad_hmac"}},
		{"too old", "", [][]byte{msg(func(m *fwknop.Message) { m.Time -= 3600 })}, []string{"too_old"}},
		{"command message", "", [][]byte{msg(func(m *fwknop.Message) { m.Type = fwknop.MsgCommand; m.Access = "0.0.0.0,touch /tmp/x" })}, []string{"command_message"}},
		{"port not open", "OPEN_PORTS = tcp/443\n", [][]byte{msg(nil)}, []string{"port_not_allowed"}},
		{"source required", "REQUIRE_SOURCE_ADDRESS = Y\n", [][]byte{msg(nil)}, []string{"source_required"}},
		{"username", "REQUIRE_USERNAME = bob\n", [][]byte{msg(nil)}, []string{"username_mismatch"}},
		{"expired", "ACCESS_EXPIRE_EPOCH = 1000000000\n", [][]byte{msg(nil)}, []string{"access_expired"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ss, err := parse(t, door+tc.extra)
			if err != nil {
				t.Fatal(err)
			}
			var told []string
			d := New(ss, Options{LogRate: -1, Tally: func(door string, o actions.Outcome, reason string) {
				if o != actions.Refused || !slices.Contains(fwaction.Reasons, reason) {
					t.Errorf("told %s %d %q: not a declared refusal", door, o, reason)
				}
				told = append(told, reason)
			}})
			if err := d.Commit(); err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			var events int
			for _, p := range tc.packets {
				d.Observe(packet(p, now), func(actions.Event) { events++ })
			}
			if !slices.Equal(told, tc.want) {
				t.Errorf("told %q, want %q (%d events)", told, tc.want, events)
			}
			if want := len(tc.packets) - len(tc.want); events != want {
				t.Errorf("%d events, want %d", events, want)
			}
		})
	}
}
