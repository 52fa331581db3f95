package daemon

import (
	"syscall"
	"testing"

	"github.com/doorward/doorward/internal/sdnotify/sdnotifytest"
)

// TestLiveNotifiesSystemd: under Type=notify, READY=1 comes once Live
// serves, a SIGHUP is bracketed by RELOADING=1 and READY=1, and shutdown
// starts with STOPPING=1, each a datagram on $NOTIFY_SOCKET.
func TestLiveNotifiesSystemd(t *testing.T) {
	sock, next := sdnotifytest.Listen(t)
	t.Setenv("NOTIFY_SOCKET", sock)
	var out syncBuffer
	r := startFileMode(t, "", Options{Stdout: &out, Verbose: true})
	var got []string
	got = append(got, next())
	r.hup <- syscall.SIGHUP
	got = append(got, next()[:len("RELOADING=1\nMONOTONIC_USEC=")], next())
	r.cancel()
	got = append(got, next())
	want := []string{"READY=1\n", "RELOADING=1\nMONOTONIC_USEC=", "READY=1\n", "STOPPING=1\n"}
	if len(got) != len(want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("got %q, want %q", got, want)
			break
		}
	}
}
