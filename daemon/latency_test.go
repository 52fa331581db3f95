package daemon

import (
	"bytes"
	"testing"
	"time"

	"github.com/doorward/doorward/internal/latency"
)

// The latency line: periodically only when start commands ran since the
// last one, always at shutdown.
func TestReportLatency(t *testing.T) {
	var out bytes.Buffer
	l := &live{log: NewLogger(LogOptions{Stdout: &out})}
	s := latency.Summary{Count: 20, P50: 1234567, P99: 1900 * time.Microsecond, Max: 2 * time.Millisecond}
	l.reportLatency(latency.Summary{}, false) // nothing yet: no line
	l.reportLatency(s, false)
	l.reportLatency(s, false) // nothing new: no line
	l.reportLatency(s, true)  // shutdown
	want := "knock-to-command latency: 20 start commands, p50 1.235ms, p99 1.9ms, max 2ms\n" +
		"knock-to-command latency: 20 start commands, p50 1.235ms, p99 1.9ms, max 2ms\n"
	if got := out.String(); got != want {
		t.Errorf("logged:\n%s\nwant:\n%s", got, want)
	}
}
