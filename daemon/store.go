package daemon

import (
	"errors"
	"maps"
	"slices"
	"time"

	"github.com/doorward/doorward/actions"
	"github.com/doorward/doorward/actions/filestore"
	"github.com/doorward/doorward/actions/redisstore"
	"github.com/doorward/doorward/config/knockd"
)

// sharedState is [options] State and its keys as the Redis backend's
// options; ok is false without State (the embedded backend).
func sharedState(o *knockd.Options) (redisstore.Options, bool, error) {
	if o.State == "" {
		if o.StatePasswordFile != "" || o.StatePrefix != "" || len(o.StateSentinel) > 0 || o.StateSentinelMaster != "" {
			return redisstore.Options{}, false, errors.New("State_Password_File, State_Prefix and State_Sentinel need State")
		}
		return redisstore.Options{}, false, nil
	}
	return redisstore.Options{URL: o.State, PasswordFile: o.StatePasswordFile, Prefix: o.StatePrefix,
		Sentinels: o.StateSentinel, Master: o.StateSentinelMaster}, true, nil
}

// checkState validates the State keys without connecting (--check).
func checkState(cfg *knockd.Config) error {
	ro, ok, err := sharedState(&cfg.Options)
	if err != nil || !ok {
		return err
	}
	return ro.Check()
}

// openStore is the live daemon's Store: the files of the state directory,
// or, with State, a composition: doors in the host's own journal (each
// host closes what it opened, Redis up or down), tokens and values in
// Redis, shared by the fleet. health is nil for the embedded backend.
func openStore(cfg *knockd.Config, stateDir string, jr actions.Doors, logf actions.Logf) (actions.Store, *redisstore.Store, error) {
	local := filestore.New(filestore.Options{Dir: stateDir, Doors: jr, Logf: logf})
	ro, ok, err := sharedState(&cfg.Options)
	if err != nil || !ok {
		return local, nil, err
	}
	rs, err := redisstore.New(ro, local.Doors, logf)
	if err != nil {
		return nil, nil, err
	}
	return rs, rs, nil
}

// probeState pings the shared state once and, when it answers, reads
// what is open at now in each of groups (name → the config's doors in it,
// for --status), in name order.
func probeState(ro redisstore.Options, groups map[string][]string, now time.Time) ([]groupStatus, error) {
	rs, err := redisstore.New(ro, filestore.Memory().Doors, nil)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	if err := rs.Ping(); err != nil {
		return nil, err
	}
	var out []groupStatus
	for _, name := range slices.Sorted(maps.Keys(groups)) {
		open, err := rs.GroupOpenings(name, now)
		out = append(out, groupStatus{Name: name, Doors: groups[name], Open: len(open), Err: err})
	}
	return out, nil
}
