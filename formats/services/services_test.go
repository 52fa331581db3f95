package services

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestRead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "services")
	os.WriteFile(path, []byte("ssh 22/tcp # SSH\nssh 22/udp\nhttp 80/tcp www # WWW\nbad x/tcp\nfoo 70000/tcp\nSSH 9/tcp\n"), 0o644)
	m, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"ssh": 22, "http": 80, "www": 80, "SSH": 9}
	if !reflect.DeepEqual(m, want) {
		t.Errorf("got %v, want %v", m, want)
	}
	_, err = Read(filepath.Join(t.TempDir(), "missing"))
	if want := "services: open: no such file or directory"; err == nil || err.Error() != want {
		t.Errorf("missing file: %v, want %q", err, want)
	}
}

// FuzzParse: no panic; every name is a word and every port in 0..65535.
func FuzzParse(f *testing.F) {
	f.Add("ssh 22/tcp # SSH\nssh 22/udp\nhttp 80/tcp www # WWW\nbad x/tcp\nfoo 70000/tcp\nSSH 9/tcp\n")
	f.Add("tcpmux\t\t1/tcp\t\t\t\t# TCP port service multiplexer\n\n#\nx -1/tcp\n")
	f.Fuzz(func(t *testing.T, src string) {
		m, _ := Parse(strings.NewReader(src))
		for name, port := range m {
			if name == "" || strings.ContainsAny(name, " \t\n#") || port < 0 || port > 65535 {
				t.Fatalf("%q → %d", name, port)
			}
		}
	})
}
