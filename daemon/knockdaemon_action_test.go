package daemon

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// v1Ports is the spec's vector V1 (§12): the record 10.1.1.1, port 22
// (1 byte), FLAG0 1, checksum 36, under "my_secret_phrase" with a RandomIV
// header, on the span 1024-1279.
var v1Ports = []int{1106, 1121, 1134, 1124, 1135, 1133, 1097, 1110, 1075, 1078, 1077, 1079, 1076, 1074, 1073, 1072, 1065, 1187, 1063, 1073, 1120, 1084, 1242, 1063}

// TestReplayKnockdaemonActions replays the same encrypted knock twice
// through capture decoding, the port-span detector and the actions: the
// one-time-value condition opens once, the replayed knock is refused, and
// the delayed close runs 30 s after the first knock, in capture time.
// Replay keeps state in memory: the StateCache file is not created.
//
// The door's Type is spelled both ways: "portspan", the protocol's Type
// before it had one name, is an alias and behaves the same.
func TestReplayKnockdaemonActions(t *testing.T) {
	for _, typ := range []string{"knockdaemon", "portspan"} {
		t.Run(typ, func(t *testing.T) { replayKnockdaemonActions(t, typ) })
	}
}

func replayKnockdaemonActions(t *testing.T, typ string) {
	dir := t.TempDir()
	cache := filepath.Join(dir, "state.json")
	conf := fmt.Sprintf(`[options]
	StateCache = %s

[ssh]
	Type = %s
	Portspan = 1024-1279
	Knock = IP,PORT,FLAG0,CHECKSUM
	Port_Width = 1
	Encrypt = yes
	Key = my_secret_phrase
	IV = yes

[open]
	Type = action
	Condition = PORT == 22 && ! state(IP,uniqueval,FLAG0)
	State = state(IP,uniqueval,FLAG0)++
	System = /sbin/iptables -I INPUT -s IP -p tcp --dport PORT -j ACCEPT

[close]
	Type = action
	Condition = PORT == 22 && ! state(IP,uniqueval,FLAG0)
	Delay = 30
	System = /sbin/iptables -D INPUT -s IP -p tcp --dport PORT -j ACCEPT
`, cache, typ)
	path := filepath.Join(dir, "knockd.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	var pk strings.Builder
	for round, start := range []float64{0, 10} {
		for i, p := range v1Ports {
			fmt.Fprintf(&pk, "%.2f 10.0.0.2:%d 10.0.0.1 %d/tcp\n", start+float64(i)*0.01, 41000+100*round+i, p)
		}
	}
	got := replayWith(t, path, pk.String())
	want := []string{
		"+230ms /sbin/iptables -I INPUT -s 10.1.1.1 -p tcp --dport 22 -j ACCEPT",
		"+30.23s /sbin/iptables -D INPUT -s 10.1.1.1 -p tcp --dport 22 -j ACCEPT",
	}
	if !slices.Equal(got, want) {
		t.Errorf("commands:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if _, err := os.Stat(cache); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("replay touched the state cache: %v", err)
	}
}

// TestCheckReadsActions: knockd --check reports an action section's
// errors, though only the daemon's Action reads those sections.
func TestCheckReadsActions(t *testing.T) {
	path := filepath.Join(t.TempDir(), "knockd.conf")
	conf := "[ssh]\n\tType = knockdaemon\n\tPortspan = 1024-1279\n\tKnock = IP,PORT,FLAG0,CHECKSUM\n\tKey = x\n\tEncrypt = yes\n" +
		"[a]\n\tType = action\n\tCondition = PORT = 22\n\tSystem = echo\n"
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errOut strings.Builder
	code := Check(Options{Config: path, Stdout: &out, Stderr: &errOut})
	want := "config: " + path + `:9: condition: unexpected "=" (comparison is "==") at column 6` + "\n"
	if code != 1 || errOut.String() != want {
		t.Errorf("exit %d, stderr %q, want 1, %q", code, errOut.String(), want)
	}
}
