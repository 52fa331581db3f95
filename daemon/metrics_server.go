package daemon

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/doorward/doorward/actions/journal"
	"github.com/doorward/doorward/config/knockd"
)

// metricsSocketMode lets the daemon's user and group scrape a unix socket
// endpoint, no one else.
const metricsSocketMode = 0o660

// metricsServer serves /metrics on its own goroutines. A scrape reads
// atomics and copies the open-door list: it never waits for the packet
// path, and a slow or stuck client costs the daemon nothing but its
// connection, which the timeouts below close.
type metricsServer struct {
	srv  *http.Server
	ln   net.Listener
	addr string // [options] Metrics as started
	path string // unix socket to remove at exit
	done chan struct{}
}

// listenMetrics opens addr ([options] Metrics, validated by the config
// parser) and serves reg on it until close.
func listenMetrics(addr string, reg *prometheus.Registry, logf func(string, ...any)) (*metricsServer, error) {
	s := &metricsServer{done: make(chan struct{})}
	var err error
	if path, ok := strings.CutPrefix(addr, knockd.MetricsUnix); ok {
		s.ln, err = listenUnix(path)
		s.path = path
	} else {
		s.ln, err = net.Listen("tcp", addr)
	}
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:            promLog(logf),
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: 4,
		Timeout:             5 * time.Second,
	}))
	s.srv = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    8 << 10,
	}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logf("metrics: %v", err)
		}
	}()
	return s, nil
}

// listenUnix binds a unix socket at path with metricsSocketMode from the
// first moment: it is bound in a private directory beside path, given its
// mode, and renamed into place, so no one can connect while it has the
// umask's mode. A socket left by a run that was killed is replaced;
// anything else at path is an error.
func listenUnix(path string) (net.Listener, error) {
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode().Type() != fs.ModeSocket {
			return nil, fmt.Errorf("%s exists and is not a socket", path)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	dir, err := os.MkdirTemp(filepath.Dir(path), ".metrics-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	tmp := filepath.Join(dir, "s")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmp, Net: "unix"})
	if err != nil {
		return nil, err
	}
	ln.SetUnlinkOnClose(false) // it is renamed: metricsServer.close removes path
	if err := os.Chmod(tmp, metricsSocketMode); err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		ln.Close()
		return nil, err
	}
	return ln, nil
}

// close stops serving, waits briefly for scrapes in progress, and removes
// the unix socket.
func (s *metricsServer) close() {
	if s == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if s.srv.Shutdown(ctx) != nil {
		s.srv.Close()
	}
	<-s.done
	if s.path != "" {
		os.Remove(s.path)
	}
}

// promLog passes promhttp's errors (a collector failing) to the daemon's log.
type promLog func(string, ...any)

func (l promLog) Println(v ...any) { l("metrics: %s", strings.TrimSuffix(fmt.Sprintln(v...), "\n")) }

// serveMetrics starts the endpoint if cfg asks for one (nil otherwise),
// reading open doors from jr and kernel counters from l's captures.
func (l *live) serveMetrics(cfg *knockd.Config, m *metrics, jr *journal.Journal) (*metricsServer, error) {
	if jr != nil {
		m.open = jr.OpenDoors
	}
	m.captures = l.captureStats
	if cfg.Options.Metrics == "" {
		return nil, nil
	}
	s, err := listenMetrics(cfg.Options.Metrics, m.registry(), l.log.Logf)
	if s != nil {
		s.addr = cfg.Options.Metrics
	}
	return s, err
}

// reloaded says when a reload changed [options] Metrics: the endpoint
// keeps its address until a restart, so a scraper never loses it to a
// typo'd reload.
func (s *metricsServer) reloaded(cfg *knockd.Config, logf func(string, ...any)) {
	var addr string
	if s != nil {
		addr = s.addr
	}
	if cfg.Options.Metrics != addr {
		logf("config: Metrics changed; the endpoint keeps %q until a restart", addr)
	}
}

// captureStats reports each open capture's kernel counters. The source's
// lock is held only to read the pointer: Stats has its own.
func (l *live) captureStats(yield func(iface string, received, dropped uint64)) {
	for _, s := range l.sources {
		s.mu.Lock()
		src := s.src
		s.mu.Unlock()
		if src == nil {
			continue
		}
		if received, dropped, err := src.Stats(); err == nil {
			yield(s.iface, received, dropped)
		}
	}
}
