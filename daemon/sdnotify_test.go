package daemon

import (
	"net"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestLiveNotifiesSystemd: under Type=notify, READY=1 comes once Live
// serves, a SIGHUP is bracketed by RELOADING=1 and READY=1, and shutdown
// starts with STOPPING=1, each a datagram on $NOTIFY_SOCKET.
func TestLiveNotifiesSystemd(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	next := func() string {
		t.Helper()
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		b := make([]byte, 512)
		n, err := c.Read(b)
		if err != nil {
			t.Fatal(err)
		}
		return string(b[:n])
	}
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
