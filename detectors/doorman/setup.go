package doorman

import (
	"errors"
	"fmt"

	"github.com/doorward/doorward/config"
	cfg "github.com/doorward/doorward/config/doorman"
	"github.com/doorward/doorward/config/knockd"
	"github.com/doorward/doorward/formats/doorman"
)

// SetupOptions say how FromDoors loads what doors refer to.
type SetupOptions struct {
	Resolver cfg.Resolver
	// Memory keeps hash archives in memory only (replay, --check): a
	// replayed capture must not use up the live daemon's knocks, and a
	// check must not create files.
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
// archives, touching no file: the archives are opened (created, resized)
// by the Detector's Commit, once the config is accepted. Every error is returned, each with its file:line. Doors that
// name the same archive file share one Archive (they must agree on its
// size); knock ports must be distinct.
func FromDoors(doors []*knockd.Door, key func(*knockd.Door) string, opt SetupOptions) ([]*Door, error) {
	logf := opt.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	var errs []error
	var out []*Door
	archives := map[string]*doorman.Archive{}
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
		if cd.CheckPermissions && !opt.NoPermissionChecks {
			for _, c := range []struct {
				key, path string
				rule      cfg.FileRule
			}{{"Guestlist", cd.Guestlist, cfg.GuestlistRule}, {"Firewall_Add", cd.FirewallAdd, cfg.ScriptRule}, {"Firewall_Del", cd.FirewallDel, cfg.ScriptRule}} {
				if err := cfg.CheckFile(c.path, c.rule); err != nil {
					errs = append(errs, fmt.Errorf("%s: %s: %w (Check_Permissions = no to skip)", pos(cd, c.key), c.key, err))
				}
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
		arch, err := loadArchive(cd, archives, opt)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, &Door{
			Key: key(kd), Name: cd.Name, Port: cd.Port, Guests: gl, Archive: arch,
			Waitfor: cd.Waitfor, LogLevel: cd.LogLevel,
		})
	}
	if err := errors.Join(errs...); err != nil {
		for _, a := range archives {
			a.Close()
		}
		return nil, err
	}
	return out, nil
}

func loadArchive(cd *cfg.Door, archives map[string]*doorman.Archive, opt SetupOptions) (*doorman.Archive, error) {
	if a := archives[cd.HashArchive]; a != nil {
		if a.Size() != cd.HashArchiveSize {
			return nil, fmt.Errorf("%s: Hash_Archive_Size: %d, but another door uses %s with %d records", pos(cd, "Hash_Archive_Size"), cd.HashArchiveSize, cd.HashArchive, a.Size())
		}
		return a, nil
	}
	var a *doorman.Archive
	if opt.Memory {
		a = doorman.NewMemoryArchive(cd.HashArchiveSize)
	} else {
		// Loaded, not opened: the detector's Commit creates or resizes
		// the file once the whole config is accepted.
		var err error
		if a, err = doorman.LoadArchive(cd.HashArchive, cd.HashArchiveSize); err != nil {
			return nil, fmt.Errorf("%s: Hash_Archive: %w", pos(cd, "Hash_Archive"), err)
		}
	}
	archives[cd.HashArchive] = a
	return a, nil
}

// pos is where a directive was given, or the door's header.
func pos(cd *cfg.Door, key string) string {
	if p, ok := cd.Positions[key]; ok {
		return p.String()
	}
	return cd.Pos.String()
}
