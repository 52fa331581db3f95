package docs

import (
	"bufio"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestDependencyTable: the README's table of dependencies names exactly
// the direct requirements of go.mod, so a dependency added or dropped
// without saying why fails here.
func TestDependencyTable(t *testing.T) {
	mods := directRequires(t, "../go.mod")
	if len(mods) == 0 {
		t.Fatal("no direct requirement found in go.mod")
	}
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "\n## Dependencies\n")
	if !ok {
		t.Fatal("README.md has no \"## Dependencies\" section")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	section, tools, _ := strings.Cut(section, "\n### Build-time tools\n")
	checkBuildTools(t, tools)
	var listed []string
	for _, m := range regexp.MustCompile("(?m)^\\| `([^`]+)` \\|").FindAllStringSubmatch(section, -1) {
		listed = append(listed, m[1])
	}
	slices.Sort(listed)
	if !slices.Equal(listed, mods) {
		t.Errorf("README's dependency table lists %q; go.mod's direct requirements are %q", listed, mods)
	}
}

// checkBuildTools: the README's table of build-time tools names exactly
// the modules the Makefile runs with "go run module/...@version", at
// those versions, so a tool (which go.mod does not list) is not added
// or bumped without saying why.
func checkBuildTools(t *testing.T, table string) {
	t.Helper()
	mk, err := os.ReadFile("../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	var run []string
	for _, m := range regexp.MustCompile(`\$\(GO\) run (\S+)@(v\S+)`).FindAllStringSubmatch(string(mk), -1) {
		run = append(run, moduleOf(m[1])+" "+m[2])
	}
	var listed []string
	for _, m := range regexp.MustCompile("(?m)^\\| `([^`]+)` \\| (v\\S+) \\|").FindAllStringSubmatch(table, -1) {
		listed = append(listed, m[1]+" "+m[2])
	}
	slices.Sort(run)
	run = slices.Compact(run)
	slices.Sort(listed)
	if !slices.Equal(listed, run) {
		t.Errorf("README's build-time tools table lists %q; the Makefile runs %q", listed, run)
	}
}

// moduleOf cuts a command's package path to its module: the path up to
// a major-version element (/v2), else its first three elements.
func moduleOf(pkg string) string {
	el := strings.Split(pkg, "/")
	for i, e := range el {
		if i >= 3 && regexp.MustCompile(`^v[2-9][0-9]*$`).MatchString(e) {
			return strings.Join(el[:i+1], "/")
		}
	}
	return strings.Join(el[:min(3, len(el))], "/")
}

// directRequires returns the sorted module paths go.mod requires without
// "// indirect", in a require block or on a require line.
func directRequires(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var mods []string
	block := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "require (":
			block = true
			continue
		case block && line == ")":
			block = false
			continue
		case block:
		case strings.HasPrefix(line, "require "):
			line = strings.TrimSpace(strings.TrimPrefix(line, "require "))
		default:
			continue
		}
		if f := strings.Fields(line); len(f) >= 2 && !strings.Contains(line, "// indirect") {
			mods = append(mods, f[0])
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	slices.Sort(mods)
	return mods
}
