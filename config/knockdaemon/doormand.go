package knockdaemon

import (
	"bytes"
	"fmt"
	"slices"
	"strings"

	"github.com/doorward/doorward/config"
	dmconfig "github.com/doorward/doorward/config/doorman"
	dmformat "github.com/doorward/doorward/formats/doorman"
)

// IsDoormandCF reports whether src is a doormand.cf rather than a
// knockdaemon.conf. config/doorman recognises a cf ("key value" lines of
// its directives, no sections); a Config::General file written without
// "=" could pass that test, so blocks or knockdaemon's own directives
// settle it.
func IsDoormandCF(src []byte) bool {
	if !dmconfig.IsCF(src) {
		return false
	}
	for line := range bytes.SplitSeq(src, []byte("\n")) {
		f := strings.Fields(string(line))
		if len(f) == 0 {
			continue
		}
		if strings.HasPrefix(f[0], "<") {
			return false
		}
		switch f[0] {
		case "runmode", "portspan", "knock", "encrypt", "cipher", "uselogformat", "useethfilter", "statecache":
			return false
		}
	}
	return true
}

// doormandKeys are the directives doormand.cf(5) knows, lower case.
var doormandKeys = []string{"interface", "port", "waitfor", "connection-delay-1", "connection_delay_1",
	"connection-delay-2", "connection_delay_2", "link-header-length", "guestlist", "firewall-add",
	"firewall-del", "hash-archive", "hash-archive-size", "logfile", "loglevel", "pidfile", "fail-limit", "fail-delay"}

// doormanDoorKeys are the directives of the doorman door, in the order written,
// with doormand's default for those that have one.
var doormanDoorKeys = []struct{ key, def string }{
	{"Port", "1001"}, {"Guestlist", "/etc/dd_guestlist"}, {"Firewall_Add", ""}, {"Firewall_Del", ""},
	{"Waitfor", "10"}, {"Connection_Delay_1", "500000"}, {"Connection_Delay_2", "5"},
	{"Hash_Archive", ""}, {"Hash_Archive_Size", "100000"}, {"LogLevel", ""},
}

// MigrateDoormand turns a doormand.cf (../shared/specs/doorman.md §3) into
// an INI config with one Type = doorman door. It reads the cf exactly as
// `knockd -c doormand.cf` does (config/doorman): first occurrence wins,
// numbers as C's atoi reads them. Every key is written out, with
// doormand's default where the cf has none, so the result says what runs.
func MigrateDoormand(name string, src []byte) *Result {
	m := &migration{}
	cf := dmformat.ParseCF(name, src)
	cfg, err := dmconfig.ToConfig(cf, false)
	pos := func(line int) config.Pos { return config.Pos{File: name, Line: line} }

	fmt.Fprintf(&m.out, "# Migrated from the doormand.cf %s by knockd --migrate.\n", name)
	m.comment("Lines starting with \"# migrate:\" say what could not be carried over unchanged;")
	m.comment("read them, then check the result with: knockd --check -c FILE")
	m.comment("(knockd -c %s also runs the cf unchanged.)", name)
	for _, e := range config.Errors(err) {
		m.note(config.Pos{}, "%v", e)
	}
	seen := map[string]int{}
	for _, e := range cf.Entries {
		k := strings.ToLower(e.Key)
		switch {
		case !slices.Contains(doormandKeys, k):
			m.note(pos(e.Line), "%s %s: not a doormand.cf directive (doormand ignored it); not carried over", e.Key, e.Value)
		case seen[k] != 0:
			m.note(pos(e.Line), "%s given again (first at line %d): doormand used the first, and so does this", e.Key, seen[k])
		default:
			seen[k] = e.Line
		}
		if strings.Contains(e.Value, `"`) {
			m.note(pos(e.Line), "%s: the value holds a '\"', which doormand kept as part of it (doormand.cf values must not be quoted)", e.Key)
		}
		switch k {
		case "link-header-length":
			m.note(pos(e.Line), "link-header-length = %s: not needed, Doorward decodes the link layer itself", e.Value)
		case "fail-limit", "fail-delay":
			m.note(pos(e.Line), "%s = %s: doormand read it but never used it; not carried over", e.Key, e.Value)
		}
	}

	m.section("options")
	if cfg != nil && len(cfg.Options.Interfaces) > 0 {
		m.kv("Interface", cfg.Options.Interfaces[0])
	}
	if cfg != nil {
		if cfg.Options.LogFile != "" {
			m.note(pos(cfg.Options.Pos["LogFile"].Line), "LogFile gets knockd's \"[YYYY-MM-DD HH:MM] message\" lines, not doormand's syslog-style ones")
			m.kv("LogFile", cfg.Options.LogFile)
		}
		if cfg.Options.PidFile != "" {
			m.kv("PidFile", cfg.Options.PidFile)
		}
	}

	m.section(dmconfig.CFDoorName)
	m.comment("doorman single-packet knocks; units as in doormand.cf (Connection_Delay_1 in microseconds)")
	m.kv("Type", "doorman")
	vals := map[string]string{}
	if cfg != nil && len(cfg.Doors) == 1 {
		for _, p := range cfg.Doors[0].Params {
			vals[p.Key] = p.Value
		}
	}
	for _, k := range doormanDoorKeys {
		v, ok := vals[k.key]
		switch {
		case ok:
			m.kv(k.key, v)
		case k.def != "":
			m.kv(k.key, k.def)
		}
	}
	return &Result{INI: m.out.String(), Notes: m.notes}
}
