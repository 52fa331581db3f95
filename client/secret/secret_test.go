package secret

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadFile(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, content string
		mode          os.FileMode
		want, err     string
	}{
		{"first line", "pass phrase\nsecond\n", 0o600, "pass phrase", ""},
		{"no newline", "pass", 0o400, "pass", ""},
		{"crlf", "pass\r\n", 0o600, "pass", ""},
		{"group readable", "pass\n", 0o640, "", "must not be readable or writable by group or others"},
		{"other writable", "pass\n", 0o602, "", "must not be readable or writable by group or others"},
		{"empty", "", 0o600, "", "empty"},
		{"empty line", "\nx\n", 0o600, "", "empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-"))
			if err := os.WriteFile(path, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tc.mode); err != nil {
				t.Fatal(err)
			}
			got, err := ReadFile(path)
			var gotErr string
			if err != nil {
				gotErr = err.Error()
			}
			if string(got) != tc.want || (tc.err == "") != (err == nil) || !strings.Contains(gotErr, tc.err) {
				t.Errorf("ReadFile = %q, %v; want %q, error containing %q", got, err, tc.want, tc.err)
			}
		})
	}
	if _, err := ReadFile(dir); err == nil {
		t.Error("a directory was read as a key file")
	}
}
