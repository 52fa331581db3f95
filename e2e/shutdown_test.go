package e2e

import (
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/doorward/doorward/e2e/netns"
)

// TestSIGTERMClosesDoors stops knockd while a door is open: it must run the
// pending stop command before it exits, and exit 0.
func TestSIGTERMClosesDoors(t *testing.T) {
	for _, g := range []guard{iptablesGuard, nftablesGuard} {
		t.Run(string(g.flavour), func(t *testing.T) {
			t.Parallel()
			netns.Require(t, "ip", "nc")
			p := netns.NewPair(t)
			k := g.setup(t, p)
			dst, src := p.ServerAddr, p.ClientAddr
			_, stop := commands(t, g.conf, "door2222", src)

			ourKnock(nil, "7000", "8000", "9000")(t, p, dst)
			k.waitLog(src.String()+": door2222: OPEN SESAME", 5*time.Second)
			g.waitAllowed(t, p, false, []string{src.String()}, 2*time.Second)

			termAt := time.Now()
			if err := k.cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			st, ok := p.Wait(k.cmd, 10*time.Second)
			if !ok {
				t.Fatal("knockd still running 10 s after SIGTERM")
			}
			took := time.Since(termAt)
			// Right after exit, without waiting: the rule must be gone.
			if got := g.allowed(t, p, false); len(got) != 0 {
				t.Errorf("after knockd exited, allowed sources %q, want none", got)
			}
			if st.ExitCode() != 0 {
				t.Errorf("exit status %v, want 0", st)
			}
			if took >= cmdTimeout(t, g.conf) {
				t.Errorf("exit took %v: it waited for Cmd_Timeout instead of closing at once", took)
			}
			out := strings.Split(k.output(), "\n")
			down := slices.IndexFunc(out, func(l string) bool { return strings.Contains(l, "shutting down") })
			ran := slices.IndexFunc(out, func(l string) bool { return strings.Contains(l, "door2222: running command: "+stop) })
			switch {
			case down < 0:
				t.Error(`no "shutting down" line`)
			case ran < 0:
				t.Errorf("stop command %q not logged", stop)
			case ran < down:
				t.Errorf("stop command ran before shutdown began (Cmd_Timeout passed?): the test did not exercise SIGTERM")
			}
			checkCommandsOK(t, k)
		})
	}
}
