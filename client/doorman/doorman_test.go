package doorman

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/doorward/doorward/formats/doorman"
)

func TestReadKnockCF(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(text), 0o600)
		os.Chmod(p, mode)
		return p
	}
	tests := []struct {
		name, text string
		mode       os.FileMode
		want       KnockCF
		found      bool
		err        string
	}{
		{"full", "group martink\nsecret hushhush\nport 1002\nrun \"ssh -l me %H%\"\n", 0o600,
			KnockCF{Group: "martink", Secret: []byte("hushhush"), Port: 1002, Run: "ssh -l me %H%", RunSet: true}, true, ""},
		{"single quotes give one word", "run 'ssh -l me'\n", 0o400, KnockCF{Run: "ssh", RunSet: true}, true, ""},
		{"0700 is fine", "group g\n", 0o700, KnockCF{Group: "g"}, true, ""},
		// The doorman article's .knockcf spells it grp; knock(1) reads
		// only group, which wins when both are given.
		{"grp alias", "grp martink\nsecret s\n", 0o600, KnockCF{Group: "martink", Secret: []byte("s")}, true, ""},
		{"group beats grp", "grp article\ngroup real\n", 0o600, KnockCF{Group: "real"}, true, ""},
		{"group-readable refused", "secret s\n", 0o640, KnockCF{}, true, "must not be readable or writeable by anyone but the owner"},
		{"other-x refused", "secret s\n", 0o601, KnockCF{}, true, "must not be readable"},
		{"group-x refused", "secret s\n", 0o610, KnockCF{}, true, "must not be readable or writeable by anyone but the owner"},
		{"bad port", "port 70000\n", 0o600, KnockCF{}, true, "illegal port number (70000)"},
		{"long values truncated", "group " + strings.Repeat("g", 40) + "\nsecret " + strings.Repeat("s", 70) + "\n", 0o600,
			KnockCF{Group: strings.Repeat("g", 32), Secret: []byte(strings.Repeat("s", 64))}, true, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := write(strings.ReplaceAll(tc.name, " ", "_"), tc.text, tc.mode)
			got, found, err := ReadKnockCF(p)
			if found != tc.found || (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
				t.Fatalf("found %v, err %v; want %v, %q", found, err, tc.found, tc.err)
			}
			if err == nil && (got.Group != tc.want.Group || string(got.Secret) != string(tc.want.Secret) || got.Port != tc.want.Port || got.Run != tc.want.Run || got.RunSet != tc.want.RunSet) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
	if _, found, err := ReadKnockCF(filepath.Join(dir, "missing")); found || err != nil {
		t.Errorf("missing file: found %v, err %v", found, err)
	}
}

func TestServicePort(t *testing.T) {
	services := func(n string) (int, error) {
		if n == "ssh" {
			return 22, nil
		}
		return 0, errors.New("no")
	}
	for in, want := range map[string]int{"22": 22, "ssh": 22, "65534": 65534, "65535": 0, "0": 0, "22abc": 0, "nosuch": 0, "-1": 0} {
		got, err := ServicePort(in, services)
		if got != want || (err == nil) != (want != 0) {
			t.Errorf("ServicePort(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
}

func TestExpandRun(t *testing.T) {
	got, err := ExpandRun("ssh -p %P% me@%H% # %H%", "host.example", "ssh")
	if err != nil || got != "ssh -p ssh me@host.example # host.example" {
		t.Errorf("ExpandRun = %q, %v", got, err)
	}
	if _, err := ExpandRun(strings.Repeat("%H%", 60), "long-host-name", "22"); !errors.Is(err, ErrCommandTooLong) {
		t.Errorf("long: %v", err)
	}
	for v, want := range map[string]bool{"": true, "0": true, "x": true, "X": true, " ": false, "ssh": false} {
		if RunDisabled(v) != want {
			t.Errorf("RunDisabled(%q) != %v", v, want)
		}
	}
}

// TestSend sends a knock to a loopback socket: one datagram, exactly the
// payload, which verifies.
func TestSend(t *testing.T) {
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Skip(err)
	}
	defer pc.Close()
	dst := netip.MustParseAddrPort(pc.LocalAddr().String())
	payload := doorman.Format(22, "martink", 1, []byte("hushhush"))
	if err := Send(dst, payload); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 200)
	n, _, err := pc.ReadFrom(buf)
	if err != nil {
		t.Fatal(err)
	}
	k, err := doorman.Parse(buf[:n])
	if err != nil || string(buf[:n]) != string(payload) {
		t.Fatalf("received %q", buf[:n])
	}
	if _, ok := k.Verify([]byte("hushhush")); !ok {
		t.Error("does not verify")
	}
}

func TestResolveHost(t *testing.T) {
	ctx := context.Background()
	if a, err := ResolveHost(ctx, "10.1.2.3"); err != nil || a != netip.MustParseAddr("10.1.2.3") {
		t.Errorf("literal: %v, %v", a, err)
	}
	if _, err := ResolveHost(ctx, "fd00::1"); err == nil {
		t.Error("IPv6 literal accepted")
	}
}
