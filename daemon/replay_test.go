package daemon

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/doorward/doorward/detectors/decode"
	"github.com/doorward/doorward/detectors/pcaptest"
)

// TestManPageExamples replays knocks against the knockd man page's examples,
// unchanged from examples/, and checks which commands ran and when (in
// capture time). The third example needs one-time sequences.
func TestManPageExamples(t *testing.T) {
	for _, tc := range []struct {
		conf    string
		packets string
		want    []string
	}{
		{
			conf: "man-1.conf",
			packets: `
0.0 10.0.0.2 10.0.0.1 7000/tcp
0.5 10.0.0.2 10.0.0.1 8000/tcp
1.0 10.0.0.2 10.0.0.1 9000/tcp
60  10.0.0.2 10.0.0.1 9000/tcp
61  10.0.0.2 10.0.0.1 8000/tcp
62  10.0.0.2 10.0.0.1 7000/tcp
`,
			want: []string{
				"+1s /sbin/iptables -A INPUT -s 10.0.0.2 --dport 22 -j ACCEPT",
				"+1m2s /sbin/iptables -D INPUT -s 10.0.0.2 --dport 22 -j ACCEPT",
			},
		},
		{
			conf: "man-2.conf",
			packets: `
0.0 10.0.0.2 10.0.0.1 2222/udp
0.1 10.0.0.2 10.0.0.1 3333/tcp S
0.2 10.0.0.2 10.0.0.1 3333/tcp SA
0.3 10.0.0.2 10.0.0.1 4444/udp
`,
			want: []string{
				"+300ms /usr/sbin/iptables -A INPUT -s 10.0.0.2 -p tcp --syn -j ACCEPT",
				"+5.3s /usr/sbin/iptables -D INPUT -s 10.0.0.2 -p tcp --syn -j ACCEPT",
			},
		},
		{
			// An IPv4-only door (no _6 commands) ignores IPv6 knockers:
			// knockd ran iptables with an IPv6 address, which failed, and
			// so did the stop command, for ever.
			conf: "man-1.conf",
			packets: `
0.0 fd00::2 fd00::1 7000/tcp
0.5 fd00::2 fd00::1 8000/tcp
1.0 fd00::2 fd00::1 9000/tcp
`,
			want: []string{},
		},
		{
			conf: "knockd-iptables.conf",
			packets: `
0.0 fd00::2 fd00::1 7000/tcp
0.1 fd00::2 fd00::1 8000/tcp
0.2 fd00::2 fd00::1 9000/tcp
`,
		},
	} {
		t.Run(tc.conf, func(t *testing.T) {
			got := replayWith(t, filepath.Join("..", "examples", tc.conf), tc.packets)
			if tc.want == nil {
				if len(got) != 2 || !strings.Contains(got[0], "fd00::2") || !strings.Contains(got[1], "fd00::2") {
					t.Errorf("want an open and a close for fd00::2, got %q", got)
				}
				return
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("commands:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

var replayT0 = time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)

// replayWith replays packets (pcaptest.ParseScript form) against conf and
// returns the commands run, each with the capture time it ran at.
func replayWith(t *testing.T, conf, packets string) []string {
	t.Helper()
	dir := t.TempDir()
	frames, err := pcaptest.ParseScript(strings.NewReader(packets), replayT0)
	if err != nil {
		t.Fatal(err)
	}
	pcap := writePcap(t, filepath.Join(dir, "k.pcap"), frames)
	var got []string
	var now time.Time
	var out, errOut bytes.Buffer
	o := Options{
		Config:  conf,
		LogFile: filepath.Join(dir, "knockd.log"), // the examples log to /var/log
		Stdout:  &out,
		Stderr:  &errOut,
		Verbose: true,
		Runner: func(ctx context.Context, line string) (int, error) {
			got = append(got, fmt.Sprintf("+%v %s", now.Sub(replayT0), line))
			return 0, nil
		},
	}
	if code := replay(context.Background(), o, pcap, &now); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	t.Logf("log:\n%s", out.String())
	return got
}

// writePcap writes frames as an Ethernet pcap at path and returns path.
func writePcap(t *testing.T, path string, frames []pcaptest.Frame) string {
	t.Helper()
	var buf bytes.Buffer
	if err := pcaptest.WritePcap(&buf, decode.Ethernet, frames); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}
