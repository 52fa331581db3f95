package daemon

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestReadme runs every ```ini block of README.md that is a Doorward config
// through --check, as an admin copying it would (a systemd unit, also
// written as ini, is skipped).
func TestReadme(t *testing.T) {
	doc, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```ini\n(.*?)```").FindAllSubmatch(doc, -1)
	checked := 0
	for i, b := range blocks {
		src := b[1]
		if bytes.HasPrefix(src, []byte("[Unit]")) {
			continue
		}
		conf := filepath.Join(t.TempDir(), "knockd.conf")
		if err := os.WriteFile(conf, src, 0o600); err != nil {
			t.Fatal(err)
		}
		var out, errOut strings.Builder
		if code := Check(Options{Config: conf, Stdout: &out, Stderr: &errOut}); code != 0 {
			t.Errorf("README ini block %d does not pass --check:\n%s\n%s", i+1, src, errOut.String())
		}
		checked++
	}
	if checked < 2 {
		t.Errorf("only %d config blocks found in README.md", checked)
	}
}
