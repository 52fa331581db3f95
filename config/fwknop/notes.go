package fwknop

import (
	"fmt"
	"strings"

	"github.com/doorward/doorward/config"
	"github.com/doorward/doorward/config/knockd"
)

// WarningKey is the Param key under which a loaded config carries its
// warnings (unknown keys, keys Doorward ignores), each with its file:line,
// on the first door: a knockd.Config has no place for warnings, and the
// detector, which has the logger, logs them (see Warnings). No key of
// either dialect can be spelt so: both read a line starting with '#' as a
// comment.
const WarningKey = "#warning"

// Warnings returns the warnings a loaded config carries on door d, as
// "file:line: message" lines, for the detector to log once per load.
func Warnings(d *knockd.Door) []string {
	var out []string
	for _, p := range d.Params {
		if p.Key == WarningKey {
			out = append(out, fmt.Sprintf("%s: %s", p.Pos, p.Value))
		}
	}
	return out
}

// notes collects a load's errors and warnings, in the order the files are
// read, so every error of the config is reported in one pass.
type notes struct {
	errs  config.List
	warns []config.Param // Key WarningKey, Value the message
	// warned holds the ignored keys already warned about: each is said
	// once per config, not once per stanza.
	warned map[string]bool
}

func (n *notes) errorf(pos config.Pos, key, format string, args ...any) {
	n.errs.Add(config.Errorf(pos, key, format, args...))
}

func (n *notes) warnf(pos config.Pos, format string, args ...any) {
	n.warns = append(n.warns, config.Param{Key: WarningKey, Value: fmt.Sprintf(format, args...), Pos: pos})
}

// refusedWhy says why a Refused key cannot be ignored.
var refusedWhy = map[string]string{
	"FORCE_NAT":            "NAT forwarding is not supported (fwknopd built without NAT refuses it too)",
	"FORCE_SNAT":           "NAT forwarding is not supported (fwknopd built without NAT refuses it too)",
	"FORCE_MASQUERADE":     "NAT forwarding is not supported",
	"FORWARD_ALL":          "NAT forwarding is not supported",
	"ENABLE_CMD_SUDO_EXEC": "commands through sudo are not supported, and running them without sudo's limits would do more than asked",
}

// use applies what Doorward does with a known key k met at pos: Ignored
// keys are warned about once, Refused ones are errors. It reports
// whether the key is kept (Use Door or Loader).
func (n *notes) use(k Key, pos config.Pos, value string) bool {
	u := k.Use
	if u == RefusedIfYes {
		u = Ignored
		if strings.HasPrefix(value, "Y") || strings.HasPrefix(value, "y") {
			u = Refused
		}
	}
	switch u {
	case Refused:
		n.errorf(pos, k.Name, "%s", refusedWhy[k.Name])
		return false
	case Ignored:
		if n.warned == nil {
			n.warned = map[string]bool{}
		}
		if !n.warned[k.Name] {
			n.warned[k.Name] = true
			n.warnf(pos, "%s: not supported by Doorward, ignored", k.Name)
		}
		return false
	}
	return true
}
