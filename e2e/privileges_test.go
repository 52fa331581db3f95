package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/doorward/doorward/e2e/netns"
	"github.com/doorward/doorward/internal/caps"
)

// unitCaps is examples/doorward.service's CapabilityBoundingSet, which
// is also what the daemon keeps (docs/systemd.md).
var unitCaps = caps.Of(unix.CAP_NET_RAW, unix.CAP_NET_ADMIN)

// nobody is the user the non-root case runs as.
const nobody = 65534

// TestLeastPrivilege runs knockd with the unit's capabilities (setpriv,
// as systemd would start it), as plain root with all of them, and as a
// user other than root given the two as ambient capabilities (the unit
// with User= and AmbientCapabilities=): each way, once it serves,
// /proc/PID/status shows only the unit's two in the effective, permitted
// and bounding sets (and in the inheritable and ambient sets only if they
// were given there, for the commands), and a knock from the client's side
// of the veth opens the door and its stop command closes it.
func TestLeastPrivilege(t *testing.T) {
	tests := []struct {
		name     string
		wrap     []string
		ambient  caps.Set // CapInh and CapAmb
		stateUID int      // owner of the state directory
		fileMode bool     // also follow a firewall log (LogTail)
	}{
		{"unit-capabilities", []string{"setpriv", "--no-new-privs", "--inh-caps=-all", "--bounding-set=-all,+net_raw,+net_admin", "--"}, 0, 0, false},
		{"root-all-capabilities", nil, 0, 0, false},
		{"non-root-ambient", []string{"setpriv", "--no-new-privs", "--reuid=65534", "--regid=65534", "--clear-groups",
			"--inh-caps=-all,+net_raw,+net_admin", "--ambient-caps=-all,+net_raw,+net_admin", "--bounding-set=-all,+net_raw,+net_admin", "--"},
			unitCaps, nobody, false},
		// A log rotated by a syslog running as its own user is reopened
		// only with CAP_DAC_READ_SEARCH, so file mode keeps it.
		{"root-file-mode", nil, 0, 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			netns.Require(t, "ip", "nc", "setpriv")
			if ok := checkUnitCaps(t); !ok {
				return
			}
			p := netns.NewPair(t)
			p.Firewall(t, netns.IPTables)
			service(t, p, servicePort)
			var extra []string
			if tc.stateUID != 0 {
				extra = []string{"--state-dir", stateDirOwnedBy(t, tc.stateUID)}
			}
			conf, keep := example("knockd-iptables.conf"), unitCaps
			if tc.fileMode {
				conf, keep = withLogTail(t, conf), unitCaps|caps.Of(unix.CAP_DAC_READ_SEARCH)
			}
			k := startKnockdIn(t, p, tc.wrap, conf, extra...)

			st, err := caps.Status(k.cmd.Process.Pid)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]caps.Set{"CapEff": st.Effective, "CapPrm": st.Permitted, "CapBnd": st.Bounding, "CapInh": st.Inheritable, "CapAmb": st.Ambient}
			want := map[string]caps.Set{"CapEff": keep, "CapPrm": keep, "CapBnd": keep, "CapInh": tc.ambient, "CapAmb": tc.ambient}
			for k := range want {
				if got[k] != want[k] {
					t.Errorf("%s = %q, want %q", k, got[k], want[k])
				}
			}

			dst, src := p.ServerAddr, p.ClientAddr
			if p.Reachable(t, dst, servicePort) {
				t.Fatalf("service reachable before the knock")
			}
			ourKnock(nil, "7000", "8000", "9000")(t, p, dst)
			k.waitLog(src.String()+": door2222: OPEN SESAME", 5*time.Second)
			iptablesGuard.waitAllowed(t, p, false, []string{src.String()}, 2*time.Second)
			if err := p.WaitTCP(t, dst, servicePort, true, 2*time.Second); err != nil {
				t.Fatalf("after the knock: %v", err)
			}
			iptablesGuard.waitAllowed(t, p, false, nil, cmdTimeout(t, "knockd-iptables.conf")+3*time.Second)
			checkCommandsOK(t, k)
		})
	}
}

// checkUnitCaps keeps unitCaps and the unit file saying the same.
func checkUnitCaps(t *testing.T) bool {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "examples", "doorward.service"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^CapabilityBoundingSet=(.*)$`).FindSubmatch(b)
	if m == nil {
		t.Fatal("doorward.service: no CapabilityBoundingSet")
	}
	if got, want := strings.ToLower(strings.Join(strings.Fields(string(m[1])), ",")), "cap_net_raw,cap_net_admin"; got != want {
		t.Errorf("doorward.service: CapabilityBoundingSet %s, this test runs with %s", got, want)
		return false
	}
	return true
}

// stateDirOwnedBy makes a state directory for a daemon running as uid,
// in a directory it can reach (a test's TempDir is root's alone).
func stateDirOwnedBy(t *testing.T, uid int) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "doorward-e2e-state-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, "state")
	if err := os.Mkdir(state, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(state, uid, uid); err != nil {
		t.Fatal(err)
	}
	return state
}

// withLogTail writes conf with an [options] LogTail (an empty log) in
// front, so the daemon captures and follows a log.
func withLogTail(t *testing.T, conf string) string {
	t.Helper()
	dir := t.TempDir()
	b, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "firewall.log")
	if err := os.WriteFile(logPath, nil, 0o640); err != nil {
		t.Fatal(err)
	}
	head := "[options]\n\tLogTail = " + logPath + "\n\n[fw]\n\tType = logformat\n\tFormat = iptables\n\tPrefix = DOORWARD:\n\n"
	out := filepath.Join(dir, "knockd.conf")
	if err := os.WriteFile(out, append([]byte(head), b...), 0o644); err != nil {
		t.Fatal(err)
	}
	return out
}
