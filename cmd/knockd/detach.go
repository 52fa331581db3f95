package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"

	"github.com/doorward/doorward/daemon"
)

// -d, the Go way. knockd calls daemon(0, 0) before it reads its config, so
// a config error or a missing interface exits 0 with nothing printed. A Go
// program cannot fork safely, so knockd -d re-executes itself in a new
// session (the daemon, whose pid is final: it writes the pid file) and
// waits: the daemon reports every start-up error through a pipe, which the
// parent prints with exit 1, and says "ready" once it serves (config
// valid, capture open, pid file written), and only then does the parent
// exit 0. The daemon keeps the capture it opened; nothing is opened twice.

const (
	childEnv   = "DOORWARD_DETACHED"
	readyFD    = 3 // the pipe, as the child's first ExtraFiles entry
	readyToken = "\x00ready\n"
)

// detach starts the daemon and relays what it reports until it is ready.
func detach(stderr io.Writer) int {
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintf(stderr, "knockd: cannot daemonize: %v\n", err)
		return 1
	}
	r, w, err := os.Pipe()
	if err != nil {
		fmt.Fprintf(stderr, "knockd: cannot daemonize: %v\n", err)
		return 1
	}
	defer r.Close()
	// Args[0] as we were called (so a multi-call binary still knows
	// itself), stdio on /dev/null, the pipe as fd 3.
	cmd := &exec.Cmd{Path: self, Args: os.Args, Env: append(os.Environ(), childEnv+"="+strconv.Itoa(readyFD)),
		ExtraFiles: []*os.File{w}, SysProcAttr: &syscall.SysProcAttr{Setsid: true}}
	err = cmd.Start()
	w.Close()
	if err != nil {
		fmt.Fprintf(stderr, "knockd: cannot daemonize: %v\n", err)
		return 1
	}
	// The pipe ends when the daemon is ready (it closes it) or exits.
	out, _ := io.ReadAll(r)
	if msg, ok := bytes.CutSuffix(out, []byte(readyToken)); ok {
		stderr.Write(msg)
		cmd.Process.Release()
		return 0
	}
	stderr.Write(out)
	if err := cmd.Wait(); err == nil {
		fmt.Fprintln(stderr, "knockd: the daemon exited during start-up")
	}
	return 1
}

// asDaemon prepares the re-executed process: start-up errors go to the
// parent through the pipe, Ready releases the parent, and the working
// directory becomes / (as daemon(0, 0) does) once the paths given on the
// command line are made absolute. It returns false if this process is not
// the daemon half of -d.
func asDaemon(o *daemon.Options) bool {
	if os.Getenv(childEnv) != strconv.Itoa(readyFD) {
		return false
	}
	// Only our parent's pipe: a variable left in an environment must not
	// make knockd write to whatever fd 3 is.
	f := os.NewFile(readyFD, "ready")
	if fi, err := f.Stat(); err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
		return false
	}
	os.Unsetenv(childEnv)        // not for the commands the daemon runs,
	syscall.CloseOnExec(readyFD) // nor the pipe: the parent waits for its end
	p := &readyPipe{f: f}
	o.Stderr, o.Ready = p, p.ready
	for _, path := range []*string{&o.Config, &o.PidFile, &o.LogFile, &o.StateDir} {
		if *path != "" {
			if abs, err := filepath.Abs(*path); err == nil {
				*path = abs
			}
		}
	}
	if err := os.Chdir("/"); err != nil {
		fmt.Fprintf(p, "knockd: %v\n", err)
	}
	return true
}

// readyPipe is the daemon's stderr until it is ready; after that what is
// written to it is dropped, as stderr is /dev/null.
type readyPipe struct {
	mu sync.Mutex
	f  *os.File // nil once ready
}

func (p *readyPipe) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.f == nil {
		return len(b), nil
	}
	return p.f.Write(b)
}

func (p *readyPipe) ready() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.f == nil {
		return
	}
	io.WriteString(p.f, readyToken) // an error: the parent is gone, nobody to tell
	p.f.Close()
	p.f = nil
}
