package logtail

import (
	"os"
	"regexp"
	"testing"

	"github.com/doorward/doorward/config/knockd"
)

// TestDocs loads every ```ini block of docs/knockdaemon-file-mode.md, as
// the daemon would, so the page cannot drift from the code.
func TestDocs(t *testing.T) {
	src, err := os.ReadFile("../../docs/knockdaemon-file-mode.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```ini\n(.*?)```").FindAllSubmatch(src, -1)
	if len(blocks) < 2 {
		t.Fatalf("found %d ini blocks", len(blocks))
	}
	for i, b := range blocks {
		cfg, err := knockd.Parse("block", b[1])
		if err != nil {
			t.Errorf("block %d: %v", i+1, err)
			continue
		}
		fs, err := Formats(cfg)
		if err != nil || len(fs) != 1 {
			t.Errorf("block %d: %d formats, %v", i+1, len(fs), err)
		}
	}
}
