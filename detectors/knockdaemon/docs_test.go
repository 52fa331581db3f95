package knockdaemon_test

import (
	"os"
	"regexp"
	"testing"
)

// TestDocs loads every ```ini block of docs/knockdaemon.md as a config:
// the documentation's examples must be valid port-span doors.
func TestDocs(t *testing.T) {
	b, err := os.ReadFile("../../docs/knockdaemon.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```ini\n(.*?)```").FindAllStringSubmatch(string(b), -1)
	if len(blocks) == 0 {
		t.Fatal("no ini blocks in docs/knockdaemon.md")
	}
	for _, m := range blocks {
		doors, err := fromConfig(t, m[1], 0)
		if err != nil {
			t.Errorf("docs/knockdaemon.md block:\n%s\n%v", m[1], err)
		}
		if len(doors) == 0 {
			t.Errorf("docs/knockdaemon.md block has no port-span door:\n%s", m[1])
		}
	}
}
