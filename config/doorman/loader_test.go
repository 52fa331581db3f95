package doorman

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/doorward/doorward/config/knockd"
)

// TestRegisteredLoader: knockd.LoadFile, the runtime's only way to read a
// config, reads a doormand.cf through this package's registered loader
// (one doorman door, -D passed on) and anything else as a knockd.conf.
func TestRegisteredLoader(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "knockd.conf")
	if err := os.WriteFile(conf, []byte("[ssh]\n\tSequence = 7000,8000\n\tStart_Command = true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path  string
		debug bool
		want  string // the doors' name/Type
	}{
		{"testdata/cf/sample.cf", true, CFDoorName + "/doorman"},
		{conf, false, "ssh/"},
	} {
		cfg, err := knockd.LoadFile(tc.path, knockd.LoadOptions{Debug: tc.debug})
		if err != nil {
			t.Fatalf("%s: %v", tc.path, err)
		}
		if len(cfg.Doors) != 1 || cfg.Doors[0].Name+"/"+cfg.Doors[0].Type != tc.want {
			t.Errorf("%s: doors %v, want one %s", tc.path, cfg.Doors, tc.want)
		}
	}
	// -D reaches the loader: doormand's file checks are skipped.
	cfg, err := knockd.LoadFile("testdata/cf/sample.cf", knockd.LoadOptions{Debug: true})
	if err != nil {
		t.Fatal(err)
	}
	if d, err := FromDoor(cfg.Doors[0]); err != nil || d.CheckPermissions {
		t.Errorf("with Debug: CheckPermissions %v, %v", d.CheckPermissions, err)
	}
}
