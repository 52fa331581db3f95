// Package examples holds working configs and firewall rulesets; this test
// keeps every one of them loadable, and the e2e tests run the knock ones.
package examples_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/doorward/doorward/config"
	"github.com/doorward/doorward/config/doorman"
	"github.com/doorward/doorward/config/knockd"
)

// TestLoadAll loads every *.conf here and one directory down with the
// knockd parser; doors of a protocol with its own directives are validated
// by that protocol's reader too.
func TestLoadAll(t *testing.T) {
	files, err := filepath.Glob("*.conf")
	if err != nil {
		t.Fatal(err)
	}
	sub, err := filepath.Glob("*/*.conf")
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, sub...)
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
			for _, d := range cfg.Doors {
				if d.Type == "doorman" {
					if _, err := doorman.FromDoor(d); err != nil {
						t.Error(err)
					}
				}
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
	// Files one directory down are named with it: `doorman/nft_add`.
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		sub, err := os.ReadDir(e.Name())
		if err != nil {
			t.Fatal(err)
		}
		for _, se := range sub {
			if name := e.Name() + "/" + se.Name(); !se.IsDir() && !strings.Contains(string(readme), "`"+name+"`") {
				t.Errorf("README.md does not describe `%s`", name)
			}
		}
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
