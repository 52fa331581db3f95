package knockdaemon

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/doorward/doorward/config/knockd"
)

// TestDocsExamples loads every ini block of docs/knockdaemon-actions.md, so
// the reference cannot show a config that does not load. Blocks with only
// action sections get a port-span door to act on.
func TestDocsExamples(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "docs", "knockdaemon-actions.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks := 0
	for i, part := range strings.Split(string(data), "```ini\n")[1:] {
		block, _, ok := strings.Cut(part, "```")
		if !ok {
			t.Fatalf("ini block %d is not closed", i+1)
		}
		blocks++
		if !strings.Contains(block, "= "+DoorType+"\n") {
			block = spanDoor + block
		}
		cfg, err := knockd.Parse("docs block", []byte(block))
		if err == nil {
			err = Check(cfg.Doors)
		}
		if err != nil {
			t.Errorf("ini block %d:\n%s\n%v", i+1, block, err)
		}
	}
	if blocks < 6 {
		t.Errorf("found %d ini blocks", blocks)
	}
}
