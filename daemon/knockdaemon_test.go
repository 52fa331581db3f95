package daemon

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	kdetect "github.com/doorward/doorward/detectors/knockdaemon"
)

// TestStartFailsWithoutSpentStore: a port-span door whose spent store the
// daemon cannot open does not start: Live exits 1 and names the file,
// rather than serving knocks it would forget at a restart (they could then
// be replayed). Spent_Knocks = 0 is the way to run such a door.
func TestStartFailsWithoutSpentStore(t *testing.T) {
	dir := t.TempDir()
	logPath, state := filepath.Join(dir, "firewall.log"), filepath.Join(dir, "state")
	store := filepath.Join(state, kdetect.SpentFile)
	for _, err := range []error{
		os.WriteFile(logPath, nil, 0o644),
		os.Mkdir(state, 0o700),
		os.Mkdir(store, 0o700), // not a file the store can be kept in
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	door := "\n[span]\n\tType = knockdaemon\n\t" + strings.ReplaceAll(spanDoor, "\n", "\n\t") + "\n"
	for _, tc := range []struct {
		extra string
		code  int
	}{
		{door, 1},
		{door + "\tSpent_Knocks = 0\n", 0},
	} {
		conf := filepath.Join(dir, "knockd.conf")
		if err := os.WriteFile(conf, []byte(fmt.Sprintf(fileModeConf, logPath, state)+tc.extra), 0o644); err != nil {
			t.Fatal(err)
		}
		var out, errOut syncBuffer
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan int, 1)
		go func() {
			done <- Live(ctx, Options{Config: conf, Stdout: &out, Stderr: &errOut, Verbose: true}, make(chan os.Signal))
		}()
		if tc.code == 0 {
			// It serves: stop it once it follows the log.
			for deadline := time.Now().Add(10 * time.Second); !strings.Contains(out.String(), "starting up"); time.Sleep(20 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("Spent_Knocks = 0: no start in:\n%s\n%s", out.String(), errOut.String())
				}
			}
			cancel()
		}
		select {
		case code := <-done:
			if code != tc.code {
				t.Errorf("%q: exit %d, want %d; stderr:\n%s", tc.extra, code, tc.code, errOut.String())
			}
		case <-time.After(10 * time.Second):
			cancel()
			t.Fatalf("%q: the daemon started (stdout:\n%s)", tc.extra, out.String())
		}
		cancel()
		if tc.code == 1 && !strings.Contains(errOut.String(), "port-span spent store: "+store) {
			t.Errorf("stderr does not name the spent store %s:\n%s", store, errOut.String())
		}
	}
}
