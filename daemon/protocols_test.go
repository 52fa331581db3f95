package daemon

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/doorward/doorward/config/knockd"
	"github.com/doorward/doorward/detectors"
	// The daemon's tests run the build's protocols, as cmd/knockd does.
	_ "github.com/doorward/doorward/protocols"
)

// TestCheckDoorTypes: a door's Type is looked up in the registry: an
// unknown one is an error listing the protocols by name (aliases are not
// listed), and a protocol registered without Commands and without an
// action (a build that lists its detector only) is refused rather than
// routed to the command engine.
func TestCheckDoorTypes(t *testing.T) {
	t.Cleanup(detectors.RegisterForTest(detectors.Protocol{Name: "noaction",
		Detector: func([]*knockd.Door, *detectors.Env) (detectors.Detector, error) { return failCommit{}, nil }}))
	for _, tc := range []struct{ typ, want string }{
		{"nosuch", `:1: Type: unknown door type "nosuch" (have: doorman, fwknop, knockdaemon, noaction, sequence)`},
		{"noaction", `config: door type noaction: no action registered for it in this build`},
	} {
		path := filepath.Join(t.TempDir(), "knockd.conf")
		if err := os.WriteFile(path, []byte("[x]\n\tType = "+tc.typ+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		var out, errOut strings.Builder
		code := Check(Options{Config: path, Stdout: &out, Stderr: &errOut})
		if code != 1 || !strings.Contains(errOut.String(), tc.want) {
			t.Errorf("Type = %s: exit %d, stderr %q, want 1 and %q", tc.typ, code, errOut.String(), tc.want)
		}
	}
}
