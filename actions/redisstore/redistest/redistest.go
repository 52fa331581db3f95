// Package redistest runs a real redis-server for tests: on a unix socket
// in a temporary folder, no persistence, killed at cleanup. Tests of the
// shared backend run against the server the fleet runs, not a fake.
package redistest

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/doorward/doorward/actions/filestore"
	"github.com/doorward/doorward/actions/redisstore"
)

// Server is a running (or stopped) redis-server of one test.
type Server struct {
	t    testing.TB
	dir  string
	sock string

	mu  sync.Mutex
	cmd *exec.Cmd
}

// Start starts redis-server, or skips the test when it is not installed
// (fails under CI=true: .ci/run installs it).
func Start(t testing.TB) *Server {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("redis-server not installed (Debian package redis-server): %v", err)
		}
		t.Skipf("redis-server not installed: %v", err)
	}
	// A short folder: a unix socket path is limited to 107 bytes.
	dir, err := os.MkdirTemp("", "redis")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	s := &Server{t: t, dir: dir, sock: filepath.Join(dir, "redis.sock")}
	s.Restart()
	t.Cleanup(s.Kill)
	return s
}

// URL is the server's address as [options] State takes it.
func (s *Server) URL() string { return "unix://" + s.sock }

// Store is a Store on the server, as a fleet's daemon opens one, with its
// doors in memory and its log lines written to log; closed at cleanup.
// Tests of a caller's behaviour while Redis is down open it, then Kill.
func (s *Server) Store(log io.Writer) *redisstore.Store {
	s.t.Helper()
	st, err := redisstore.New(redisstore.Options{URL: s.URL()}, filestore.Memory().Doors,
		func(f string, a ...any) { fmt.Fprintf(log, f+"\n", a...) })
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { st.Close() })
	return st
}

// Socket is the unix socket's path.
func (s *Server) Socket() string { return s.sock }

// Kill stops the server at once (SIGKILL): its data is gone, as after a
// crash of a server without persistence.
func (s *Server) Kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Kill()
	s.cmd.Wait()
	s.cmd = nil
	os.Remove(s.sock)
}

// Restart starts the server again on the same socket, and waits until it
// answers.
func (s *Server) Restart() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return
	}
	cmd := exec.Command("redis-server", "--port", "0", "--unixsocket", s.sock, "--unixsocketperm", "700",
		"--save", "", "--appendonly", "no", "--dir", s.dir, "--logfile", filepath.Join(s.dir, "redis.log"))
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("redis-server: %v", err)
	}
	s.cmd = cmd
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := ping(s.sock); err == nil {
			return
		} else if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(s.dir, "redis.log"))
			s.t.Fatalf("redis-server did not answer on %s: %v\n%s", s.sock, err, log)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func ping(sock string) error {
	c, err := net.DialTimeout("unix", sock, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	if _, err := fmt.Fprint(c, "PING\r\n"); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "+PONG") {
		return fmt.Errorf("PING: %q", line)
	}
	return nil
}
