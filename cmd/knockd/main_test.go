package main

import (
	"bytes"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/doorward/doorward/detectors/decode"
	"github.com/doorward/doorward/detectors/pcaptest"
	"github.com/rogpeppe/go-internal/testscript"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){"knockd": main})
}

// TestScripts runs testdata/script/*.txtar: flags, exit codes, --check and
// --replay end to end, as an admin would type them.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			// killpid [-QUIT] FILE: the process the pid file names must
			// be running; send it SIGTERM (or SIGQUIT) and wait until it
			// removed the file.
			"killpid": func(ts *testscript.TestScript, neg bool, args []string) {
				sig := syscall.SIGTERM
				if len(args) == 2 && args[0] == "-QUIT" {
					sig, args = syscall.SIGQUIT, args[1:]
				}
				if len(args) != 1 || neg {
					ts.Fatalf("usage: killpid [-QUIT] pidfile")
				}
				b, err := os.ReadFile(ts.MkAbs(args[0]))
				ts.Check(err)
				pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
				ts.Check(err)
				ts.Check(syscall.Kill(pid, sig))
				for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
					if _, err := os.Stat(ts.MkAbs(args[0])); os.IsNotExist(err) {
						return
					}
					if time.Now().After(deadline) {
						ts.Fatalf("pid %d did not stop within 10s", pid)
					}
				}
			},
			// mkpcap packets.txt out.pcap: packets in pcaptest.ParseScript
			// form, written as a pcap (or pcapng if out ends in .pcapng).
			"mkpcap": func(ts *testscript.TestScript, neg bool, args []string) {
				if len(args) != 2 {
					ts.Fatalf("usage: mkpcap packets.txt out.pcap")
				}
				t0 := time.Date(2026, 11, 25, 9, 0, 0, 0, time.Local)
				frames, err := pcaptest.ParseScript(bytes.NewReader([]byte(ts.ReadFile(args[0]))), t0)
				ts.Check(err)
				var buf bytes.Buffer
				if len(args[1]) > 7 && args[1][len(args[1])-7:] == ".pcapng" {
					ts.Check(pcaptest.WritePcapNG(&buf, decode.Ethernet, frames))
				} else {
					ts.Check(pcaptest.WritePcap(&buf, decode.Ethernet, frames))
				}
				ts.Check(os.WriteFile(ts.MkAbs(args[1]), buf.Bytes(), 0o644))
			},
			// signal NAME pidfile: send SIGNAME (QUIT, TERM, INT, HUP) to
			// the pid the file holds (testscript's kill knows only INT
			// and KILL).
			"signal": func(ts *testscript.TestScript, neg bool, args []string) {
				sigs := map[string]syscall.Signal{"QUIT": syscall.SIGQUIT, "TERM": syscall.SIGTERM, "INT": syscall.SIGINT, "HUP": syscall.SIGHUP}
				sig, ok := sigs[args[0]]
				if len(args) != 2 || !ok || neg {
					ts.Fatalf("usage: signal QUIT|TERM|INT|HUP pidfile")
				}
				pid, err := strconv.Atoi(strings.TrimSpace(ts.ReadFile(args[1])))
				ts.Check(err)
				ts.Check(syscall.Kill(pid, sig))
			},
			// waitfile path: wait up to 10 s for path to exist (with !,
			// to be gone).
			"waitfile": func(ts *testscript.TestScript, neg bool, args []string) {
				if len(args) != 1 {
					ts.Fatalf("usage: [!] waitfile path")
				}
				for end := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
					_, err := os.Stat(ts.MkAbs(args[0]))
					if (err == nil) != neg {
						return
					}
					if time.Now().After(end) {
						ts.Fatalf("%s: still %v after 10 s", args[0], err)
					}
				}
			},
			// knocklo port...: one TCP SYN to each port of 127.0.0.1, in
			// order (nothing listens: the kernel answers RST).
			"knocklo": func(ts *testscript.TestScript, neg bool, args []string) {
				for _, port := range args {
					if c, err := net.DialTimeout("tcp", "127.0.0.1:"+port, time.Second); err == nil {
						c.Close()
					}
					time.Sleep(50 * time.Millisecond)
				}
			},
		},
	})
}
