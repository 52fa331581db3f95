package daemon

import (
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestReloadAppliesCommandTimeout: Command_Timeout is an [options] key like
// the others, so an accepted SIGHUP applies it to the next command (it was
// read once at start and a reload kept the old limit).
func TestReloadAppliesCommandTimeout(t *testing.T) {
	var out syncBuffer
	r := startFileMode(t, "", Options{Stdout: &out, Verbose: true})

	limit := func(src string) time.Duration {
		t.Helper()
		r.knock(src)
		if line := r.command(5*time.Second, "knock from "+src); line != "open "+src {
			t.Fatalf("ran %q", line)
		}
		select {
		case d := <-r.limits:
			return d
		case <-time.After(time.Second):
			t.Fatal("the command ran without a deadline")
			return 0
		}
	}
	if d := limit("192.0.2.1"); d < 25*time.Second || d > 30*time.Second {
		t.Fatalf("first command's limit %v, want the default 30s", d)
	}

	conf, err := os.ReadFile(r.conf)
	if err != nil {
		t.Fatal(err)
	}
	edited := strings.Replace(string(conf), "[options]\n", "[options]\n\tCommand_Timeout = 7\n", 1)
	if err := os.WriteFile(r.conf, []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	r.hup <- syscall.SIGHUP
	r.waitFor("re-reading config file: " + r.conf)
	time.Sleep(300 * time.Millisecond) // the new plan is swapped in on the packet loop
	if d := limit("192.0.2.2"); d < 5*time.Second || d > 7*time.Second {
		t.Fatalf("after the reload the limit is %v, want 7s", d)
	}
}
