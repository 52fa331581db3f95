// Package redistest runs a real redis-server for tests: on a unix socket
// in a temporary folder (or on a loopback TCP port, for replicas and
// Sentinel, which name their servers by host and port), no persistence,
// killed at cleanup. Tests of the shared backend run against the server
// the fleet runs, not a fake.
package redistest

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
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
	sock string // "" on TCP
	addr string // 127.0.0.1:port on TCP
	prog string // redis-server or redis-sentinel
	args []string

	mu  sync.Mutex
	cmd *exec.Cmd
}

// Start starts redis-server, or skips the test when it is not installed
// (fails under CI=true: .ci/run installs it).
func Start(t testing.TB) *Server {
	t.Helper()
	s := newServer(t, "redis-server", "redis-server")
	s.sock = filepath.Join(s.dir, "redis.sock")
	s.args = []string{"--port", "0", "--unixsocket", s.sock, "--unixsocketperm", "700"}
	s.Restart()
	t.Cleanup(s.Kill)
	return s
}

// StartTCP starts redis-server on a free port of 127.0.0.1, with args
// added to its command line (such as "--replicaof", host, port).
func StartTCP(t testing.TB, args ...string) *Server {
	t.Helper()
	s := newServer(t, "redis-server", "redis-server")
	s.addr = freePort(t)
	_, port, _ := net.SplitHostPort(s.addr)
	s.args = append([]string{"--bind", "127.0.0.1", "--port", port}, args...)
	s.Restart()
	t.Cleanup(s.Kill)
	return s
}

// StartSentinel starts redis-sentinel on a free port of 127.0.0.1,
// watching master under name. It acts alone (quorum 1), so SENTINEL
// FAILOVER and a master's death need no other sentinel's vote.
func StartSentinel(t testing.TB, name string, master *Server) *Server {
	t.Helper()
	s := newServer(t, "redis-sentinel", "redis-sentinel")
	s.addr = freePort(t)
	host, port, _ := net.SplitHostPort(master.Addr())
	_, own, _ := net.SplitHostPort(s.addr)
	// Sentinel rewrites its config file: it lives in the test's folder.
	conf := filepath.Join(s.dir, "sentinel.conf")
	text := fmt.Sprintf("bind 127.0.0.1\nport %s\nsentinel monitor %s %s %s 1\n"+
		"sentinel down-after-milliseconds %[2]s 1000\nsentinel failover-timeout %[2]s 10000\n", own, name, host, port)
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	s.args = []string{conf}
	s.Restart()
	t.Cleanup(s.Kill)
	return s
}

// newServer checks that prog (of the Debian package pkg) is installed
// and makes the server's folder. Without prog the test is skipped (it
// fails under CI=true: .ci/run installs it).
func newServer(t testing.TB, prog, pkg string) *Server {
	t.Helper()
	if _, err := exec.LookPath(prog); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s not installed (Debian package %s): %v", prog, pkg, err)
		}
		t.Skipf("%s not installed: %v", prog, err)
	}
	// A short folder: a unix socket path is limited to 107 bytes.
	dir, err := os.MkdirTemp("", "redis")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return &Server{t: t, dir: dir, prog: prog}
}

// freePort is a loopback address no one listens on now; the server
// started on it next fails (and says why in its log) in the unlikely
// case another takes it first.
func freePort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// URL is the server's address as [options] State takes it.
func (s *Server) URL() string {
	if s.sock == "" {
		return "redis://" + s.addr + "/0"
	}
	return "unix://" + s.sock
}

// Addr is a TCP server's host:port ("" on a unix socket).
func (s *Server) Addr() string { return s.addr }

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
	if s.sock != "" {
		os.Remove(s.sock)
	}
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
	args := append(slices.Clone(s.args), "--dir", s.dir, "--logfile", filepath.Join(s.dir, "redis.log"))
	if s.prog == "redis-server" {
		args = append(args, "--save", "", "--appendonly", "no")
	}
	cmd := exec.Command(s.prog, args...)
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("%s: %v", s.prog, err)
	}
	s.cmd = cmd
	network, addr := "unix", s.sock
	if s.sock == "" {
		network, addr = "tcp", s.addr
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := ping(network, addr); err == nil {
			return
		} else if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(s.dir, "redis.log"))
			s.t.Fatalf("%s did not answer on %s: %v\n%s", s.prog, addr, err, log)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Log is the server's log so far, for a failure's report.
func (s *Server) Log() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "redis.log"))
	return string(b)
}

func ping(network, addr string) error {
	c, err := net.DialTimeout(network, addr, time.Second)
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
