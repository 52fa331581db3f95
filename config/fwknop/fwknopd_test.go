package fwknop

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/doorward/doorward/config/knockd"
)

// TestAgainstFwknopd reads one config with fwknopd's quirks (keys before a
// stanza, a key after an %include, a keys file, a folder, ';' and ':',
// values with spaces, $VAR, a key given twice) both here and with the
// real fwknopd's --dump-config, and compares what both make of it: the
// stanzas in order, their values, the server keys. Paths are absolute,
// where fwknopd and we agree.
func TestAgainstFwknopd(t *testing.T) {
	fwknopd, err := exec.LookPath("fwknopd")
	if err != nil {
		fwknopd = "/usr/sbin/fwknopd"
		if _, err := os.Stat(fwknopd); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatal("fwknopd not found (Debian package fwknop-server; CI=true: not skipping)")
			}
			t.Skip("fwknopd not found (Debian package fwknop-server)")
		}
	}
	dir := t.TempDir()
	files := map[string]string{
		"fwknopd.conf": `PCAP_INTF    lo;
FWKNOP_RUN_DIR $DIR/run;
DIGEST_FILE  $FWKNOP_RUN_DIR/dc extra;
PCAP_FILTER  udp port 7000; comment
MAX_SPA_PACKET_AGE 10;
MAX_SPA_PACKET_AGE 20
ENABLE_DESTINATION_RULE Y
ACCESS_FILE  $DIR/access.conf;
`,
		"access.conf": `OPEN_PORTS   tcp/1
SOURCE:      ANY
KEY:         one two; three
OPEN_PORTS   tcp/22,  udp/53
%include     $DIR/inc.conf
RESTRICT_PORTS tcp/25
REQUIRE_USERNAME   alice smith
%include_folder $DIR/d/
SOURCE 10.0.0.0/8, 192.168.0.0/16
KEY  k
FW_ACCESS_TIMEOUT 60
CMD_CYCLE_OPEN  iptables -A INPUT -s $IP -j ACCEPT
CMD_CYCLE_CLOSE iptables -D INPUT -s $IP -j ACCEPT
CMD_CYCLE_TIMER 30
UNKNOWN_ONE x
`,
		"inc.conf": `DESTINATION 1.2.3.4
SOURCE 192.0.2.9
DESTINATION 192.0.2.1
KEY k2
%include_keys $DIR/keys
`,
		"keys":     "HMAC_KEY hm\nOPEN_PORTS tcp/99\n",
		"d/a.conf": "SOURCE 198.51.100.1\nKEY k3\n",
	}
	for name, src := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(strings.ReplaceAll(src, "$DIR", dir)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	conf := filepath.Join(dir, "fwknopd.conf")
	out, err := exec.Command(fwknopd, "--dump-config", "-c", conf).CombinedOutput()
	if err != nil {
		t.Fatalf("fwknopd --dump-config: %v\n%s", err, out)
	}
	theirs := parseDump(t, string(out))

	cfg, err := knockd.LoadFile(conf, knockd.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ours := sortStanzas(dumpOf(cfg))
	theirs = sortStanzas(theirs)
	if !slices.Equal(ours, theirs) {
		t.Errorf("we read:\n%s\nfwknopd read:\n%s", strings.Join(ours, "\n"), strings.Join(theirs, "\n"))
	}
}

// dumpKeys are the keys whose values fwknopd's dump shows as read; the
// keys themselves it shows by length.
var dumpKeys = []string{"DESTINATION", "OPEN_PORTS", "RESTRICT_PORTS", "FW_ACCESS_TIMEOUT",
	"REQUIRE_USERNAME", "CMD_CYCLE_OPEN", "CMD_CYCLE_CLOSE", "CMD_CYCLE_TIMER", "KEY_LEN", "HMAC_KEY_LEN"}

var serverDumpKeys = []string{"PCAP_INTF", "PCAP_FILTER", "MAX_SPA_PACKET_AGE", "ENABLE_DESTINATION_RULE", "DIGEST_FILE"}

// dumpOf renders what we read as parseDump renders fwknopd's dump.
func dumpOf(cfg *knockd.Config) []string {
	out := []string{"PCAP_INTF = " + strings.Join(cfg.Options.Interfaces, ",")}
	last := func(d *knockd.Door, key string) (string, bool) {
		v, ok := "", false
		for _, p := range d.Params {
			if p.Key == key {
				v, ok = p.Value, true
			}
		}
		return v, ok
	}
	for _, k := range serverDumpKeys[1:] {
		v, _ := last(cfg.Doors[0], k)
		out = append(out, k+" = "+v)
	}
	for _, d := range cfg.Doors {
		v, _ := last(d, "SOURCE")
		out = append(out, "SOURCE "+v)
		for _, k := range dumpKeys {
			v, ok := "", false
			if l, found := strings.CutSuffix(k, "_LEN"); found {
				if key, has := last(d, l); has {
					v, ok = strconv.Itoa(len(key)), true
				}
			} else {
				v, ok = last(d, k)
			}
			if ok {
				out = append(out, "  "+k+" = "+v)
			}
		}
	}
	return out
}

var (
	serverLine = regexp.MustCompile(`^\s*\d+\. (\S+)\s+=  '(.*)'$`)
	sourceLine = regexp.MustCompile(`^SOURCE \(\d+\):  (.*)$`)
	accessLine = regexp.MustCompile(`^\s*(\S+):  (.*)$`)
)

// parseDump reads fwknopd's --dump-config output: the server keys of
// serverDumpKeys, then each stanza's SOURCE and its dumpKeys that are
// set. fwknopd 2.6.10 keeps a value's trailing spaces; 2.6.11 and we
// drop them.
func parseDump(t *testing.T, dump string) []string {
	t.Helper()
	server := map[string]string{}
	var out, stanzas []string
	defaults := map[string]string{"FW_ACCESS_TIMEOUT": "30", "KEY_LEN": "0", "HMAC_KEY_LEN": "0", "CMD_CYCLE_TIMER": "0"}
	sc := bufio.NewScanner(strings.NewReader(dump))
	for sc.Scan() {
		line := sc.Text()
		if m := serverLine.FindStringSubmatch(line); m != nil {
			server[m[1]] = strings.TrimRight(m[2], " ")
		} else if m := sourceLine.FindStringSubmatch(line); m != nil {
			stanzas = append(stanzas, "SOURCE "+m[1])
		} else if m := accessLine.FindStringSubmatch(line); m != nil && len(stanzas) > 0 && slices.Contains(dumpKeys, m[1]) {
			v := strings.TrimRight(m[2], " ")
			if v != "<not set>" && v != defaults[m[1]] {
				stanzas = append(stanzas, "  "+m[1]+" = "+v)
			}
		}
	}
	if len(stanzas) == 0 {
		t.Fatalf("no stanzas in fwknopd's dump:\n%s", dump)
	}
	for _, k := range serverDumpKeys {
		out = append(out, k+" = "+server[k])
	}
	return append(out, stanzas...)
}

// sortStanzas sorts the key lines of each stanza, which the two dumps
// order differently.
func sortStanzas(lines []string) []string {
	out := slices.Clone(lines)
	for i := 0; i < len(out); {
		j := i
		for j < len(out) && strings.HasPrefix(out[j], "  ") {
			j++
		}
		slices.Sort(out[i:j])
		i = max(j, i+1)
	}
	return out
}
