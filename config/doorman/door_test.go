package doorman

import (
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/doorward/doorward/config"
	"github.com/doorward/doorward/config/knockd"
)

func TestFromDoor(t *testing.T) {
	tests := []struct {
		name, ini string
		want      string   // Dump of the door
		errs      []string // or these errors
	}{
		{
			name: "defaults",
			ini: `[ssh]
	Type = doorman
	Firewall_Add = /etc/doorward/iptables_add
	Firewall_Del = /etc/doorward/iptables_delete
	Hash_Archive = /var/lib/doorward/doorman.hash
`,
			want: `doorman door "ssh"
  Port = 1001
  Guestlist = "/etc/dd_guestlist"
  Firewall_Add = "/etc/doorward/iptables_add"
  Firewall_Del = "/etc/doorward/iptables_delete"
  Waitfor = 10s
  Connection_Delay_1 = 500ms
  Connection_Delay_2 = 5s
  Hash_Archive = "/var/lib/doorward/doorman.hash"
  Hash_Archive_Size = 100000
  Interface = ""
  LogLevel = debug
  Check_Permissions = true
`,
		},
		{
			name: "every key, doormand spellings",
			ini: `[dm]
	type = doorman
	port = 2001
	guestlist = /g
	firewall-add = /a
	FIREWALL_DEL = /d
	waitfor = 3
	connection-delay-1 = 0
	Connection_Delay_2 = 1
	hash-archive = /h
	hash_archive_size = 1000
	link-header-length = 14
	interface = eth0.100
	loglevel = Warning
	check_permissions = no
	fail-limit = 3
	fail_delay = 60
`,
			want: `doorman door "dm"
  Port = 2001
  Guestlist = "/g"
  Firewall_Add = "/a"
  Firewall_Del = "/d"
  Waitfor = 3s
  Connection_Delay_1 = 0s
  Connection_Delay_2 = 1s
  Hash_Archive = "/h"
  Hash_Archive_Size = 1000
  Interface = "eth0.100"
  LogLevel = warn
  Check_Permissions = false
  note: t.conf:12: link-header-length is ignored: the capture finds the IP header itself on every link type
`,
		},
		{
			name: "bad values",
			ini: `[bad]
	Type = doorman
	Port = 70000
	Waitfor = 0
	Connection_Delay_1 = -1
	Connection_Delay_2 = 0
	Hash_Archive_Size = 999
	Interface = eth0;rm
	LogLevel = loud
	Check_Permissions = maybe
	Sequence = 1,2,3
	Port = 1001
	Guestlist =
	Fail_Limit = 0
`,
			errs: []string{
				`t.conf:1: doorman door "bad" needs Firewall_Add`,
				`t.conf:1: doorman door "bad" needs Firewall_Del`,
				`t.conf:1: doorman door "bad" needs Hash_Archive`,
				`t.conf:3: Port: "70000" is not a port number 1..65535`,
				`t.conf:4: Waitfor: "0" is not a whole number of seconds >= 1`,
				`t.conf:5: Connection_Delay_1: "-1" is not a whole number of microseconds >= 0`,
				`t.conf:6: Connection_Delay_2: "0" is not a whole number of seconds >= 1`,
				`t.conf:7: Hash_Archive_Size: "999" is not a number of records 1000..10000000`,
				`t.conf:8: Interface: "eth0;rm" is not an interface name`,
				`t.conf:9: LogLevel: illegal value "loud" (want one of emerg, alert, crit, error, warn, notice, info, debug, warning)`,
				`t.conf:10: Check_Permissions: "maybe" is not yes or no`,
				`t.conf:11: Sequence: not a doorman directive (have: Port, Guestlist, Firewall_Add, Firewall_Del, Waitfor, Connection_Delay_1, Connection_Delay_2, Hash_Archive, Hash_Archive_Size, Link_Header_Length, Interface, LogLevel, Check_Permissions, Fail_Limit, Fail_Delay)`,
				`t.conf:12: Port: given twice (first at line 3)`,
				`t.conf:13: Guestlist: empty path`,
				`t.conf:14: Fail_Limit: "0" is not a whole number >= 1`,
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := knockd.Parse("t.conf", []byte(tc.ini))
			if err != nil {
				t.Fatal(err)
			}
			d, err := FromDoor(cfg.Doors[0])
			var got []string
			for _, e := range config.Errors(err) {
				got = append(got, e.Error())
			}
			slices.SortStableFunc(got, func(a, b string) int { return lineOf(a) - lineOf(b) })
			if !slices.Equal(got, tc.errs) {
				t.Fatalf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.errs, "\n"))
			}
			if tc.errs == nil && d.Dump() != tc.want {
				t.Errorf("got:\n%s\nwant:\n%s", d.Dump(), tc.want)
			}
		})
	}
}

func lineOf(e string) int {
	_, rest, _ := strings.Cut(e, ":")
	n := 0
	for _, c := range rest {
		if c < '0' || c > '9' {
			break
		}
		n = n*10 + int(c-'0')
	}
	return n
}

func TestParseLevel(t *testing.T) {
	for in, want := range map[string]Level{"emerg": Emerg, "DEBUG": Debug, "warn": Warn, "warning": Warn, "Notice": Notice} {
		if got, err := ParseLevel(in); err != nil || got != want {
			t.Errorf("ParseLevel(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := ParseLevel("verbose"); err == nil {
		t.Error("verbose accepted")
	}
}

// TestCheckFile runs the §7 checks; the owner check is tested against the
// running user, so it works without root.
func TestCheckFile(t *testing.T) {
	dir := t.TempDir()
	me := uint32(os.Getuid())
	mk := func(name string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte("x"), 0o600)
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name  string
		path  string
		rule  FileRule
		owner uint32
		err   string // substring; "" = ok
	}{
		{"guestlist 0600", mk("g600", 0o600), GuestlistRule, me, ""},
		{"guestlist 0400", mk("g400", 0o400), GuestlistRule, me, ""},
		{"guestlist 0640", mk("g640", 0o640), GuestlistRule, me, "must be readable and writeable only by root"},
		{"guestlist 0601", mk("g601", 0o601), GuestlistRule, me, "must be readable and writeable only by root"},
		{"guestlist wrong owner", mk("gown", 0o600), GuestlistRule, me + 1, "must be owned by root"},
		{"guestlist directory", dir, GuestlistRule, me, "must be a regular file"},
		{"script 0744", mk("s744", 0o744), ScriptRule, me, ""},
		{"script 0770", mk("s770", 0o770), ScriptRule, me, ""},
		{"script 0755", mk("s755", 0o755), ScriptRule, me, "must be writable and executable only by root"},
		{"script 0746", mk("s746", 0o746), ScriptRule, me, "must be writable and executable only by root"},
		{"script setuid", mk("s4700", fs.ModeSetuid|0o700), ScriptRule, me, "must be writable and executable only by root"},
		{"script missing", filepath.Join(dir, "nope"), ScriptRule, me, "no such file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := checkFile(tc.path, tc.rule, tc.owner)
			if (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
				t.Errorf("checkFile = %v, want %q", err, tc.err)
			}
		})
	}
}
