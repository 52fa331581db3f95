// Package examples holds working configs and firewall rulesets; this test
// keeps every one of them loadable, and the e2e tests run the knock ones.
package examples_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/doorward/doorward/config"
	"github.com/doorward/doorward/config/knockd"
)

// TestLoadAll loads every *.conf here with the knockd parser.
func TestLoadAll(t *testing.T) {
	files, err := filepath.Glob("*.conf")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no *.conf in examples/")
	}
	for _, f := range files {
		t.Run(f, func(t *testing.T) {
			cfg, err := knockd.Load(f)
			if err != nil {
				for _, e := range config.Errors(err) {
					t.Error(e)
				}
				return
			}
			if len(cfg.Doors) == 0 {
				t.Errorf("%s: no doors", f)
			}
		})
	}
}

// TestReadme checks that README.md describes every file in examples/.
func TestReadme(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || name == "README.md" || strings.HasSuffix(name, "_test.go") {
			continue
		}
		if !strings.Contains(string(readme), "`"+name+"`") {
			t.Errorf("README.md does not describe `%s`", name)
		}
	}
}
