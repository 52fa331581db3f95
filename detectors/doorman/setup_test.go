package doorman

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/doorward/doorward/config/knockd"
	"github.com/doorward/doorward/formats/doorman"
)

// TestBuildTouchesNoFile: building doors (FromDoors, New) neither creates
// a missing archive nor resizes one, so a config rejected afterwards
// leaves the running archive alone; Commit does both, and Close releases
// the file.
func TestBuildTouchesNoFile(t *testing.T) {
	dir := t.TempDir()
	gl := filepath.Join(dir, "guestlist")
	if err := os.WriteFile(gl, []byte(guestlist), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "archive")
	build := func(size int) *Detector {
		t.Helper()
		conf := fmt.Sprintf("[dm]\n\tType = doorman\n\tGuestlist = %s\n\tFirewall_Add = /bin/true\n\tFirewall_Del = /bin/true\n\tHash_Archive = %s\n\tHash_Archive_Size = %d\n", gl, path, size)
		kc, err := knockd.Parse("knockd.conf", []byte(conf))
		if err != nil {
			t.Fatal(err)
		}
		doors, err := FromDoors(kc.Doors, func(d *knockd.Door) string { return d.Name }, SetupOptions{Resolver: resolver(), NoPermissionChecks: true})
		if err != nil {
			t.Fatal(err)
		}
		return New(doors, Options{})
	}
	d := build(1000)
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("building created the archive: %v", err)
	}
	if err := d.Commit(); err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	size := func() int64 {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	if got := size(); got != 1000*doorman.RecordSize {
		t.Fatalf("Commit made a %d-byte archive", got)
	}
	bigger := build(2000)
	if got := size(); got != 1000*doorman.RecordSize {
		t.Errorf("building a bigger door resized the archive to %d bytes", got)
	}
	bigger.Close() // rejected: nothing to release, and no file touched
	if got := size(); got != 1000*doorman.RecordSize {
		t.Errorf("closing an uncommitted detector changed the archive to %d bytes", got)
	}
}
