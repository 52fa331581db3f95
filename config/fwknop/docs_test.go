package fwknop

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestReadmeKeyTables keeps README.md's key tables true: each lists, in
// order, exactly the keys (with their aliases) of its table here and the
// use this reader makes of each.
func TestReadmeKeyTables(t *testing.T) {
	src, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	for heading, keys := range map[string][]Key{
		"### access.conf keys":  AccessKeys(),
		"### fwknopd.conf keys": ServerKeys(),
	} {
		var want []string
		for _, k := range keys {
			want = append(want, strings.Join(append([]string{k.Name}, k.Aliases...), " ")+" | "+k.Use.String())
		}
		got := tableRows(string(src), heading)
		if !slices.Equal(got, want) {
			t.Errorf("%s: rows (keys | use)\n%s\nwant\n%s", heading, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
}

var backquoted = regexp.MustCompile("`([^`]+)`")

// tableRows returns "key aliases | use" for each body row of the table
// under heading.
func tableRows(doc, heading string) []string {
	_, after, ok := strings.Cut(doc, "\n"+heading+"\n")
	if !ok {
		return nil
	}
	after, _, _ = strings.Cut(after, "\n#")
	var rows []string
	for line := range strings.SplitSeq(after, "\n") {
		cells := strings.Split(strings.Trim(strings.TrimSpace(line), "|"), "|")
		if len(cells) < 2 || strings.HasPrefix(strings.TrimSpace(cells[0]), "---") || strings.TrimSpace(cells[0]) == "key" {
			continue
		}
		var words []string
		for _, m := range backquoted.FindAllStringSubmatch(cells[0], -1) {
			words = append(words, m[1])
		}
		rows = append(rows, strings.Join(words, " ")+" | "+strings.TrimSpace(cells[1]))
	}
	return rows
}
