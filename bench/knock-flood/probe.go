package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"
)

// runProbe measures the benchmark's latency probe by itself: how long a
// start command of the form `exec date +%s.%N` takes from the moment a Go
// daemon starts it (os/exec, /bin/sh -c, as Doorward's knockd does) to
// date's clock read. That time is inside every knock-to-command latency
// flood.sh reports, for both daemons, and is not the daemon's own work.
// It prints "probe median_ms=M max_ms=X n=N".
func runProbe(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("knock-flood probe", flag.ContinueOnError)
	fs.SetOutput(stderr)
	n := fs.Int("n", 20, "how many times (1..1000)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *n < 1 || *n > 1000 || fs.NArg() != 0 {
		fmt.Fprintln(stderr, "usage: knock-flood probe [-n N]")
		return 2
	}
	var took []time.Duration
	for range *n {
		var out bytes.Buffer
		cmd := exec.Command("/bin/sh", "-c", "exec date +%s.%N")
		cmd.Stdout = &out
		t0 := time.Now()
		if err := cmd.Run(); err != nil {
			fmt.Fprintln(stderr, "knock-flood probe:", err)
			return 1
		}
		t1, err := parseUnixNano(strings.TrimSpace(out.String()))
		if err != nil {
			fmt.Fprintln(stderr, "knock-flood probe:", err)
			return 1
		}
		took = append(took, t1.Sub(t0))
	}
	med, worst := medianMax(took)
	fmt.Fprintf(stdout, "probe median_ms=%.2f max_ms=%.2f n=%d\n", ms(med), ms(worst), len(took))
	return 0
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// parseUnixNano reads date's "%s.%N": seconds, a dot, nine digits.
func parseUnixNano(s string) (time.Time, error) {
	sec, frac, ok := strings.Cut(s, ".")
	if !ok || len(frac) != 9 {
		return time.Time{}, fmt.Errorf("date printed %q, want SECONDS.NANOSECONDS", s)
	}
	a, err1 := strconv.ParseInt(sec, 10, 64)
	b, err2 := strconv.ParseInt(frac, 10, 64)
	if err1 != nil || err2 != nil {
		return time.Time{}, fmt.Errorf("date printed %q, want SECONDS.NANOSECONDS", s)
	}
	return time.Unix(a, b), nil
}

// medianMax of a non-empty list (the mean of the middle two for an even
// count).
func medianMax(d []time.Duration) (median, max time.Duration) {
	s := slices.Clone(d)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2], s[n-1]
	}
	return (s[n/2-1] + s[n/2]) / 2, s[n-1]
}
