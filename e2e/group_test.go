package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/doorward/doorward/actions/redisstore/redistest"
	"github.com/doorward/doorward/e2e/netns"
)

// groupConf is a host's config for TestDoorGroup: one door of group
// bastions whose commands mark, in dir, that host's door open for %IP%.
func groupConf(t *testing.T, redisURL, dir, host string, secs int) string {
	return confFile(t, fmt.Sprintf(`[options]
	State = %s
	State_Prefix = e2e:
[ssh]
	Group         = bastions
	sequence      = 7000,8000,9000
	seq_timeout   = 5
	cmd_timeout   = %d
	start_command = touch %s/%s-%%IP%%
	stop_command  = rm %s/%s-%%IP%%
`, redisURL, secs, dir, host, dir, host))
}

// TestDoorGroup: three daemons in three network namespaces share a
// redis-server on a unix socket (the namespaces share the file system).
// One knock on host A opens the grouped door on A, B and C, and all three
// close it at the expiry A published. A member started after the knock
// catches up and opens it for what is left, closing it with the others;
// one started after the expiry opens nothing.
func TestDoorGroup(t *testing.T) {
	t.Parallel()
	netns.Require(t, "ip", "touch", "rm")
	srv := redistest.Start(t)
	dir := t.TempDir()
	const secs = 4
	hosts := []string{"a", "b", "c", "late"}
	pairs := make([]*netns.Pair, len(hosts))
	for i := range pairs {
		pairs[i] = netns.NewPair(t)
	}
	ks := make([]*knockd, 3)
	for i := range ks {
		ks[i] = startKnockd(t, pairs[i], groupConf(t, srv.URL(), dir, hosts[i], secs))
	}
	pa := pairs[0]
	addr := pa.ClientAddr.String()
	marker := func(host string) string { return filepath.Join(dir, host+"-"+addr) }
	isOpen := func(host string) bool { _, err := os.Stat(marker(host)); return err == nil }
	// waitFor polls host's marker until it is open (or shut), returning when.
	waitFor := func(host string, open bool, d time.Duration) time.Time {
		t.Helper()
		deadline := time.Now().Add(d)
		for isOpen(host) != open {
			if time.Now().After(deadline) {
				t.Fatalf("host %s: door open=%v not reached within %v", host, open, d)
			}
			time.Sleep(20 * time.Millisecond)
		}
		return time.Now()
	}

	knocked := time.Now()
	ourKnock(nil, "7000", "8000", "9000")(t, pa, pa.ServerAddr)
	for _, h := range hosts[:3] {
		waitFor(h, true, 2*time.Second)
	}

	// A late member: started a second after the knock, it opens the door
	// from the group's set, and closes it at A's expiry, not secs after
	// its own start.
	time.Sleep(time.Second)
	late := startKnockd(t, pairs[3], groupConf(t, srv.URL(), dir, "late", secs))
	waitFor("late", true, 2*time.Second)

	closed := map[string]time.Time{}
	for _, h := range hosts {
		closed[h] = waitFor(h, false, secs*time.Second+3*time.Second)
	}
	for _, h := range hosts {
		// A's door is due secs after its start command ran; every other
		// host's at that same instant, within the polling and a command.
		if d := closed[h].Sub(closed["a"]); d < -time.Second || d > time.Second {
			t.Errorf("host %s closed the door %v after host a, want the same expiry", h, d.Round(time.Millisecond))
		}
		if open := closed[h].Sub(knocked); open < secs*time.Second-time.Second || open > secs*time.Second+2*time.Second {
			t.Errorf("host %s kept the door open %v after the knock, want about %ds", h, open.Round(time.Millisecond), secs)
		}
	}

	// A member started after the expiry opens nothing: the opening has
	// expired, whatever the set held.
	late.terminate()
	expired := startKnockd(t, pairs[3], groupConf(t, srv.URL(), dir, "expired", secs))
	time.Sleep(1500 * time.Millisecond)
	if isOpen("expired") || expired.count("running command") != 0 {
		t.Errorf("a member started after the expiry opened the door:\n%s", expired.output())
	}
	for _, k := range append(ks, expired) {
		k.running()
		noPanic(t, k)
	}
	if n := ks[0].count("running command: touch"); n != 1 {
		t.Errorf("host a ran its start command %d times, want once (it must not open its own opening again)", n)
	}
}
