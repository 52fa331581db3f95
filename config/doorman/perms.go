package doorman

import (
	"fmt"
	"io/fs"
	"os"
	"syscall"

	"github.com/doorward/doorward/internal/trust"
)

// FileRule is one of the ownership and mode checks doormand and knock make
// on the files that hold secrets or run as root (spec §7).
type FileRule int

const (
	// GuestlistRule: owned by root, a regular file, no group or other
	// permission bits at all (mode & 077 == 0).
	GuestlistRule FileRule = iota
	// ScriptRule (firewall-add, firewall-del): owned by root, a regular
	// file, not setuid or setgid, not writable or executable by others.
	// Group bits are allowed (doormand's installer uses 0744).
	ScriptRule
	// The client's ~/.knockcf rule (mode & 077 == 0, any owner) is
	// client/doorman's: the client does not import a config dialect.
)

// CheckFile applies rule to the file at path (following symbolic links, as
// stat(2) does). The messages are doormand's and knock's.
func CheckFile(path string, rule FileRule) error { return checkFile(path, rule, 0) }

// checkFile is CheckFile with the owner to require, so tests can run
// without root.
func checkFile(path string, rule FileRule, owner uint32) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("%s: %w", path, unwrapPath(err))
	}
	mode := fi.Mode()
	if st, ok := fi.Sys().(*syscall.Stat_t); !ok || st.Uid != owner {
		return fmt.Errorf("%s must be owned by root", path)
	}
	if !mode.IsRegular() {
		return fmt.Errorf("%s must be a regular file", path)
	}
	switch rule {
	case GuestlistRule:
		if !trust.PrivateMode(mode) {
			return fmt.Errorf("%s must be readable and writeable only by root (mode %04o; want no group or other bits)", path, mode.Perm())
		}
	case ScriptRule:
		if mode&(fs.ModeSetuid|fs.ModeSetgid) != 0 || mode.Perm()&0o003 != 0 {
			return fmt.Errorf("%s must be writable and executable only by root (no setuid/setgid, no other-write or other-execute)", path)
		}
	}
	return nil
}
