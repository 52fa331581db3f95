package fwknop

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/doorward/doorward/config/knockd"
)

// TestRecognise: fwknop's files are claimed by name or by content, and
// nothing that is a knockd.conf or a doormand.cf ever is.
func TestRecognise(t *testing.T) {
	debian, err := os.ReadFile("testdata/cases/debian-default/fwknopd.conf")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, path, src string
		want            fileKind
	}{
		{"fwknopd.conf by name", "/etc/fwknop/fwknopd.conf", "", serverFile},
		{"access.conf by name", "/etc/fwknop/access.conf", "", accessFile},
		{"shipped fwknopd.conf under another name", "/tmp/fw.orig", string(debian), serverFile},
		{"fwknopd.conf by a key", "/tmp/x", "PCAP_INTF eth0;\n", serverFile},
		{"access.conf by SOURCE", "/tmp/x", "SOURCE: ANY\nKEY k\n", accessFile},
		{"too few commented keys", "/tmp/x", "#PCAP_INTF eth0;\n#VERBOSE 1;\n", notOurs},
		{"knockd.conf named fwknopd.conf", "/etc/fwknopd.conf", "[options]\n\tInterface = eth0\n", notOurs},
		{"knockd.conf", "/etc/knockd.conf", "[ssh]\nsequence = 1,2,3\nSOURCE = x\n", notOurs},
		{"key = value", "/tmp/x", "SOURCE = ANY\n", notOurs},
		{"key=value", "/tmp/x", "PCAP_INTF=eth0\n", notOurs},
		{"doormand.cf", "/etc/doormand/doormand.cf", "interface eth0\nport 1001\nguestlist /etc/doormand/guestlist\n", notOurs},
		{"empty", "/tmp/x", "", notOurs},
	} {
		if got := kindOf(tc.path, []byte(tc.src)); got != tc.want {
			t.Errorf("%s: kind %d, want %d", tc.name, got, tc.want)
		}
	}
}

// TestRegisteredLoader: knockd.LoadFile, the runtime's only way to read a
// config, reads an fwknopd.conf through this package and still reads a
// knockd.conf as one.
func TestRegisteredLoader(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "knockd.conf")
	if err := os.WriteFile(conf, []byte("[ssh]\n\tSequence = 7000,8000\n\tStart_Command = true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ path, want string }{
		{"testdata/cases/server-keys/fwknopd.conf", "SOURCE ANY/fwknop"},
		{conf, "ssh/"},
	} {
		cfg, err := knockd.LoadFile(tc.path, knockd.LoadOptions{})
		if err != nil {
			t.Fatalf("%s: %v", tc.path, err)
		}
		if len(cfg.Doors) != 1 || cfg.Doors[0].Name+"/"+cfg.Doors[0].Type != tc.want {
			t.Errorf("%s: doors %v, want one %s", tc.path, cfg.Doors, tc.want)
		}
	}
}

func TestSplitLine(t *testing.T) {
	type result struct {
		key, value string
		kind       lineKind
	}
	for line, want := range map[string]result{
		"":                           {"", "", blank},
		"# c":                        {"", "", blank},
		"; c":                        {"", "", blank},
		"\r":                         {"", "", blank},
		"  \t ":                      {"", "", blank},
		"\t# indented":               {"", "", blank},
		"KEY":                        {"KEY", "", noValue},
		"KEY   ":                     {"KEY", "", noValue},
		"KEY ;x":                     {"KEY", "", noValue},
		"KEY value":                  {"KEY", "value", keyed},
		"  KEY\tvalue with  spaces ": {"KEY", "value with  spaces", keyed},
		"KEY value; more":            {"KEY", "value", keyed},
		"KEY value\r":                {"KEY", "value", keyed},
		"KEY: a=b==":                 {"KEY:", "a=b==", keyed},
		"KEY va\x00lue":              {"KEY", "va", keyed},
		"\x00KEY value":              {"", "", blank},
	} {
		k, v, kind := splitLine(line)
		if got := (result{k, v, kind}); got != want {
			t.Errorf("splitLine(%q) = %+v, want %+v", line, got, want)
		}
	}
}
