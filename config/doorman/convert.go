package doorman

import (
	"bytes"
	"slices"
	"strconv"
	"strings"

	"github.com/doorward/doorward/config"
	"github.com/doorward/doorward/config/knockd"
	dmformat "github.com/doorward/doorward/formats/doorman"
)

// Defaults doormand uses when it runs as a daemon.
const (
	DefaultLogFile = "/var/log/doorman"
	DefaultPidFile = "/var/run/doorman.pid"
	// CFDoorName names the one door a doormand.cf becomes.
	CFDoorName = "doorman"
)

// cfKeys are the directives doormand.cf knows (doormand.cf(5)).
var cfKeys = []string{
	"interface", "port", "waitfor", "connection-delay-1", "connection_delay_1",
	"connection-delay-2", "connection_delay_2", "link-header-length", "guestlist",
	"firewall-add", "firewall-del", "hash-archive", "hash-archive-size",
	"logfile", "loglevel", "pidfile", "fail-limit", "fail-delay",
}

// IsCF reports whether src looks like a doormand.cf rather than a
// knockd.conf: no "[section]" line, no "key = value" line, and at least
// one line whose first word is a doormand.cf directive. A knockd.conf
// always has sections (a directive outside one is an error there), so an
// unchanged doormand.cf given to `knockd -c` is recognised.
func IsCF(src []byte) bool {
	found := false
	for _, line := range bytes.Split(src, []byte("\n")) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		if line[0] == '[' {
			return false
		}
		fs := strings.Fields(string(line))
		if strings.Contains(fs[0], "=") || (len(fs) > 1 && strings.HasPrefix(fs[1], "=")) {
			return false
		}
		for _, k := range cfKeys {
			if strings.EqualFold(fs[0], k) {
				found = true
			}
		}
	}
	return found
}

// An unchanged doormand.cf is a config `knockd -c` runs: one doorman door
// (see ToConfig; -D skips its file checks, as doormand's -D does).
func init() {
	knockd.RegisterLoader(knockd.Loader{
		Name:      "doormand.cf",
		Recognise: func(_ string, src []byte) bool { return IsCF(src) },
		Load: func(path string, src []byte, opt knockd.LoadOptions) (*knockd.Config, error) {
			return ToConfig(dmformat.ParseCF(path, src), opt.Debug)
		},
	})
}

// ToConfig turns a doormand.cf into what `knockd -c doormand.cf` runs: the
// cf's interface as the capture interface (-i still overrides it), its log
// and pid files (doormand's defaults when absent), and one door of Type
// doorman, named "doorman", whose directives are the cf's with doormand's
// own reading applied: first occurrence wins, numbers read with atoi
// ("10s" is 10), the hyphenated connection-delay spelling looked up before
// the underscored one. Each directive keeps its cf line, so errors found
// later (a guest list that does not parse) still point into the cf.
//
// debug is knockd -D, doormand's -D: no file permission checks.
func ToConfig(cf *dmformat.CF, debug bool) (*knockd.Config, error) {
	cfg := &knockd.Config{File: cf.File, Options: knockd.Options{Pos: map[string]config.Pos{}}}
	door := &knockd.Door{Name: CFDoorName, Pos: config.Pos{File: cf.File}, Type: "doorman"}
	var errs config.List
	pos := func(e dmformat.CFEntry) config.Pos { return config.Pos{File: cf.File, Line: e.Line} }
	errorf := func(e dmformat.CFEntry, format string, args ...any) {
		errs.Add(config.Errorf(pos(e), e.Key, format, args...))
	}
	param := func(key, value string, e dmformat.CFEntry) {
		door.Params = append(door.Params, config.Param{Key: key, Value: value, Pos: pos(e)})
	}
	get := func(keys ...string) (dmformat.CFEntry, bool) {
		for _, k := range keys {
			if e, ok := cf.First(k); ok {
				return e, true
			}
		}
		return dmformat.CFEntry{}, false
	}

	if e, ok := get("interface"); !ok {
		errs.Add(config.Errorf(config.Pos{File: cf.File}, "", "can't find 'interface' record"))
	} else if !ValidInterface(e.Value) {
		errorf(e, "%q is not an interface name", e.Value)
	} else {
		cfg.Options.Interfaces = []string{e.Value}
		cfg.Options.Pos["Interface"] = pos(e)
	}
	cfg.Options.LogFile = DefaultLogFile
	if e, ok := get("logfile"); ok {
		cfg.Options.LogFile = e.Value
		cfg.Options.Pos["LogFile"] = pos(e)
	}
	cfg.Options.PidFile = DefaultPidFile
	if e, ok := get("pidfile"); ok {
		cfg.Options.PidFile = e.Value
		cfg.Options.Pos["PidFile"] = pos(e)
	}

	atoi := func(e dmformat.CFEntry) int { return cAtoi(e.Value) }
	if e, ok := get("port"); ok {
		if n := atoi(e); n < 1 || n > 65535 {
			errorf(e, "illegal port number (%s)", e.Value)
		} else {
			param(keyPort, strconv.Itoa(n), e)
		}
	}
	if e, ok := get("waitfor"); ok {
		if n := atoi(e); n < 1 {
			errorf(e, "illegal value for 'waitfor' (%s)", e.Value)
		} else {
			param(keyWaitfor, strconv.Itoa(n), e)
		}
	}
	// doormand accepts any connection delay (its check tests waitfor by
	// mistake). A negative first delay means "check once"; a second
	// delay under a second would poll the socket table in a busy loop.
	if e, ok := get("connection-delay-1", "connection_delay_1"); ok {
		param(keyDelay1, strconv.Itoa(max(atoi(e), 0)), e)
	}
	if e, ok := get("connection-delay-2", "connection_delay_2"); ok {
		param(keyDelay2, strconv.Itoa(max(atoi(e), 1)), e)
	}
	if e, ok := get("link-header-length"); ok {
		if _, err := strconv.ParseUint(leadingDigits(e.Value), 10, 32); err != nil {
			errorf(e, "illegal value for 'link_header_length' (%s)", e.Value)
		} else {
			param(keyLinkHeader, leadingDigits(e.Value), e)
		}
	}
	if e, ok := get("guestlist"); ok {
		param(keyGuestlist, e.Value, e)
	}
	for _, k := range []struct{ cf, door string }{{"firewall-add", keyAdd}, {"firewall-del", keyDel}, {"hash-archive", keyArchive}} {
		if e, ok := get(k.cf); ok {
			param(k.door, e.Value, e)
		} else {
			errs.Add(config.Errorf(config.Pos{File: cf.File}, "", "no '%s' record found", k.cf))
		}
	}
	if e, ok := get("hash-archive-size"); ok {
		if n := atoi(e); n < 1000 {
			errorf(e, "illegal value for 'hash-archive-size': %s is < 1000", e.Value)
		} else {
			param(keyArchSize, strconv.Itoa(n), e)
		}
	}
	if e, ok := get("loglevel"); ok {
		if _, err := ParseLevel(e.Value); err != nil {
			errorf(e, "illegal value (%s) for loglevel", e.Value)
		} else {
			param(keyLogLevel, e.Value, e)
		}
	}
	for _, k := range []string{"fail-limit", "fail-delay"} {
		if e, ok := get(k); ok && atoi(e) < 1 {
			errorf(e, "illegal value for '%s' (%s)", k, e.Value)
		}
	}
	if debug {
		door.Params = append(door.Params, config.Param{Key: keyCheckPerms, Value: "no", Pos: config.Pos{File: cf.File}})
	}
	cfg.Doors = []*knockd.Door{door}
	slices.SortStableFunc(errs, func(a, b *config.Error) int { return a.Pos.Line - b.Pos.Line })
	if err := errs.Err(); err != nil {
		return cfg, err
	}
	return cfg, nil
}

// cAtoi is C's atoi on a config value.
func cAtoi(s string) int {
	i := 0
	for i < len(s) && (s[i] == ' ' || (s[i] >= '\t' && s[i] <= '\r')) {
		i++
	}
	neg := false
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		neg = s[i] == '-'
		i++
	}
	n := 0
	for ; i < len(s) && isDigit(s[i]); i++ {
		if n < 1<<31 {
			n = n*10 + int(s[i]-'0')
		}
	}
	if neg {
		n = -n
	}
	return n
}
