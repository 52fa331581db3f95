package examples_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// unitFile is the unit the package installs.
const unitFile = "doorward.service"

// maxExposure is the most systemd-analyze security may score the unit.
const maxExposure = 3.0

// installedUnit writes a copy of the unit whose ExecStart names a knockd
// built now: systemd-analyze verify checks that the binary exists.
func installedUnit(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("systemd-analyze not found (Debian package systemd; CI=true: not skipping)")
		}
		t.Skip("systemd-analyze not found (Debian package systemd)")
	}
	dir := t.TempDir()
	build := exec.Command("go", "build", "-buildvcs=false", "-o", dir+"/", "./cmd/knockd")
	build.Dir = ".."
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building knockd: %v\n%s", err, out)
	}
	unit, err := os.ReadFile(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(unit), "ExecStart=/usr/sbin/knockd ") {
		t.Fatalf("%s: ExecStart does not run /usr/sbin/knockd, where the package installs it", unitFile)
	}
	text := strings.Replace(string(unit), "ExecStart=/usr/sbin/knockd ", "ExecStart="+filepath.Join(dir, "knockd")+" ", 1)
	path := filepath.Join(dir, unitFile)
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestUnitVerify: systemd-analyze verify finds nothing wrong with the unit
// (--man=no: the knockd(8) page it names is installed by the package, not
// by this checkout).
func TestUnitVerify(t *testing.T) {
	path := installedUnit(t)
	out, err := exec.Command("systemd-analyze", "verify", "--man=no", path).CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Fatalf("systemd-analyze verify %s: %v\n%s", unitFile, err, out)
	}
}

var exposureLine = regexp.MustCompile(`Overall exposure level for ` + regexp.QuoteMeta(unitFile) + `: ([0-9.]+)`)

// TestUnitSecurity: the unit's exposure by systemd-analyze security is at
// most maxExposure, and docs/systemd.md shows the score measured.
func TestUnitSecurity(t *testing.T) {
	path := installedUnit(t)
	out, err := exec.Command("systemd-analyze", "security", "--offline=yes", path).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze security: %v\n%s", err, out)
	}
	m := exposureLine.FindSubmatch(out)
	if m == nil {
		t.Fatalf("no exposure level in:\n%s", out)
	}
	got, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	if got > maxExposure {
		t.Errorf("exposure %.1f, want %.1f or lower:\n%s", got, maxExposure, out)
	}
	doc, err := os.ReadFile("../docs/systemd.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(doc), string(m[0])) {
		t.Errorf("docs/systemd.md does not show %q; paste the table again:\n%s", m[0], out)
	}
}
