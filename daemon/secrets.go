package daemon

import (
	"fmt"
	"io"
	"strings"

	"github.com/doorward/doorward/config/knockd"
	"github.com/doorward/doorward/internal/trust"
)

// secretKeys are the directives whose value is a secret: whoever reads it
// can forge a knock.
var secretKeys = []string{"Key"}

// warnSecrets warns on w about each config file that holds a secret
// directive and that group or others may read (internal/trust.Private, the
// rule doormand applies to its guest list). It only warns: knockdaemon
// never checked, and refusing would stop a working daemon on upgrade.
func warnSecrets(cfg *knockd.Config, w io.Writer) {
	seen := map[string]bool{}
	for _, d := range cfg.Doors {
		for _, p := range d.Params {
			file := p.Pos.File
			if seen[file] || file == "" || !isSecret(p.Key) {
				continue
			}
			seen[file] = true
			if err := trust.Private(file); err != nil {
				fmt.Fprintf(w, "warning: %v\n", err)
			}
		}
	}
}

func isSecret(key string) bool {
	for _, k := range secretKeys {
		if strings.EqualFold(key, k) {
			return true
		}
	}
	return false
}
