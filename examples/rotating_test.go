package examples_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/doorward/doorward/formats/rotating"
)

// TestShellClientVectors runs examples/knock-rotating.sh under dash, the
// strictest common sh, for every test vector of docs/rotating.md, and
// compares its sequence with the Go derivation's (which
// formats/rotating checks against the vectors' own column).
func TestShellClientVectors(t *testing.T) {
	for _, tool := range []string{"dash", "openssl"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s is missing (scripts/deps.sh installs it)", tool)
			}
			t.Skipf("%s is missing", tool)
		}
	}
	b, err := os.ReadFile("../formats/rotating/testdata/vectors.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := strings.Split(strings.TrimSpace(string(b)), "\n")[2:]
	if len(rows) < 8 {
		t.Fatalf("%d vectors", len(rows))
	}
	dir := t.TempDir()
	for i, row := range rows {
		f := strings.Split(strings.Trim(row, "| "), " | ")
		for j := range f {
			f[j] = strings.Trim(f[j], "`")
		}
		secret, door, period, unix, ports, length, proto, addr := f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7]
		if addr == "-" {
			addr = ""
		}
		t.Run(f[3]+"-"+door+"-"+proto, func(t *testing.T) {
			key, err := rotating.ParseSecret(secret)
			set, err2 := rotating.ParsePorts(ports)
			mode, err3 := rotating.ParseMode(proto)
			p := rotating.Params{Secret: key, Door: door, Ports: set, Mode: mode, Addr: addr}
			p.Period, p.Length = atoi(t, period), atoi(t, length)
			seq, err4 := rotating.Derive(nil, &p, rotating.Window(time.Unix(int64(atoi(t, unix)), 0), p.Period))
			for _, err := range []error{err, err2, err3, err4} {
				if err != nil {
					t.Fatal(err)
				}
			}
			var want []string
			for _, k := range seq {
				want = append(want, strconv.Itoa(int(k.Port))+":"+k.Proto.String())
			}
			file := filepath.Join(dir, "secret"+f[3]+door)
			if err := os.WriteFile(file, []byte(secret+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			// The script takes the canonical port set (plain ranges).
			cmd := exec.Command("dash", "knock-rotating.sh", file, door, set.String(), length, period, proto)
			cmd.Env = append(os.Environ(), "NOW="+unix, "ADDR="+addr)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("%v: %s", err, out)
			}
			if got := strings.TrimSpace(string(out)); got != strings.Join(want, " ") {
				t.Errorf("vector %d: the shell client says\n%s\nthe Go derivation\n%s", i+1, got, strings.Join(want, " "))
			}
		})
	}
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
