package doorman

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/doorward/doorward/actions/command"
)

// Script runs one firewall script command line and returns the first line
// of its standard output without the newline; got is false when the script
// printed nothing. err is set only when the script could not be run or was
// killed (timeout). Its exit status is ignored, as doormand ignores it.
type Script func(ctx context.Context, line string) (first string, got bool, err error)

// maxOutput bounds what is kept of a script's output; the rest is
// discarded (still read, so a chatty script cannot block on a full pipe).
const maxOutput = 64 << 10

// Shell is the production Script: /bin/sh -c line (doormand uses popen),
// run by the daemon's one command runner (actions/command), so it is in its
// own process group and killed with its children after timeout.
func Shell(timeout time.Duration) Script {
	return func(ctx context.Context, line string) (string, bool, error) {
		var out capped
		var ee *exec.ExitError
		// Its exit status is ignored, even death by a signal, as doormand
		// ignores it; only our kill (timeout, shutdown) is an error.
		if _, err := command.Exec(ctx, line, timeout, &out); err != nil && !errors.As(err, &ee) {
			return "", false, err
		}
		if len(out.b) == 0 {
			return "", false, nil
		}
		first, _, _ := bytes.Cut(out.b, []byte("\n"))
		return string(first), true, nil
	}
}

// capped keeps the first maxOutput bytes written to it.
type capped struct{ b []byte }

func (c *capped) Write(p []byte) (int, error) {
	if room := maxOutput - len(c.b); room > 0 {
		c.b = append(c.b, p[:min(len(p), room)]...)
	}
	return len(p), nil
}

// Outcome is a script's answer under doormand's protocol (spec §5.1).
type Outcome struct {
	OK    bool // the first character is '0': done
	Fatal bool // the operation failed: severity < 4, or no usable answer
	// Level is the syslog severity the script asked the line to be
	// logged at (0 emerg … 7 debug), for a non-OK answer.
	Level int
	Line  string
	Bad   bool // no output, or fewer than two fields: doormand croaks
}

// Interpret reads a script's first output line: "0…" is success (only the
// first character counts: "0", "0 ok" and "01" all do); anything else must
// be "<errno> <severity> [message]", severity below 4 (warning) failing the
// operation and 4 or more only being logged. No output, or fewer than two
// fields, fails it too.
func Interpret(first string, got bool) Outcome {
	if got && strings.HasPrefix(first, "0") {
		return Outcome{OK: true, Line: first}
	}
	f := strings.FieldsFunc(first, func(r rune) bool { return r == ' ' || r == '\t' })
	if !got || len(f) < 2 {
		return Outcome{Fatal: true, Bad: true, Level: 0, Line: first}
	}
	level := cAtoi(f[1])
	return Outcome{Fatal: level < 4, Level: level & 7, Line: first}
}

func cAtoi(s string) int {
	i := 0
	neg := false
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		neg = s[i] == '-'
		i++
	}
	j := i
	for j < len(s) && s[j] >= '0' && s[j] <= '9' && j-i < 9 {
		j++
	}
	n, _ := strconv.Atoi(s[i:j])
	if neg {
		return -n
	}
	return n
}
