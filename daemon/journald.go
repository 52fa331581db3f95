package daemon

import (
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
)

// Under systemd, stdout is often a stream to journald, which reads a
// "<N>" at the start of each line as the line's priority (sd-daemon(3))
// and stamps the time itself. These are the priorities used.
const (
	prioErr     = 3
	prioWarning = 4
	prioInfo    = 6
	prioDebug   = 7
)

// toJournald reports whether w is the stream systemd connected to journald:
// $JOURNAL_STREAM holds "device:inode" of that stream (systemd.exec(5)), and
// only if w is that very file do its lines reach journald unchanged (a
// redirect to a file or a pipe keeps the variable but not the inode).
func toJournald(w io.Writer) bool {
	env := os.Getenv("JOURNAL_STREAM")
	f, ok := w.(*os.File)
	if env == "" || !ok {
		return false
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		return false
	}
	return env == fmt.Sprintf("%d:%d", st.Dev, st.Ino)
}

// levelRules give a knockd log line its priority by its text. The lines
// are a compatibility contract (admins grep them), so they are matched
// rather than rewritten with a level each; the first rule that matches
// wins, and a line matching none is information (a knock, a door opened
// or closed, a command run, start-up and shutdown).
var levelRules = []struct {
	prio int
	subs []string
}{
	// doorman's own levels ("door: warn: ..."), and explicit warnings.
	{prioErr, []string{": error: ", ": crit: ", ": alert: ", ": emerg: "}},
	{prioWarning, []string{": warn: ", "warning: ", ": warning"}},
	{prioDebug, []string{": debug: "}},
	{prioInfo, []string{": notice: ", ": info: "}},
	// Normal flow that reads like trouble: a knockdaemon condition that
	// did not hold, a repeat knock in cooldown, the shutdown's counters.
	{prioInfo, []string{"condition false", "in cooldown", "passed the filter"}},
	// A failure that will be retried is a warning; one given up, an error.
	{prioWarning, []string{"retrying", "will reopen", "runs again at next start", "the next start will"}},
	{prioErr, []string{"failed", "giving up", "cannot ", "could not", "error: ", "out of time", "not opening", "not opened",
		"not running this knock", "config: ", "config reload: ", "bad address", "non-zero status"}},
	// Knocks or packets not acted on, limits reached, a door left open by a
	// crash, a one-time file used up.
	{prioWarning, []string{"refused", "ignored", "dropped", "suppressed", "evicted", "too many", "disabling the door",
		"store full", "no inotify", "left open by a previous run", "skipped", "takes effect at restart"}},
}

// levelOf is the journald priority of a log line.
func levelOf(msg string) int {
	for _, r := range levelRules {
		for _, s := range r.subs {
			if strings.Contains(msg, s) {
				return r.prio
			}
		}
	}
	return prioInfo
}

// writePrio writes msg to w for journald: every line (a message may hold
// several) with the priority in front, since journald reads each line as
// its own entry.
func writePrio(w io.Writer, prio int, msg string) {
	var b strings.Builder
	for line := range strings.SplitSeq(strings.TrimSuffix(msg, "\n"), "\n") {
		fmt.Fprintf(&b, "<%d>%s\n", prio, line)
	}
	io.WriteString(w, b.String())
}

// stderrFor is w, or, when w is journald's stream, w with each line's
// priority in front: what Live writes to stderr is why it cannot start (a
// config error with its file:line, a capture it cannot open), so it is an
// error, or a warning where it says so.
func stderrFor(w io.Writer) io.Writer {
	if !toJournald(w) {
		return w
	}
	return prioStderr{w}
}

// prioStderr takes whole lines per Write, as fmt.Fprintf of a message
// ending in "\n" gives them.
type prioStderr struct{ w io.Writer }

func (p prioStderr) Write(b []byte) (int, error) {
	prio := prioErr
	if strings.HasPrefix(string(b), "warning: ") {
		prio = prioWarning
	}
	writePrio(p.w, prio, string(b))
	return len(b), nil
}
