package logtail

import (
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/doorward/doorward/config"
	"github.com/doorward/doorward/config/knockd"
	"github.com/doorward/doorward/formats/fwlog"
)

// SectionType is the Type of the config sections that define log formats.
const SectionType = "logformat"

// Formats reads the log formats of cfg: every section with
// "Type = logformat", in file order. Each line of the log is tried against
// them in that order. With none, it returns nil, which Open and OpenFile
// read as the built-in iptables format with any prefix.
//
// A section is either a built-in format
//
//	[fw]
//	Type      = logformat
//	Format    = iptables        # or nftables: the same kernel lines
//	Prefix    = DOORWARD:       # the --log-prefix / log prefix; optional
//	Required  = kernel:         # plain text the line must contain; optional
//	Timestamp = line            # stamp packets with the line's time; default read
//	TimeZone  = UTC             # of year-less timestamps; default local
//
// or knockdaemon's regular expressions, one per field, each read from its
// first capture group (Format = regex, the default when any is given):
// Required, Interface, Protocol, IPServer, IPClient, Port, SPort, Flags,
// Seq. Perl-only constructs are errors (fwlog.CompilePerl). Every error of
// every section is returned, each with its file:line.
func Formats(cfg *knockd.Config) ([]*fwlog.Format, error) {
	var errs config.List
	var out []*fwlog.Format
	for _, d := range cfg.Doors {
		if d.Type != SectionType {
			continue
		}
		if f := section(d, &errs); f != nil {
			out = append(out, f)
		}
	}
	slices.SortStableFunc(errs, func(a, b *config.Error) int { return a.Pos.Line - b.Pos.Line })
	return out, errs.Err()
}

// regexKey returns the canonical name of a regex key given in upper case,
// or "".
func regexKey(up string) string {
	switch up {
	case "REQUIRED":
		return "Required"
	case "INTERFACE":
		return "Interface"
	case "PROTOCOL":
		return "Protocol"
	case "IPSERVER":
		return "IPServer"
	case "IPCLIENT":
		return "IPClient"
	case "PORT":
		return "Port"
	case "SPORT":
		return "SPort"
	case "FLAGS":
		return "Flags"
	case "SEQ":
		return "Seq"
	}
	return ""
}

func section(d *knockd.Door, errs *config.List) *fwlog.Format {
	n0 := len(*errs)
	kind := ""
	var kindPos config.Pos
	var prefix, timestamp, zone config.Param
	res := map[string]config.Param{}
	for _, p := range d.Params {
		up := strings.ToUpper(p.Key)
		switch {
		case up == "FORMAT":
			kind, kindPos = strings.ToLower(p.Value), p.Pos
		case up == "PREFIX":
			prefix = p
		case up == "TIMESTAMP":
			timestamp = p
		case up == "TIMEZONE":
			zone = p
		case regexKey(up) != "":
			if p.Value == "" {
				errs.Add(config.Errorf(p.Pos, p.Key, "empty expression"))
				continue
			}
			res[regexKey(up)] = p
		default:
			errs.Add(config.Errorf(p.Pos, p.Key, "unknown log format directive (have: Format, Prefix, Timestamp, TimeZone, Required, Interface, Protocol, IPServer, IPClient, Port, SPort, Flags, Seq)"))
		}
	}
	if kind == "" {
		kind = "iptables"
		for k := range res {
			if k != "Required" {
				kind = "regex"
			}
		}
	}

	lineTime := false
	switch v := strings.ToLower(timestamp.Value); {
	case timestamp.Key == "" || v == "read":
	case v == "line":
		lineTime = true
	default:
		errs.Add(config.Errorf(timestamp.Pos, timestamp.Key, "%q: want read (the time the line is read) or line (the line's own timestamp)", timestamp.Value))
	}
	var loc *time.Location
	if zone.Key != "" {
		l, err := time.LoadLocation(zone.Value)
		if err != nil || zone.Value == "" {
			errs.Add(config.Errorf(zone.Pos, zone.Key, "unknown time zone %q", zone.Value))
		}
		loc = l
	}

	var f *fwlog.Format
	switch kind {
	case "iptables", "nftables":
		f, _ = fwlog.Builtin(kind)
		f.Name = d.Name
		f.Prefix = prefix.Value
		for k, p := range res {
			if k != "Required" {
				errs.Add(config.Errorf(p.Pos, p.Key, "not used with Format = %s (the built-in reads every field; use Format = regex for expressions)", kind))
				continue
			}
			re, err := fwlog.CompilePerl(p.Value)
			if err != nil {
				errs.Add(config.Errorf(p.Pos, p.Key, "%v", err))
				continue
			}
			lit, complete := re.LiteralPrefix()
			if !complete {
				errs.Add(config.Errorf(p.Pos, p.Key, "with Format = %s, Required must be plain text (it is matched without a regexp); use Prefix, or Format = regex", kind))
				continue
			}
			f.Contains = lit
		}
	case "regex":
		if prefix.Key != "" {
			errs.Add(config.Errorf(prefix.Pos, prefix.Key, "only for Format = iptables or nftables (a regex format says it in Required)"))
		}
		var r fwlog.Regexps
		for _, k := range []struct {
			name string
			dst  **regexp.Regexp
		}{
			{"Required", &r.Required}, {"Interface", &r.Interface}, {"Protocol", &r.Protocol}, {"IPServer", &r.IPServer},
			{"IPClient", &r.IPClient}, {"Port", &r.Port}, {"SPort", &r.SPort}, {"Flags", &r.Flags}, {"Seq", &r.Seq},
		} {
			p, ok := res[k.name]
			if !ok {
				continue
			}
			re, err := fwlog.CompilePerl(p.Value)
			if err != nil {
				errs.Add(config.Errorf(p.Pos, p.Key, "%v", err))
				continue
			}
			if k.name != "Required" && re.NumSubexp() < 1 {
				errs.Add(config.Errorf(p.Pos, p.Key, "no capture group: the field is the first (…) group"))
				continue
			}
			*k.dst = re
		}
		if len(*errs) > n0 {
			return nil
		}
		var err error
		f, err = fwlog.NewRegex(d.Name, r)
		if err != nil {
			errs.Add(config.Errorf(d.Pos, "", "log format %q: %v", d.Name, err))
			return nil
		}
	default:
		errs.Add(config.Errorf(kindPos, "Format", "unknown log format %q (have: %s, regex)", kind, strings.Join(fwlog.BuiltinNames(), ", ")))
		return nil
	}

	f.LineTime, f.Location = lineTime, loc
	if len(*errs) > n0 {
		return nil
	}
	return f
}
