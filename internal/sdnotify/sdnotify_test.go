package sdnotify

import (
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"
)

// listen opens a real unixgram socket named name (a path, or "@x" for an
// abstract one) and returns a function reading one datagram.
func listen(t *testing.T, name string) func() string {
	t.Helper()
	bind := name
	if bind[0] == '@' {
		bind = "\x00" + bind[1:]
	}
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: bind, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return func() string {
		t.Helper()
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		b := make([]byte, 4096)
		n, err := c.Read(b)
		if err != nil {
			t.Fatal(err)
		}
		return string(b[:n])
	}
}

func TestSend(t *testing.T) {
	for _, tc := range []struct {
		name string
		addr func(t *testing.T) string
	}{
		{"path", func(t *testing.T) string { return filepath.Join(t.TempDir(), "notify") }},
		{"abstract", func(t *testing.T) string { return "@doorward-test-" + strconv.Itoa(time.Now().Nanosecond()) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := tc.addr(t)
			read := listen(t, addr)
			t.Setenv("NOTIFY_SOCKET", addr)
			n := FromEnv()
			if !n.Enabled() {
				t.Fatal("not enabled with NOTIFY_SOCKET set")
			}
			var got []string
			for _, send := range []func() error{n.Ready, n.Reloading, n.Ready, n.Stopping} {
				if err := send(); err != nil {
					t.Fatal(err)
				}
				got = append(got, read())
			}
			want := []string{`READY=1\n`, `RELOADING=1\nMONOTONIC_USEC=[1-9][0-9]*\n`, `READY=1\n`, `STOPPING=1\n`}
			for i := range want {
				if !regexp.MustCompile(`^` + want[i] + `$`).MatchString(got[i]) {
					t.Errorf("datagram %d = %q, want %s", i, got[i], want[i])
				}
			}
		})
	}
}

// TestFromEnvUnsets: the commands the daemon runs must not inherit the
// socket, and without one nothing is sent and nothing fails.
func TestFromEnvUnsets(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "/nonexistent/notify")
	n := FromEnv()
	if _, set := lookup("NOTIFY_SOCKET"); set {
		t.Error("NOTIFY_SOCKET still set")
	}
	if n.Send("READY=1") == nil {
		t.Error("sending to a missing socket did not fail")
	}
	none := FromEnv()
	if none.Enabled() || none.Ready() != nil || none.Reloading() != nil || (*Notifier)(nil).Stopping() != nil {
		t.Error("without NOTIFY_SOCKET a call did something")
	}
}

func lookup(k string) (string, bool) { return os.LookupEnv(k) }
