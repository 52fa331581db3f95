package doorman

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/doorward/doorward/config"
	cfg "github.com/doorward/doorward/config/doorman"
	"github.com/doorward/doorward/config/knockd"
	"github.com/doorward/doorward/formats/doorman"
	"github.com/doorward/doorward/internal/trust"
)

// SetupOptions say how FromDoors loads what doors refer to.
type SetupOptions struct {
	Resolver cfg.Resolver
	// Memory: hash archives are kept in memory (replay, --check: the
	// Detector's Store is a memory one), so their files are not checked.
	Memory bool
	// NoPermissionChecks skips doormand's file checks whatever the doors
	// say (replay, --check, tests).
	NoPermissionChecks bool
	// Logf receives load-time notes: guest list warnings, ignored
	// directives. (Archives are created or resized by the detector's
	// Commit, which logs it.)
	Logf func(format string, args ...any)
}

// FromDoors validates doorman doors and loads their guest lists and hash
// archives. Every error is returned, each with its file:line. Doors that
// name the same archive file share one archive (they must agree on its
// size); knock ports must be distinct.
//
// No file is touched: an archive file is only checked (its size in range,
// the file readable if it exists) and left for the Detector's Commit to
// open, create or resize once the whole config is accepted; until then
// the door has no archive. A config rejected later (another door's error, a
// reload that fails) so leaves the running detector's archive alone.
func FromDoors(doors []*knockd.Door, key func(*knockd.Door) string, opt SetupOptions) ([]*Door, error) {
	logf := opt.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	var errs []error
	var out []*Door
	sizes := map[string]int{} // every archive's size, by path
	ports := map[uint16]string{}
	for _, kd := range doors {
		cd, err := cfg.FromDoor(kd)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, n := range cd.Notes {
			logf("%s", n)
		}
		if other, dup := ports[cd.Port]; dup {
			errs = append(errs, fmt.Errorf("%s: Port: UDP port %d is already the knock port of door %q", pos(cd, "Port"), cd.Port, other))
			continue
		}
		ports[cd.Port] = cd.Name
		refused := map[string]bool{}
		if cd.CheckPermissions && !opt.NoPermissionChecks {
			for _, c := range []struct {
				key, path string
				rule      cfg.FileRule
			}{{"Guestlist", cd.Guestlist, cfg.GuestlistRule}, {"Firewall_Add", cd.FirewallAdd, cfg.ScriptRule}, {"Firewall_Del", cd.FirewallDel, cfg.ScriptRule}} {
				if err := cfg.CheckFile(c.path, c.rule); err != nil {
					errs = append(errs, fmt.Errorf("%s: %s: %w (Check_Permissions = no to skip)", pos(cd, c.key), c.key, err))
					refused[c.key] = true
				}
			}
		}
		// The scripts run as root: whoever could change one (or its
		// directory) could run anything as root. Unlike doormand's checks
		// above this holds whatever Check_Permissions says, and at --check;
		// a script doormand's check refused is not reported twice.
		for _, c := range []struct{ key, path string }{{"Firewall_Add", cd.FirewallAdd}, {"Firewall_Del", cd.FirewallDel}} {
			if refused[c.key] {
				continue
			}
			if err := trust.Command(c.path); err != nil {
				errs = append(errs, fmt.Errorf("%s: %s: %w", pos(cd, c.key), c.key, err))
			}
		}
		gl, warns, err := cfg.LoadGuestlist(cd.Guestlist, opt.Resolver)
		for _, w := range warns {
			logf("%s: warn: %s", cd.Name, w)
		}
		if err != nil {
			for _, e := range config.Errors(err) {
				errs = append(errs, fmt.Errorf("%s: Guestlist: %w", pos(cd, "Guestlist"), e))
			}
			continue
		}
		if err := checkArchive(cd, sizes, !opt.Memory); err != nil {
			errs = append(errs, err)
			continue
		}
		door := &Door{
			Key: key(kd), Name: cd.Name, Port: cd.Port, Guests: gl,
			Waitfor: cd.Waitfor, LogLevel: cd.LogLevel,
			archivePath: cd.HashArchive, archiveSize: cd.HashArchiveSize,
		}
		out = append(out, door)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

// checkArchive validates a door's archive without touching it: the size is
// in range and agrees with other doors naming the same file, and, with
// files set (not for memory archives), the file can be created or read.
func checkArchive(cd *cfg.Door, sizes map[string]int, files bool) error {
	path, size := cd.HashArchive, cd.HashArchiveSize
	if other, ok := sizes[path]; ok {
		if other != size {
			return fmt.Errorf("%s: Hash_Archive_Size: %d, but another door uses %s with %d records", pos(cd, "Hash_Archive_Size"), size, path, other)
		}
		return nil
	}
	if size < doorman.MinRecords || size > doorman.MaxRecords {
		return fmt.Errorf("%s: Hash_Archive: hash archive %s: size %d out of range %d..%d", pos(cd, "Hash_Archive"), path, size, doorman.MinRecords, doorman.MaxRecords)
	}
	sizes[path] = size
	if !files {
		return nil
	}
	// What Commit will need: a directory to create the file in, and a
	// regular file to read if there is one.
	if fi, err := os.Stat(filepath.Dir(path)); err != nil || !fi.IsDir() {
		return fmt.Errorf("%s: Hash_Archive: hash archive %s: no directory %s", pos(cd, "Hash_Archive"), path, filepath.Dir(path))
	}
	fi, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err == nil && !fi.Mode().IsRegular() { // checked first: opening a FIFO blocks
		return fmt.Errorf("%s: Hash_Archive: hash archive %s: not a regular file", pos(cd, "Hash_Archive"), path)
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("%s: Hash_Archive: hash archive: %w", pos(cd, "Hash_Archive"), err)
	}
	return f.Close()
}

// pos is where a directive was given, or the door's header.
func pos(cd *cfg.Door, key string) string {
	if p, ok := cd.Positions[key]; ok {
		return p.String()
	}
	return cd.Pos.String()
}
