package knockd

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/doorward/doorward/config"
	"github.com/doorward/doorward/formats/nftset"
	"github.com/doorward/doorward/formats/proto"
	"github.com/doorward/doorward/formats/rotating"
	"github.com/doorward/doorward/formats/sequence"
)

// maxLine is what knockd's fgets(line, PATH_MAX) holds. knockd silently
// splits a longer line and parses the rest as a new line; we refuse it instead.
const maxLine = 4095

// maxIfName is IFNAMSIZ-1: the kernel rejects longer interface names, so a
// longer one can only be a typo that would fail much later, at capture time.
const maxIfName = 15

// Load reads and parses a knockd.conf. The file name is used in every error
// position, so pass the path the admin knows.
func Load(path string) (*Config, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, readError(path, err)
	}
	return Parse(path, src)
}

// readError is a config file that could not be read, as a config error.
func readError(path string, err error) error {
	// Keep the cause (errors.Is(err, fs.ErrNotExist) still works) but
	// print the path once, as every other config error does.
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = fmt.Errorf("%s: %w", pe.Op, pe.Err)
	}
	return config.List{{Pos: config.Pos{File: path}, Err: err}}
}

// Parse parses src as a knockd.conf named name. It does not stop at the first
// problem: the returned error is a config.List holding every error of the
// file, sorted by line, so the admin fixes them in one pass. The *Config is
// returned even then, filled with whatever parsed, for tools that want to
// show it; it must not be used to run doors.
func Parse(name string, src []byte) (*Config, error) {
	p := &parser{
		cfg: &Config{File: name, Options: Options{Pos: map[string]config.Pos{}}},
	}
	for i, raw := range strings.Split(string(src), "\n") {
		p.pos = config.Pos{File: name, Line: i + 1}
		if len(raw) > maxLine {
			p.errorf("", "line too long (max %d bytes)", maxLine)
			continue
		}
		p.line(raw)
	}
	p.endSection()
	slices.SortStableFunc(p.errs, func(a, b *config.Error) int { return a.Pos.Line - b.Pos.Line })
	return p.cfg, p.errs.Err()
}

type sectionKind int

const (
	noSection sectionKind = iota
	optionsSection
	doorSection
)

type parser struct {
	cfg  *Config
	errs config.List
	pos  config.Pos // of the line being parsed

	sec  sectionKind
	door *Door // when sec == doorSection
	// lookalike marks [Options] or [OPTIONS]: knockd makes them doors, and
	// so do we, but an options key in one gets a hint instead of a bare
	// "not a door directive".
	lookalike bool
	// hasSeq is set by any Sequence or One_Time_Sequences line, valid or
	// not, so a bad sequence is reported once rather than twice.
	hasSeq bool
	// params holds a door's directives until its section ends, because a
	// Type line anywhere in the section decides how they are read.
	params []config.Param
	// nftPos is the door's last Nft_Set or Nft_Set_6 line, where a
	// Cmd_Timeout too short for an element's timeout is reported.
	nftPos config.Pos
	// rotPos is the door's first Rotating_* line, seqPos its Sequence or
	// One_Time_Sequences line, portsPos its Rotating_Ports line: where a
	// rotating door's inconsistencies are reported.
	rotPos, seqPos, portsPos config.Pos
}

func (p *parser) errorf(key, format string, args ...any) {
	p.errs.Add(config.Errorf(p.pos, key, format, args...))
}

// space is C's isspace in the C locale, which is what knockd's trim() strips;
// strings.TrimSpace would also strip Unicode spaces knockd keeps.
const space = " \t\n\v\f\r"

func (p *parser) line(raw string) {
	line := strings.Trim(raw, space)
	if line == "" || line[0] == '#' {
		return
	}
	if len(line) >= 2 && line[0] == '[' && line[len(line)-1] == ']' {
		p.header(line[1 : len(line)-1])
		return
	}
	if p.sec == noSection {
		p.errorf("", "all directives must belong to a section")
		return
	}
	k, v, hasEq := strings.Cut(line, "=")
	key, val := strings.Trim(k, space), strings.Trim(v, space)
	if !hasEq {
		// knockd's only bare word, and it is global wherever it appears.
		if asciiUpper(key) == "USESYSLOG" {
			if p.lookalike {
				p.errorf(key, "not a door directive (did you mean [options] in lowercase?)")
			}
			p.cfg.Options.UseSyslog = true
			p.cfg.Options.Pos["UseSyslog"] = p.pos
			return
		}
		p.errorf("", "syntax error: want \"key = value\" or \"[section]\", got %q", line)
		return
	}
	if key == "" {
		p.errorf("", "missing directive name before '='")
		return
	}
	if p.sec == optionsSection {
		p.option(key, val)
	} else {
		p.params = append(p.params, config.Param{Key: key, Value: val, Pos: p.pos})
	}
}

func (p *parser) header(name string) {
	p.endSection()
	if name == "" {
		p.errorf("", "bad section name")
		// Still check the section's lines, in a door nobody will run, so
		// the admin is not also told each of them lies outside a section.
		p.sec, p.door, p.hasSeq = doorSection, &Door{Pos: p.pos}, true
		return
	}
	// knockd compares with strcmp: only lowercase "options" is the options
	// section, anything else is a door (knockd truncates names to 127 bytes;
	// we keep them whole, names are only used in logs).
	if name == "options" {
		p.sec = optionsSection
		return
	}
	p.sec = doorSection
	p.lookalike = asciiUpper(name) == "OPTIONS"
	p.door = &Door{
		Name:       name,
		Pos:        p.pos,
		SeqTimeout: DefaultSeqTimeout,
		CmdTimeout: DefaultCmdTimeout,
	}
	p.cfg.Doors = append(p.cfg.Doors, p.door)
}

// endSection runs knockd's post-parse check on the door just finished,
// reported at its header because that is where the missing line belongs.
func (p *parser) endSection() {
	if p.sec == doorSection {
		p.endDoor()
	}
	p.sec, p.door, p.lookalike, p.hasSeq, p.params, p.nftPos = noSection, nil, false, false, nil, config.Pos{}
	p.rotPos, p.seqPos, p.portsPos = config.Pos{}, config.Pos{}, config.Pos{}
}

// endDoor reads the buffered directives of a door. A door whose Type is
// not "sequence" belongs to another protocol (doorman, port-span): its
// directives are kept raw, with their positions, for that protocol's own
// setup to validate; knockd's rules apply only to sequence doors.
func (p *parser) endDoor() {
	var typ string
	var typePos config.Pos
	rest := p.params[:0:0]
	for _, prm := range p.params {
		switch asciiUpper(prm.Key) {
		case "TYPE":
			typ, typePos = strings.ToLower(prm.Value), prm.Pos
			continue
		case "GROUP":
			p.group(prm)
			continue
		}
		rest = append(rest, prm)
	}
	if typ == "" && typePos.Line != 0 {
		p.errs.Add(config.Errorf(typePos, "Type", "empty door type"))
		return
	}
	if typePos.Line == 0 {
		typ = inferType(rest)
	}
	if typ != "" && typ != "sequence" {
		p.door.Type, p.door.Params = typ, rest
		return
	}
	saved := p.pos
	for _, prm := range rest {
		p.pos = prm.Pos
		p.doorDirective(prm.Key, prm.Value)
	}
	p.pos = saved
	if p.nftPos.Line != 0 && p.door.CmdTimeout < time.Second {
		// An element without a timeout would stay for ever: nftables
		// reads timeout 0 as "none".
		p.errs.Add(config.Errorf(p.nftPos, "Cmd_Timeout", "a door with an nftables set needs a Cmd_Timeout of at least 1 second (the element's timeout)"))
	}
	if p.door.Rotating != nil {
		p.endRotating()
	}
	if !p.hasSeq {
		p.errs.Add(config.Errorf(p.door.Pos, "", "section %q has an empty knock sequence", p.door.Name))
	}
}

// group reads a door's Group line: a name that goes into Redis keys and
// channels as it is, so only letters, digits and ".-_".
func (p *parser) group(prm config.Param) {
	if prm.Value == "" || len(prm.Value) > maxGroup || strings.Trim(prm.Value, groupChars) != "" {
		p.errs.Add(config.Errorf(prm.Pos, "Group", "%q is not a group name (1 to %d of A-Z a-z 0-9 . - _)", prm.Value, maxGroup))
		return
	}
	p.door.Group, p.door.GroupPos = prm.Value, prm.Pos
}

// maxGroup bounds a group name; groupChars are the bytes it may hold.
const (
	maxGroup   = 64
	groupChars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.-_"
)

// endRotating checks a rotating door as a whole, once all its lines are
// read: a door has one source of sequences, and a port set that makes
// its sequences hard to guess.
func (p *parser) endRotating() {
	r := p.door.Rotating
	p.hasSeq = true // whatever is missing is said below, more precisely
	switch {
	case r.Secret == "":
		if r.SecretPos.Line == 0 { // an empty one was reported already
			p.errs.Add(config.Errorf(p.rotPos, "", "a rotating door needs Rotating_Secret (the file holding its secret)"))
		}
		return
	case p.seqPos.Line != 0:
		p.errs.Add(config.Errorf(p.seqPos, "", "a door has either a fixed sequence (Sequence, One_Time_Sequences) or Rotating_Secret, not both"))
		return
	case r.Ports.Len() == 0:
		if p.portsPos.Line == 0 { // a bad Rotating_Ports line was reported already
			p.errs.Add(config.Errorf(r.SecretPos, "", "a rotating door needs Rotating_Ports (the ports its knocks are drawn from)"))
		}
		return
	}
	pos := p.portsPos
	switch n, m := r.Length, r.Ports.Len(); {
	case m < n:
		p.errs.Add(config.Errorf(pos, "Rotating_Ports", "%d ports cannot hold %d distinct knocks (Rotating_Length)", m, n))
	case r.Mode == rotating.Both && 2*m > 1<<16:
		p.errs.Add(config.Errorf(pos, "Rotating_Ports", "%d ports: with Rotating_Protocol = both at most %d", m, 1<<15))
	case math.Pow(float64(m), float64(n)) < minGuesses:
		p.errs.Add(config.Errorf(pos, "Rotating_Ports", "%d knocks among %d ports make only %.0f sequences, too easy to guess (want at least 2^32: more ports or a longer Rotating_Length)", n, m, math.Pow(float64(m), float64(n))))
	}
}

// Key is a directive the parser accepts: its canonical spelling and the
// other spellings knockd and its forks accept for it.
type Key struct {
	Name    string
	Aliases []string
}

// optionKeys and doorKeys are what the parser accepts, in [options] and in
// a sequence door; the parser looks keys up here, so these lists are the
// reader and a document can be checked against them.
var (
	optionKeys = []Key{
		{Name: "UseSyslog"}, {Name: "LogFile"}, {Name: "PidFile"}, {Name: "Interface"},
		{Name: "StateDir"}, {Name: "LogTail"}, {Name: "StateCache"}, {Name: "MaxSources"},
		{Name: "LogRate"}, {Name: "Command_Timeout"}, {Name: "Metrics"},
		{Name: "State"}, {Name: "State_Password_File"}, {Name: "State_Prefix"},
		{Name: "State_Sentinel"}, {Name: "State_Sentinel_Master"},
	}
	doorKeys = []Key{
		{Name: "Sequence"},
		{Name: "One_Time_Sequences"},
		{Name: "Seq_Timeout", Aliases: []string{"Timeout"}},
		{Name: "TCPFlags"},
		{Name: "Start_Command", Aliases: []string{"Command"}},
		{Name: "Start_Command_6", Aliases: []string{"Command_6"}},
		{Name: "Stop_Command"},
		{Name: "Stop_Command_6"},
		{Name: "Cmd_Timeout"},
		{Name: "Target"},
		{Name: "Cooldown", Aliases: []string{"Seq_Cooldown"}},
		{Name: "Nft_Set"},
		{Name: "Nft_Set_6"},
		{Name: "Rotating_Secret"},
		{Name: "Rotating_Ports"},
		{Name: "Rotating_Length"},
		{Name: "Rotating_Period"},
		{Name: "Rotating_Skew"},
		{Name: "Rotating_Protocol"},
	}
)

// OptionKeys are the keys the parser accepts in [options].
func OptionKeys() []Key { return cloneKeys(optionKeys) }

// DoorKeys are the directives the parser accepts in a sequence door,
// besides Type, which every section may have.
func DoorKeys() []Key { return cloneKeys(doorKeys) }

func cloneKeys(ks []Key) []Key {
	out := make([]Key, len(ks))
	for i, k := range ks {
		out[i] = Key{Name: k.Name, Aliases: slices.Clone(k.Aliases)}
	}
	return out
}

// optionKey returns the canonical name of an [options] key given in upper
// case, or "".
func optionKey(up string) string { return lookupKey(optionKeys, up) }

// doorKey returns the canonical name of a door key or alias given in upper
// case, or "".
func doorKey(up string) string { return lookupKey(doorKeys, up) }

// lookupKey compares with asciiUpper, as the key was folded: strings.ToUpper
// would fold more than knockd's toupper does.
func lookupKey(ks []Key, up string) string {
	for _, k := range ks {
		if asciiUpper(k.Name) == up {
			return k.Name
		}
		for _, a := range k.Aliases {
			if asciiUpper(a) == up {
				return k.Name
			}
		}
	}
	return ""
}

func (p *parser) option(key, val string) {
	up := asciiUpper(key)
	canon := optionKey(up)
	if canon == "" {
		if doorKey(up) != "" {
			p.errorf(key, "door directive not allowed in [options]")
		} else {
			p.errorf(key, "unknown option")
		}
		return
	}
	o := &p.cfg.Options
	o.Pos[canon] = p.pos
	switch canon {
	case "UseSyslog":
		// knockd only knows the bare word; a value is our extension, and
		// it must be a recognisable boolean so "UseSyslog = off" is not
		// read as "on".
		b, ok := parseBool(val)
		if !ok {
			p.errorf(key, "%q is not a boolean (use yes or no)", val)
			return
		}
		o.UseSyslog = b
	case "LogFile", "PidFile", "StateDir", "LogTail", "StateCache":
		if val == "" {
			p.errorf(key, "empty path")
			return
		}
		switch canon {
		case "LogFile":
			o.LogFile = val
		case "PidFile":
			o.PidFile = val
		case "LogTail":
			o.LogTail = val
		case "StateCache":
			o.StateCache = val
		default:
			o.StateDir = val
		}
	case "MaxSources", "LogRate":
		n, err := strconv.Atoi(val)
		if err != nil || n < 0 || canon == "MaxSources" && n == 0 || n > 1<<24 {
			p.errorf(key, "%q is not a positive whole number", val)
			return
		}
		if canon == "MaxSources" {
			o.MaxSources = n
		} else {
			o.LogRate = n
		}
	case "Command_Timeout":
		t, err := parseSeconds(val)
		if err == nil && t <= 0 {
			err = fmt.Errorf("%q: a command needs at least a second", val)
		}
		if err != nil {
			p.errorf(key, "%v", err)
			return
		}
		o.CommandTimeout = t
	case "Metrics":
		if err := checkMetricsAddr(val); err != nil {
			p.errorf(key, "%v", err)
			return
		}
		o.Metrics = val
	case "State", "State_Password_File", "State_Prefix", "State_Sentinel", "State_Sentinel_Master":
		if err := p.stateOption(canon, val); err != nil {
			p.errorf(key, "%v", err)
		}
	case "Interface":
		ifs, err := parseInterfaces(val)
		if err != nil {
			p.errorf(key, "%v", err)
			return
		}
		o.Interfaces = ifs
	}
}

func (p *parser) doorDirective(key, val string) {
	up := asciiUpper(key)
	canon := doorKey(up)
	if canon == "" {
		switch {
		case optionKey(up) != "" && p.lookalike:
			p.errorf(key, "not a door directive (did you mean [options] in lowercase?)")
		case optionKey(up) != "":
			p.errorf(key, "not a door directive (it belongs in [options])")
		default:
			p.errorf(key, "unknown directive")
		}
		return
	}
	d := p.door
	if strings.HasPrefix(canon, "Rotating_") {
		p.rotating(canon, key, val)
		return
	}
	switch canon {
	case "Sequence":
		p.hasSeq, p.seqPos = true, p.pos
		seq, err := sequence.Parse(val)
		if err != nil {
			p.errorf(key, "%v", err)
			return
		}
		d.Sequence = seq
	case "One_Time_Sequences":
		p.hasSeq, p.seqPos = true, p.pos
		if val == "" {
			p.errorf(key, "empty path")
			return
		}
		d.OneTimeSequences = val
	case "Seq_Timeout", "Cmd_Timeout", "Cooldown":
		t, err := parseSeconds(val)
		if err != nil {
			p.errorf(key, "%v", err)
			return
		}
		switch canon {
		case "Seq_Timeout":
			d.SeqTimeout = t
		case "Cmd_Timeout":
			d.CmdTimeout = t
		default:
			d.Cooldown = t
		}
	case "TCPFlags":
		// knockd accumulates tcpflags lines into one filter.
		d.HasTCPFlags = true
		fl, err := parseTCPFlags(d.TCPFlags, val)
		if err != nil {
			p.errorf(key, "%v", err)
			return
		}
		d.TCPFlags = fl
	case "Start_Command":
		d.StartCommand = val
	case "Start_Command_6":
		d.StartCommand6 = &val
	case "Stop_Command":
		d.StopCommand = val
	case "Stop_Command_6":
		d.StopCommand6 = &val
	case "Nft_Set", "Nft_Set_6":
		r, err := parseNftSet(val, canon == "Nft_Set_6")
		if err != nil {
			p.errorf(key, "%v", err)
			return
		}
		if canon == "Nft_Set" {
			d.NftSet = r
		} else {
			d.NftSet6 = r
		}
		p.nftPos = p.pos
	case "Target":
		t, err := parseTarget(val)
		if err != nil {
			p.errorf(key, "%v", err)
			return
		}
		d.Target = t
	}
}

// rotating reads a Rotating_* directive (docs/rotating.md).
func (p *parser) rotating(canon, key, val string) {
	d := p.door
	if d.Rotating == nil {
		d.Rotating = &Rotating{Period: rotating.DefaultPeriod, Length: rotating.DefaultLength, Skew: 1}
		p.rotPos = p.pos
	}
	r := d.Rotating
	whole := func(lo, hi int, unit string) (int, bool) {
		n, err := strconv.Atoi(val)
		if err != nil || n < lo || n > hi {
			p.errorf(key, "%q is not a whole number of %s from %d to %d", val, unit, lo, hi)
			return 0, false
		}
		return n, true
	}
	switch canon {
	case "Rotating_Secret":
		p.hasSeq, r.SecretPos = true, p.pos
		if val == "" {
			p.errorf(key, "empty path")
			return
		}
		r.Secret = val
	case "Rotating_Ports":
		p.portsPos = p.pos
		ports, err := rotating.ParsePorts(val)
		if err != nil {
			p.errorf(key, "%v", err)
			return
		}
		r.Ports = ports
	case "Rotating_Length":
		if n, ok := whole(1, MaxSequence, "knocks"); ok {
			r.Length = n
		}
	case "Rotating_Period":
		if n, ok := whole(1, 86400, "seconds"); ok {
			r.Period = n
		}
	case "Rotating_Skew":
		if n, ok := whole(0, MaxSkew, "windows"); ok {
			r.Skew = n
		}
	case "Rotating_Protocol":
		m, err := rotating.ParseMode(val)
		if err != nil {
			p.errorf(key, "%v", err)
			return
		}
		r.Mode = m
	}
}

// inferType names the protocol of a door without a Type line from a
// directive only that protocol has, so a doorman door copied from
// doormand.cf keys needs no Type line; "" is a knockd door.
func inferType(params []config.Param) string {
	for _, prm := range params {
		switch strings.ReplaceAll(asciiUpper(prm.Key), "-", "_") {
		case "GUESTLIST", "FIREWALL_ADD", "FIREWALL_DEL":
			return "doorman"
		case "PORTSPAN":
			return "knockdaemon"
		}
	}
	return ""
}

// parseSeconds is strict where knockd's atoi is not: "1o" would be 1 second
// and "abc" 0 (every multi-port knock then fails), "-5" a negative timeout.
func parseSeconds(s string) (time.Duration, error) {
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return 0, fmt.Errorf("%q is not a whole number of seconds", s)
	}
	if err != nil || n > math.MaxInt64/uint64(time.Second) {
		return 0, fmt.Errorf("%q seconds is too large", s)
	}
	return time.Duration(n) * time.Second, nil
}

// tcpFlagBits are the TCP header bits in header order, which is also the
// order Dump prints them in.
var tcpFlagBits = [...]struct {
	name string
	bit  proto.TCPFlags
}{
	{"FIN", proto.FIN}, {"SYN", proto.SYN}, {"RST", proto.RST}, {"PSH", proto.PSH}, {"ACK", proto.ACK}, {"URG", proto.URG},
}

// ParseTCPFlags reads a TCPFlags value ("syn,!ack") with knockd's syntax,
// for protocols whose doors keep their directives raw (port-span).
func ParseTCPFlags(val string) (Flags, error) { return parseTCPFlags(Flags{}, val) }

// parseTCPFlags adds val's tokens to fl. Unlike knockd, tokens are trimmed:
// knockd rejects "syn, ack" with `unrecognized flag " ACK"`, a surprise that
// buys nothing, and accepting it breaks no valid knockd.conf.
func parseTCPFlags(fl Flags, val string) (Flags, error) {
	for tok := range strings.SplitSeq(val, ",") {
		tok = strings.Trim(tok, space)
		name, not := strings.CutPrefix(asciiUpper(tok), "!")
		var bit proto.TCPFlags
		for _, f := range tcpFlagBits {
			if f.name == name {
				bit = f.bit
			}
		}
		if bit == 0 {
			return fl, fmt.Errorf("unrecognized flag %q", tok)
		}
		// A later token for the same flag overwrites it, as in knockd.
		if not {
			fl.Set &^= bit
			fl.Clear |= bit
		} else {
			fl.Clear &^= bit
			fl.Set |= bit
		}
	}
	return fl, nil
}

// parseNftSet reads "<family> <table> <set> [port]" (formats/nftset) and
// checks the family can hold the addresses the key is for: an ip6 table
// has no IPv4 addresses, an ip table no IPv6 ones.
func parseNftSet(val string, v6 bool) (nftset.Ref, error) {
	r, err := nftset.Parse(val)
	switch {
	case err != nil:
		return r, err
	case v6 && !r.For6():
		return nftset.Ref{}, fmt.Errorf("%q: an ip table holds no IPv6 addresses (use ip6 or inet)", val)
	case !v6 && !r.For4():
		return nftset.Ref{}, fmt.Errorf("%q: an ip6 table holds no IPv4 addresses (use ip or inet; IPv6 sets go in Nft_Set_6)", val)
	}
	return r, nil
}

// parseTarget insists on an IP address because knockd compares Target with
// the packet's destination as a string: a host name, a CIDR or a zone never
// matches, so the door would silently never open. The canonical form is
// stored so "2001:DB8::0:1" matches as the admin meant.
func parseTarget(s string) (string, error) {
	if s == "" {
		return "", errors.New("empty address")
	}
	if strings.Contains(s, "/") {
		return "", fmt.Errorf("%q is a prefix, not an IP address", s)
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return "", fmt.Errorf("%q is not an IP address (a host name would never match)", s)
	}
	if a.Zone() != "" {
		return "", fmt.Errorf("%q has a zone, which would never match", s)
	}
	return a.String(), nil
}

// parseInterfaces accepts the comma list of knockd PR #58 (and "any" of
// PR #84); a single name is the knockd case.
func parseInterfaces(s string) ([]string, error) {
	if s == "" {
		return nil, errors.New("empty interface name")
	}
	var out []string
	for name := range strings.SplitSeq(s, ",") {
		name = strings.Trim(name, space)
		switch {
		case name == "":
			return nil, errors.New("empty interface name in list")
		case len(name) > maxIfName:
			return nil, fmt.Errorf("interface name %q is longer than %d bytes", name, maxIfName)
		case strings.ContainsAny(name, space+"/"):
			return nil, fmt.Errorf("interface name %q contains a space or '/' (separate names with ',')", name)
		}
		out = append(out, name)
	}
	return out, nil
}

func parseBool(s string) (v, ok bool) {
	switch asciiUpper(s) {
	case "YES", "TRUE", "ON", "1":
		return true, true
	case "NO", "FALSE", "OFF", "0":
		return false, true
	}
	return false, false
}

// asciiUpper uppercases ASCII only, like knockd's toupper in the C locale.
// strings.ToUpper would map "ſequence" (long s) to "SEQUENCE".
func asciiUpper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			b[i] = c - ('a' - 'A')
		}
	}
	return string(b)
}
