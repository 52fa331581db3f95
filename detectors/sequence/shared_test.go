package sequence_test

import (
	"strings"
	"testing"

	"github.com/doorward/doorward/actions/redisstore/redistest"
)

// TestRotatingSharedStoreDown: with the spent windows on a redis-server
// that is gone, rotating knocks are refused without a line each: the
// shared store logs its outage once (docs/fleet.md), and a sniffer who
// knocks again and again must not fill the log.
func TestRotatingSharedStoreDown(t *testing.T) {
	srv := redistest.Start(t)
	var storeLog strings.Builder
	store := srv.Store(&storeLog)
	srv.Kill()
	got, log := runRotating(t, store, []rotKnock{
		{at: 5, src: "192.0.2.1", secret: sshSecret, door: "ssh"},
		{at: 35, src: "192.0.2.2", secret: sshSecret, door: "ssh"},
		{at: 65, src: "192.0.2.3", secret: webSecret, door: "web"},
	})
	if got != nil {
		t.Errorf("opened with the shared store down: %q", got)
	}
	for _, l := range strings.Split(strings.TrimSpace(log), "\n") {
		if l != "" && !strings.Contains(l, ": Stage ") {
			t.Errorf("the detector logged %q", l)
		}
	}
	if n := strings.Count(storeLog.String(), "unreachable"); n != 1 {
		t.Errorf("the store logged the outage %d times, want 1:\n%s", n, storeLog.String())
	}
}
