package daemon

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/doorward/doorward/detectors"
	"github.com/doorward/doorward/detectors/decode"
	"github.com/doorward/doorward/detectors/pcaptest"
	"github.com/doorward/doorward/formats/doorman"
)

// doormanSetup writes a guest list, firewall scripts that record their
// arguments and answer "0", and returns the directory.
func doormanSetup(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"guestlist": "martink hushhush 22 10.0.0.0/24\n",
		"add":       "#!/bin/sh\necho \"add $*\" >> \"$(dirname \"$0\")/calls\"\necho 0\n",
		"del":       "#!/bin/sh\necho \"del $*\" >> \"$(dirname \"$0\")/calls\"\necho 0\n",
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// doormanPcap is a knock from 10.0.0.2, its replay, and the client's SYN.
func doormanPcap(t *testing.T, dir string) string {
	t.Helper()
	cli, srv := netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("10.0.0.1")
	knock := doorman.Format(22, "martink", 12345, []byte("hushhush"))
	frames := []pcaptest.Frame{
		{Time: replayT0, Src: netip.AddrPortFrom(cli, 40000), Dst: netip.AddrPortFrom(srv, 1001), Proto: detectors.UDP, Payload: knock},
		{Time: replayT0.Add(time.Second), Src: netip.AddrPortFrom(cli, 40001), Dst: netip.AddrPortFrom(srv, 1001), Proto: detectors.UDP, Payload: knock},
		{Time: replayT0.Add(2 * time.Second), Src: netip.AddrPortFrom(cli, 50000), Dst: netip.AddrPortFrom(srv, 22), Proto: detectors.TCP, Flags: detectors.SYN},
	}
	var buf bytes.Buffer
	if err := pcaptest.WritePcap(&buf, decode.Ethernet, frames); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "k.pcap")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestDoormanReplay runs a doorman door over a capture: the knock opens
// the broad rule, its replay is refused, the SYN swaps in the narrow rule,
// and (no socket table in replay) the narrow rule goes at once. The same
// scripts run from an INI door and from an unchanged doormand.cf.
func TestDoormanReplay(t *testing.T) {
	for _, form := range []string{"knockd.conf", "doormand.cf"} {
		t.Run(form, func(t *testing.T) {
			dir := doormanSetup(t)
			conf := filepath.Join(dir, form)
			var text string
			if form == "knockd.conf" {
				text = fmt.Sprintf("[ssh]\n\tType = doorman\n\tGuestlist = %[1]s/guestlist\n\tFirewall_Add = %[1]s/add\n\tFirewall_Del = %[1]s/del\n\tHash_Archive = %[1]s/hash\n\tInterface = eth0\n", dir)
			} else {
				text = fmt.Sprintf("# doormand.cf\ninterface eth0\nguestlist %[1]s/guestlist\nfirewall-add %[1]s/add\nfirewall-del %[1]s/del\nhash-archive %[1]s/hash\nlogfile %[1]s/log\n", dir)
			}
			if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
				t.Fatal(err)
			}
			var now time.Time
			var out, errOut bytes.Buffer
			o := Options{Config: conf, LogFile: filepath.Join(dir, "knockd.log"), Stdout: &out, Stderr: &errOut, Verbose: true}
			if code := replay(context.Background(), o, doormanPcap(t, dir), &now); code != 0 {
				t.Fatalf("exit %d: %s", code, errOut.String())
			}
			calls, _ := os.ReadFile(filepath.Join(dir, "calls"))
			// $1 is the door's Interface (INI) or the cf's interface line,
			// as doormand passes it, in a replay too.
			const iface = "eth0"
			want := strings.ReplaceAll("add IF 10.0.0.2 0 10.0.0.1 22\nadd IF 10.0.0.2 50000 10.0.0.1 22\ndel IF 10.0.0.2 0 10.0.0.1 22\ndel IF 10.0.0.2 50000 10.0.0.1 22\n", "IF", iface)
			if string(calls) != want {
				t.Errorf("scripts ran:\n%s\nwant:\n%s\nlog:\n%s", calls, want, out.String())
			}
			log := out.String()
			for _, l := range []string{
				"ssh: info: knock from 10.0.0.2 : 22 martink 0000012345 ",
				"ssh: debug: knock from 10.0.0.2 was valid.",
				"ssh: warn: PROBABLE REPLAY ATTEMPT from 10.0.0.2: port=22 guest=martink tag=0000012345 ",
				"ssh: debug: Initial SYN packet detected, martink@10.0.0.2:50000 -> 22",
			} {
				l = strings.Replace(l, "ssh: ", doorName(form)+": ", 1)
				if !strings.Contains(log, l) {
					t.Errorf("log lacks %q:\n%s", l, log)
				}
			}
			if _, err := os.Stat(filepath.Join(dir, "hash")); err == nil {
				t.Error("replay created the hash archive file")
			}
		})
	}
}

func doorName(form string) string {
	if form == "doormand.cf" {
		return "doorman"
	}
	return "ssh"
}

// TestDoormanCheck: knockd --check -c doormand.cf validates an unchanged
// doormand.cf, and reports a bad one with its lines.
func TestDoormanCheck(t *testing.T) {
	dir := doormanSetup(t)
	good := filepath.Join(dir, "doormand.cf")
	os.WriteFile(good, []byte(fmt.Sprintf("interface eth0\nguestlist %[1]s/guestlist\nfirewall-add %[1]s/add\nfirewall-del %[1]s/del\nhash-archive %[1]s/hash\n", dir)), 0o644)
	var out, errOut bytes.Buffer
	if code := Check(Options{Config: good, Stdout: &out, Stderr: &errOut}); code != 0 {
		t.Fatalf("check: %d\n%s", code, errOut.String())
	}
	if !strings.Contains(out.String(), "1 doors, config OK") {
		t.Errorf("check said %q", out.String())
	}
	bad := filepath.Join(dir, "bad.cf")
	os.WriteFile(bad, []byte("interface eth0\nport 0\nfirewall-add /x\nfirewall-del /y\nhash-archive /z\nguestlist "+dir+"/nope\n"), 0o644)
	out.Reset()
	errOut.Reset()
	if code := Check(Options{Config: bad, Stdout: &out, Stderr: &errOut}); code != 1 {
		t.Fatalf("check of a bad cf: %d", code)
	}
	if !strings.Contains(errOut.String(), "bad.cf:2: port: illegal port number (0)") {
		t.Errorf("errors: %s", errOut.String())
	}
}
