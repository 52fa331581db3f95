// Package sdnotifytest stands in for systemd in tests: a unix datagram
// socket to put in $NOTIFY_SOCKET, and the messages the daemon sends to it.
package sdnotifytest

import (
	"net"
	"path/filepath"
	"testing"
	"time"
)

// Listen binds a notify socket in a temporary folder and returns its path
// and a function that returns the next message, failing the test if none
// comes within 10 s. The socket is closed when the test ends.
func Listen(t testing.TB) (path string, next func() string) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "notify")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return path, func() string {
		t.Helper()
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		b := make([]byte, 512)
		n, err := c.Read(b)
		if err != nil {
			t.Fatal(err)
		}
		return string(b[:n])
	}
}
