package doorman

import (
	"os"
	"regexp"
	"testing"

	"github.com/doorward/doorward/config/knockd"
)

// TestDocs loads every ```ini block of docs/doorman.md as the daemon would:
// the documentation's example door must be valid.
func TestDocs(t *testing.T) {
	doc, err := os.ReadFile("../../docs/doorman.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```ini\n(.*?)```").FindAllSubmatch(doc, -1)
	if len(blocks) == 0 {
		t.Fatal("no ini block in docs/doorman.md")
	}
	for _, b := range blocks {
		cfg, err := knockd.Parse("docs/doorman.md", b[1])
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range cfg.Doors {
			if d.Type != "doorman" {
				t.Errorf("door %s is not a doorman door", d.Name)
				continue
			}
			if _, err := FromDoor(d); err != nil {
				t.Error(err)
			}
		}
	}
}
