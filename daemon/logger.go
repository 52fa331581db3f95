package daemon

import (
	"fmt"
	"io"
	"log/syslog"
	"os"
	"sync"
	"time"
)

// Logger writes knockd's log lines where knockd would: a log file as
// "[YYYY-MM-DD HH:MM] msg", syslog at LOG_NOTICE with ident "knockd", and the
// bare message on stdout in verbose or debug mode. Admins grep these lines,
// so their text is part of the compatibility contract.
type Logger struct {
	mu      sync.Mutex
	file    io.WriteCloser
	path    string
	sys     *syslog.Writer
	stdout  io.Writer
	debug   bool
	now     func() time.Time
	warnOut io.Writer
	prio    bool // stdout is journald's stream: "<N>" per line (journald.go)
}

// LogOptions say where log lines go.
type LogOptions struct {
	File   string    // "" for none
	Syslog bool      // knockd's UseSyslog
	Stdout io.Writer // nil unless -v or -D
	Debug  bool      // -D: also the per-packet and config trace lines
	// Journald: Stdout is journald's stream, so each line carries its
	// priority ("<3>" error … "<7>" debug) for journald to read.
	Journald bool
	Now      func() time.Time
	Warn     io.Writer // where problems opening the destinations are reported
	// SyslogAddr is a unixgram socket to use instead of the system's
	// /dev/log (tests).
	SyslogAddr string
}

// NewLogger opens the destinations. Failing to open the log file or syslog
// is a warning, as in knockd: the daemon still guards the host.
func NewLogger(o LogOptions) *Logger {
	l := &Logger{stdout: o.Stdout, debug: o.Debug, now: o.Now, warnOut: o.Warn, prio: o.Journald}
	if l.now == nil {
		l.now = time.Now
	}
	if l.warnOut == nil {
		l.warnOut = os.Stderr
	}
	if o.File != "" {
		l.openFile(o.File)
	}
	if o.Syslog {
		w, err := openSyslog(o.SyslogAddr)
		if err != nil {
			fmt.Fprintf(l.warnOut, "warning: cannot open syslog: %v\n", err)
		} else {
			l.sys = w
		}
	}
	return l
}

func (l *Logger) openFile(path string) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		fmt.Fprintf(l.warnOut, "warning: cannot open logfile: %v\n", err)
		return
	}
	l.file, l.path = f, path
}

// openSyslog connects as knockd does: ident "knockd", facility user,
// level notice (openlog("knockd", 0, LOG_USER) + LOG_NOTICE).
func openSyslog(addr string) (*syslog.Writer, error) {
	const prio = syslog.LOG_USER | syslog.LOG_NOTICE
	if addr != "" {
		return syslog.Dial("unixgram", addr, prio, "knockd")
	}
	return syslog.New(prio, "knockd")
}

// Reopen closes and reopens the log file (SIGHUP), so logrotate works.
// Unlike knockd, it says nothing when no log file is configured.
func (l *Logger) Reopen(path string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.file != nil {
		l.file.Close()
		l.file, l.path = nil, ""
	}
	if path != "" {
		l.openFile(path)
	}
}

// Logf logs one knockd message to every destination.
func (l *Logger) Logf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.file != nil {
		fmt.Fprintf(l.file, "[%s] %s\n", l.now().Format("2006-01-02 15:04"), msg)
	}
	if l.sys != nil {
		l.sys.Notice(msg)
	}
	switch {
	case l.stdout == nil:
	case l.prio:
		writePrio(l.stdout, levelOf(msg), msg)
	default:
		fmt.Fprintln(l.stdout, msg)
	}
}

// Debugf prints a -D trace line on stdout only.
func (l *Logger) Debugf(format string, args ...any) {
	if !l.debug || l.stdout == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.prio {
		writePrio(l.stdout, prioDebug, fmt.Sprintf(format, args...))
		return
	}
	fmt.Fprintf(l.stdout, format+"\n", args...)
}

// Debugging reports whether -D is on, so callers skip building trace lines.
func (l *Logger) Debugging() bool { return l.debug && l.stdout != nil }

// Close releases the destinations.
func (l *Logger) Close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.file != nil {
		l.file.Close()
		l.file = nil
	}
	if l.sys != nil {
		l.sys.Close()
		l.sys = nil
	}
}
