package knockdaemon

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/doorward/doorward/config"
	"github.com/doorward/doorward/config/knockd"
	"github.com/doorward/doorward/formats/expr"
	"github.com/doorward/doorward/formats/fwlog"
)

// Result is a migrated config: the INI text, and the notes it carries as
// "# migrate:" comments, also listed for the terminal.
type Result struct {
	INI   string
	Notes []string
}

// DoorName is the section name of the port-span door a knockdaemon.conf
// becomes; actions name it in Door.
const DoorName = "knockdaemon"

// MigrateFile reads a legacy config and migrates it: a doormand.cf (see
// MigrateDoormand) or else a knockdaemon.conf (MigrateKnockdaemon), its
// includes resolved by OSOpener. A file that cannot be read at all is an
// error; anything that cannot be carried over is a note.
func MigrateFile(path string) (*Result, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	if IsDoormandCF(src) {
		return MigrateDoormand(path, src), nil
	}
	return MigrateKnockdaemon(path, src, OSOpener)
}

// MigrateKnockdaemon turns a knockdaemon.conf (../shared/specs/knockdaemon.md
// §10) into Doorward's INI:
//
//   - runmode = file: [options] LogTail = logfile and a Type = logformat
//     section (the built-in iptables parser when the <logformat> is the
//     stock kernel one, else its expressions); runmode = network (the
//     default): [options] Interface, and the <ethfilter> as the door's
//     Protocol and TCPFlags;
//   - knock, portspan, encrypt, key, cipher, iv: one Type = knockdaemon door,
//     named knockdaemon, with every width and mode written out;
//   - each <action>: a Type = action section (Condition, its templates'
//     state and system lines in order, Delay in seconds, Use);
//   - statecache with usecache = yes: [options] StateCache.
//
// Conditions, statements and commands are checked with formats/expr, the
// language Doorward runs them in; an action with a part that does not
// carry over is written with Use = no and a note, never half-migrated. It
// returns an error only when the file cannot be read as Config::General
// (then nothing is printed).
func MigrateKnockdaemon(name string, src []byte, open Opener) (*Result, error) {
	tree, err := Parse(name, src, open)
	if err != nil {
		return nil, err
	}
	m := &migration{tree: tree, sections: map[string]bool{DoorName: true, "options": true}}
	m.run(name)
	return &Result{INI: m.out.String(), Notes: m.notes}, nil
}

type migration struct {
	tree     *Tree
	out      strings.Builder
	notes    []string
	sections map[string]bool // section names used
}

// note writes a "# migrate:" comment and keeps it for the terminal.
func (m *migration) note(pos config.Pos, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if pos.File != "" {
		msg = pos.String() + ": " + msg
	}
	m.notes = append(m.notes, msg)
	for i, line := range strings.Split(msg, "\n") {
		if i == 0 {
			fmt.Fprintf(&m.out, "# migrate: %s\n", line)
		} else {
			fmt.Fprintf(&m.out, "#          %s\n", line)
		}
	}
}

func (m *migration) comment(format string, args ...any) {
	for _, l := range strings.Split(fmt.Sprintf(format, args...), "\n") {
		fmt.Fprintf(&m.out, "# %s\n", l)
	}
}

func (m *migration) section(name string) {
	fmt.Fprintf(&m.out, "\n[%s]\n", name)
}

// kv writes one directive. A value the INI dialect cannot hold (a line
// break, from a here-doc; a line over knockd's 4095 bytes) is written as a
// comment with a note instead, so nothing can break the INI's structure.
func (m *migration) kv(key, value string) {
	if err := iniSafe(value); err != nil {
		m.note(config.Pos{}, "the value of %s %v: set it by hand", key, err)
		for _, l := range strings.Split(value, "\n") {
			fmt.Fprintf(&m.out, "#\t%-12s = %.200s\n", key, l)
			key = ""
		}
		return
	}
	fmt.Fprintf(&m.out, "\t%-12s = %s\n", key, value)
}

func iniSafe(v string) error {
	switch {
	case strings.ContainsAny(v, "\n\r"):
		return errors.New("spans several lines, which an INI value cannot")
	case len(v) > 4000 || strings.ContainsRune(v, 0):
		return errors.New("is longer than an INI line may be (4095 bytes), or holds a NUL")
	}
	return nil
}

// known top-level directives and blocks of knockdaemon.conf.
var topKeys = []string{"runmode", "logfile", "fileinterval", "uselogformat", "interface", "snapshotsize",
	"useethfilter", "knock", "portspan", "encrypt", "key", "cipher", "iv", "statecache", "usecache"}

var topBlocks = []string{"logformat", "ethfilter", "actions", "action", "template", "templates"}

// scalar returns the last value of a directive that should be given once,
// noting repeats (Config::General made a list of them, which the Perl
// would have read as "ARRAY(0x…)").
func (m *migration) scalar(n *Node, key string) (Item, bool) {
	vs := n.Values(key)
	if len(vs) == 0 {
		return Item{}, false
	}
	if len(vs) > 1 {
		m.note(vs[len(vs)-1].Pos, "%s given %d times (first at line %d); the last is used", key, len(vs), vs[0].Pos.Line)
	}
	return vs[len(vs)-1], true
}

func (m *migration) run(name string) {
	root := m.tree.Root
	fmt.Fprintf(&m.out, "# Migrated from the knockdaemon config %s by knockd --migrate.\n", name)
	m.comment("Lines starting with \"# migrate:\" say what could not be carried over unchanged;")
	m.comment("read them, then check the result with: knockd --check -c FILE")
	for _, w := range m.tree.Warnings {
		m.note(w.Pos, "%v", w.Err)
	}
	for _, it := range root.Items {
		if it.Block != nil {
			if !slices.Contains(topBlocks, it.Block.Name) {
				m.note(it.Pos, "<%s> is not a knockdaemon block: not carried over", it.Block.Name)
			}
			continue
		}
		if !slices.Contains(topKeys, it.Key) {
			m.note(it.Pos, "%s = %s: not a knockdaemon directive; not carried over", it.Key, it.Value)
		}
	}

	mode := "network"
	if rm, ok := m.scalar(root, "runmode"); ok {
		switch v := strings.ToLower(rm.Value); v {
		case "file", "network":
			mode = v
		default:
			m.note(rm.Pos, "runmode %q is neither file nor network; network assumed", rm.Value)
		}
	} else {
		m.note(root.Pos, "no runmode: network assumed (the Perl's documented default mode)")
	}

	m.options(root, mode)
	if mode == "file" {
		m.logformat(root)
	} else if lf := root.Blocks("logformat"); len(lf) > 0 {
		m.note(lf[0].Pos, "<logformat> is only used with runmode = file: not carried over")
	}
	m.door(root, mode)
	m.actions(root)
}

func (m *migration) options(root *Node, mode string) {
	m.section("options")
	switch mode {
	case "file":
		if lf, ok := m.scalar(root, "logfile"); ok && lf.Value != "" {
			m.comment("runmode = file: the firewall log is followed as a packet source (%s)", lf.Pos)
			m.kv("LogTail", lf.Value)
		} else {
			m.note(root.Pos, "runmode = file without a logfile: set LogTail to the firewall log")
		}
		if fi, ok := m.scalar(root, "fileinterval"); ok {
			m.note(fi.Pos, "fileinterval = %s: not needed, the log is followed with inotify and a line is read as soon as it is written", fi.Value)
		}
		if ifc, ok := m.scalar(root, "interface"); ok {
			m.note(ifc.Pos, "interface = %s is not used in file mode; add Interface = %s here to capture on it as well", ifc.Value, ifc.Value)
		}
	case "network":
		if ifc, ok := m.scalar(root, "interface"); ok && ifc.Value != "" {
			m.comment("runmode = network (%s)", ifc.Pos)
			m.kv("Interface", ifc.Value)
		} else {
			m.note(root.Pos, "no interface: knockd captures on eth0 unless -i or Interface says otherwise")
		}
		if ss, ok := m.scalar(root, "snapshotsize"); ok {
			m.note(ss.Pos, "snapshotsize = %s: not needed, Doorward captures the headers it decodes", ss.Value)
		}
		if lf, ok := m.scalar(root, "logfile"); ok {
			m.note(lf.Pos, "logfile = %s is the input of runmode = file only: not carried over", lf.Value)
		}
	}
	sc, hasSC := m.scalar(root, "statecache")
	uc, hasUC := m.scalar(root, "usecache")
	use := hasUC && isYes(uc.Value)
	switch {
	case hasSC && use:
		m.comment("statecache with usecache = yes (%s)", sc.Pos)
		cache := sc.Value
		if moved, ok := underStateDir(cache); ok {
			m.comment("%s is in a directory anyone can write, where a planted file or link\n"+
				"would be loaded: the cache moves under the state directory (%s),\n"+
				"as knockd refuses a state file in a directory others can write", cache, knockd.DefaultStateDir)
			cache = moved
		}
		m.kv("StateCache", cache)
		m.note(sc.Pos, "the Perl cache's format is unknown, so %s is not imported: state starts empty.\nPoint StateCache at a new file if the old one is still there", sc.Value)
	case hasSC:
		m.note(sc.Pos, "statecache = %s without usecache = yes: state is kept in memory only, as before", sc.Value)
	case use:
		m.note(uc.Pos, "usecache = yes without a statecache: state is kept in memory only")
	}
}

// tempDirs are the world-writable directories a Perl default (statecache =
// /tmp/portknock.cache) put state in.
var tempDirs = []string{"/tmp/", "/var/tmp/", "/dev/shm/"}

// underStateDir returns where a state file under a temp directory goes
// instead: the same name in knockd's default state directory.
func underStateDir(path string) (string, bool) {
	clean := filepath.Clean(path)
	for _, d := range tempDirs {
		if strings.HasPrefix(clean, d) {
			return filepath.Join(knockd.DefaultStateDir, filepath.Base(clean)), true
		}
	}
	return "", false
}

func isYes(v string) bool {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "yes", "1", "true", "on":
		return true
	}
	return false
}

// pick returns the block of kind named by the selecting directive (or the
// only one), and the others, which the caller notes as unused (after its
// own lines, so the notes sit in its section).
func (m *migration) pick(root *Node, kind, use string) (chosen *Node, unused func()) {
	blocks := root.Blocks(kind)
	sel, hasSel := m.scalar(root, use)
	switch {
	case hasSel:
		for _, b := range blocks {
			if b.Label == sel.Value {
				chosen = b
			}
		}
		if chosen == nil {
			m.note(sel.Pos, "%s = %s names no <%s %s> block", use, sel.Value, kind, sel.Value)
		}
	case len(blocks) == 1:
		chosen = blocks[0]
	case len(blocks) > 1:
		chosen = blocks[0]
		m.note(blocks[0].Pos, "several <%s> blocks and no %s: the first is used", kind, use)
	}
	return chosen, func() {
		for _, b := range blocks {
			if b != chosen {
				m.note(b.Pos, "<%s %s> is not used (%s): not carried over", kind, b.Label, use)
			}
		}
	}
}

// stock maps each legacy <logformat> key to the kernel key it reads in the
// stock iptables format.
var stock = []struct{ legacy, kernel string }{
	{"interface", "IN="}, {"protocol", "PROTO="}, {"ipserver", "DST="}, {"ipclient", "SRC="},
	{"port", "DPT="}, {"sport", "SPT="},
}

// logformat writes the chosen <logformat> as a Type = logformat section.
func (m *migration) logformat(root *Node) {
	lf, unused := m.pick(root, "logformat", "uselogformat")
	defer unused()
	if lf == nil {
		m.note(root.Pos, "no <logformat>: the built-in iptables format is used (it reads the kernel's LOG and nftables log lines)")
		return
	}
	name := m.unique(cmp.Or(lf.Label, "logformat"))
	keys := []string{"required", "interface", "protocol", "ipserver", "ipclient", "port", "sport", "flags", "seq"}
	vals := map[string]Item{}
	for _, it := range lf.Items {
		if it.Block != nil || !slices.Contains(keys, it.Key) {
			m.note(it.Pos, "%s in <logformat>: not a log format key; not carried over", it.Key)
			continue
		}
		if _, dup := vals[it.Key]; dup {
			m.note(it.Pos, "%s given twice in <logformat>; the last is used", it.Key)
		}
		vals[it.Key] = it
	}
	m.section(name)
	m.comment("from <logformat %s> (%s)", lf.Label, lf.Pos)
	m.kv("Type", "logformat")
	if isStock(vals) {
		m.comment("the stock kernel LOG format: read by the built-in parser (IPv4 and IPv6, TCP flags, no regexps)")
		m.kv("Format", "iptables")
		if r, ok := vals["required"]; ok {
			lit, _ := literal(r.Value)
			m.kv("Required", lit)
		}
		return
	}
	m.kv("Format", "regex")
	canon := map[string]string{"required": "Required", "interface": "Interface", "protocol": "Protocol", "ipserver": "IPServer",
		"ipclient": "IPClient", "port": "Port", "sport": "SPort", "flags": "Flags", "seq": "Seq"}
	for _, k := range keys {
		it, ok := vals[k]
		if !ok {
			continue
		}
		v := edgeSpaces(it.Value)
		if _, err := fwlog.CompilePerl(v); err != nil {
			m.note(it.Pos, "%s: %v", k, err)
			m.comment("%s = %s", canon[k], v)
			continue
		}
		if err := iniSafe(v); err != nil {
			m.note(it.Pos, "%s %v", k, err)
			continue
		}
		m.kv(canon[k], v)
	}
}

// isStock reports whether a <logformat> reads the kernel's LOG line in the
// stock way: every field by its kernel key and a capture group, and any
// Required plain text.
func isStock(vals map[string]Item) bool {
	if _, ok := vals["ipclient"]; !ok {
		return false
	}
	if _, ok := vals["port"]; !ok {
		return false
	}
	for k, it := range vals {
		switch k {
		case "required":
			if _, ok := literal(it.Value); !ok {
				return false
			}
			continue
		case "flags", "seq":
			return false
		}
		want := ""
		for _, s := range stock {
			if s.legacy == k {
				want = s.kernel
			}
		}
		v := strings.TrimPrefix(strings.TrimPrefix(it.Value, `\b`), " ")
		rest, ok := strings.CutPrefix(v, want)
		if !ok || !strings.HasPrefix(rest, "(") {
			return false
		}
	}
	return true
}

// literal returns the text a regexp matches when it is plain text.
func literal(expr string) (string, bool) {
	re, err := fwlog.CompilePerl(expr)
	if err != nil {
		return "", false
	}
	lit, complete := re.LiteralPrefix()
	return lit, complete && strings.TrimSpace(lit) == lit && lit != ""
}

// edgeSpaces protects blanks at the ends of an expression, which an INI
// value would lose (only a quoted legacy value can have them).
func edgeSpaces(v string) string {
	t := strings.TrimLeft(v, " ")
	v = strings.Repeat(`\x20`, len(v)-len(t)) + t
	t = strings.TrimRight(v, " ")
	return t + strings.Repeat(`\x20`, len(v)-len(t))
}

// unique returns a section name not used yet: want, or want_2, want_3…
func (m *migration) unique(want string) string {
	base := strings.NewReplacer("[", "(", "]", ")").Replace(want)
	name := base
	for i := 2; m.sections[name]; i++ {
		name = fmt.Sprintf("%s_%d", base, i)
	}
	m.sections[name] = true
	return name
}

// door writes the one port-span door.
func (m *migration) door(root *Node, mode string) {
	m.section(DoorName)
	m.comment("knock, portspan, encrypt, key, cipher, iv; every width and mode written out")
	m.kv("Type", "knockdaemon")
	if ps, ok := m.scalar(root, "portspan"); ok {
		m.kv("Portspan", ps.Value)
	} else {
		m.note(root.Pos, "no portspan: the door will not load until Portspan is set")
	}
	if k, ok := m.scalar(root, "knock"); ok {
		m.kv("Knock", k.Value)
	} else {
		m.note(root.Pos, "no knock: the door will not load until Knock (the record's fields) is set")
	}
	encrypt := true
	if e, ok := m.scalar(root, "encrypt"); ok {
		switch strings.ToLower(e.Value) {
		case "yes", "1":
		case "no", "0":
			encrypt = false
		default:
			m.note(e.Pos, "encrypt = %s is neither yes nor no; yes assumed", e.Value)
		}
	} else {
		m.note(root.Pos, "no encrypt: yes assumed")
	}
	if !encrypt {
		m.kv("Encrypt", "no")
		for _, k := range []string{"key", "cipher", "iv"} {
			if it, ok := m.scalar(root, k); ok {
				m.note(it.Pos, "%s is not used with encrypt = no", k)
			}
		}
	} else {
		m.kv("Encrypt", "yes")
		cipher := "blowfish"
		if c, ok := m.scalar(root, "cipher"); ok {
			switch strings.ToLower(strings.TrimPrefix(c.Value, "Crypt::")) {
			case "blowfish":
			default:
				cipher = c.Value
				m.note(c.Pos, "cipher %s is not supported (Doorward speaks Blowfish only): the door will not load.\nSwitch the clients to Blowfish, or keep the Perl daemon for them", c.Value)
			}
		}
		m.kv("Cipher", cipher)
		if k, ok := m.scalar(root, "key"); ok && k.Value != "" {
			if err := iniSafe(k.Value); err != nil {
				m.note(k.Pos, "key %v: set Key by hand", err)
			} else {
				m.kv("Key", k.Value)
			}
		} else {
			m.note(root.Pos, "no key: the door will not load until Key (the passphrase) is set")
		}
		iv, hasIV := m.scalar(root, "iv")
		switch {
		case !hasIV || isYes(iv.Value):
			m.comment("iv = yes: each knock starts with \"RandomIV\" and its IV (Crypt::CBC 2.12)")
			m.comment("A knockclient on Crypt::CBC 2.17 (2006) or later sends \"Salted__\" instead:")
			m.comment("then set Header = magic (each such knock costs a key derivation)")
			m.kv("IV", "header")
		case strings.EqualFold(iv.Value, "no") || iv.Value == "0":
			m.note(iv.Pos, "iv = no: both sides share a fixed IV the Perl never documented; 8 zero bytes is assumed.\nIf knocks do not decode, recover it from one captured knock (docs/knockdaemon-file-mode.md).\nThe same record is then the same ciphertext, which the spent store refuses as a replay:\nclients must vary FLAG0 or TIME between knocks (or set Spent_Knocks = 0, and replays open)")
			m.kv("IV", "no")
			m.kv("IV_Hex", "0000000000000000")
		default:
			m.note(iv.Pos, "iv = %s is neither yes nor no; yes assumed", iv.Value)
			m.kv("IV", "header")
		}
	}
	m.comment("PORT is 2 bytes since v0.24, 1 byte before: auto takes either, by the record's length")
	m.kv("Port_Width", "auto")
	m.kv("Time_Width", "1")
	m.comment("v0.24 fixed the checksum to mod 256; write 256,255 to accept older clients too")
	m.kv("Checksum_Mod", "256")
	m.kv("Span_Tail", "auto")
	if mode == "network" {
		m.ethfilter(root)
	} else if ef := root.Blocks("ethfilter"); len(ef) > 0 {
		m.note(ef[0].Pos, "<ethfilter> is only used with runmode = network: not carried over")
	}
}

// TCP flag names of Perl's NetPacket::TCP, with their bits.
var netpacketFlags = []struct {
	name string
	bit  uint8
}{{"FIN", 1}, {"SYN", 2}, {"RST", 4}, {"PSH", 8}, {"ACK", 16}, {"URG", 32}}

// ethfilter maps the chosen <ethfilter> onto the door's Protocol and
// TCPFlags, noting what has no counterpart.
func (m *migration) ethfilter(root *Node) {
	ef, unused := m.pick(root, "ethfilter", "useethfilter")
	defer unused()
	if ef == nil {
		return
	}
	m.comment("from <ethfilter %s> (%s)", ef.Label, ef.Pos)
	for _, it := range ef.Items {
		if it.Block != nil {
			m.note(it.Pos, "<%s> inside <ethfilter>: not carried over", it.Key)
			continue
		}
		v := strings.TrimSpace(it.Value)
		switch it.Key {
		case "proto":
			switch strings.ToUpper(v) {
			case "IP_PROTO_TCP", "6":
				m.kv("Protocol", "tcp")
			case "IP_PROTO_UDP", "17":
				m.kv("Protocol", "udp")
			default:
				m.note(it.Pos, "proto = %s: port-span knocks are TCP or UDP; tcp kept", v)
			}
		case "flags":
			bits, ok := flagBits(v)
			switch {
			case !ok:
				m.note(it.Pos, "flags = %s: not a NetPacket flag name or number; not carried over", v)
			case bits&(bits-1) == 0 && bits != 0:
				m.note(it.Pos, "flags = %s passed a packet when flags AND %d was non-zero, so with other flags too (SYN+ACK).\nTCPFlags = %s means the same: that flag set, the others free", v, bits, flagName(bits))
				m.kv("TCPFlags", flagName(bits))
			default:
				m.note(it.Pos, "flags = %s passed a packet with ANY of these flags (a bitwise AND); TCPFlags can only ask for all of them.\nNot carried over: the door keeps its default, SYN set", v)
			}
		case "dest_ip":
			m.note(it.Pos, "dest_ip = %s: not carried over; Doorward only sees packets to this host's own addresses", v)
		case "src_ip":
			m.note(it.Pos, "src_ip = %s: not carried over; filter senders in the firewall", v)
		case "src_port", "dest_port":
			m.note(it.Pos, "%s = %s: not carried over; the port span decides which ports are hits", it.Key, v)
		default:
			m.note(it.Pos, "%s in <ethfilter>: not a NetPacket property; not carried over", it.Key)
		}
	}
}

func flagBits(v string) (uint8, bool) {
	if n, err := strconv.ParseUint(v, 0, 8); err == nil {
		return uint8(n), n < 64
	}
	var bits uint8
	for _, w := range strings.FieldsFunc(v, func(r rune) bool { return r == '|' || r == ',' || r == '+' || r == ' ' }) {
		w = strings.TrimPrefix(strings.ToUpper(w), "TCP_")
		found := false
		for _, f := range netpacketFlags {
			if f.name == w {
				bits |= f.bit
				found = true
			}
		}
		if !found {
			return 0, false
		}
	}
	return bits, bits != 0
}

func flagName(bit uint8) string {
	for _, f := range netpacketFlags {
		if f.bit == bit {
			return strings.ToLower(f.name)
		}
	}
	return ""
}

// action is one legacy <action>, collected before writing.
type action struct {
	node *Node
	name string
}

func (m *migration) actions(root *Node) {
	templates := map[string]*Node{}
	var addTemplates func(n *Node)
	addTemplates = func(n *Node) {
		for _, t := range n.Blocks("template") {
			if t.Label == "" {
				m.note(t.Pos, "<template> without a name cannot be used by an action: not carried over")
				continue
			}
			if first, dup := templates[t.Label]; dup {
				m.note(t.Pos, "<template %s> given twice (first at line %d); the first is used", t.Label, first.Pos.Line)
				continue
			}
			templates[t.Label] = t
		}
	}
	addTemplates(root)
	for _, ts := range root.Blocks("templates") {
		addTemplates(ts)
	}

	var acts []*Node
	for _, it := range root.Items {
		switch {
		case it.Block != nil && it.Block.Name == "action":
			acts = append(acts, it.Block)
		case it.Block != nil && it.Block.Name == "actions":
			for _, in := range it.Block.Items {
				if in.Block != nil && in.Block.Name == "action" {
					acts = append(acts, in.Block)
				} else {
					m.note(in.Pos, "%s in <actions>: only <action> blocks belong there; not carried over", in.Key)
				}
			}
		}
	}
	if len(acts) == 0 {
		m.note(root.Pos, "no <action>: knocks will decode, but do nothing until an action section is added")
	}
	for i, a := range acts {
		m.action(a, m.unique(cmp.Or(a.Label, fmt.Sprintf("action%d", i+1))), templates)
	}
}

// step is one State or System line of a migrated action; bad lines are
// written as comments.
type step struct {
	key, value string
	bad        bool
}

func (m *migration) action(a *Node, name string, templates map[string]*Node) {
	var (
		lines    []string // the section's directives and comments, written at the end
		steps    int
		disabled []string // why the action is written with Use = no
	)
	add := func(format string, args ...any) { lines = append(lines, fmt.Sprintf(format, args...)) }
	commented := func(k, v string) {
		for _, l := range strings.Split(v, "\n") {
			add("#\t%-12s = %.200s", k, l)
			k = ""
		}
	}
	kv := func(k, v string) {
		if iniSafe(v) != nil {
			commented(k, v) // callers check values first; this only keeps the INI whole
			return
		}
		add("\t%-12s = %s", k, v)
	}
	fail := func(pos config.Pos, format string, args ...any) {
		disabled = append(disabled, pos.String()+": "+fmt.Sprintf(format, args...))
	}

	kv("Type", "action")
	kv("Door", DoorName)
	seen := map[string]config.Pos{}
	use := true
	for _, it := range a.Items {
		if it.Block != nil {
			fail(it.Pos, "<%s> inside <action> is not knockdaemon syntax", it.Key)
			continue
		}
		if it.Key != "template" {
			if first, dup := seen[it.Key]; dup {
				fail(it.Pos, "%s given twice (first at line %d)", it.Key, first.Line)
				continue
			}
			seen[it.Key] = it.Pos
		}
		switch it.Key {
		case "condition":
			if err := iniSafe(it.Value); err != nil {
				fail(it.Pos, "condition %v", err)
				commented("Condition", it.Value)
				continue
			}
			if _, err := expr.Parse(it.Value, it.Pos, "condition"); err != nil {
				fail(it.Pos, "%v", errText(err))
				commented("Condition", it.Value)
				continue
			}
			kv("Condition", it.Value)
			if usesCalendar(it.Value) {
				add("\t# THISHOUR, THISDAY… are calendar fields, as in the Perl: a THISHOUR key comes back")
				add("\t# the next day. Time_Buckets = absolute makes such keys expire for good.")
			}
		case "template":
			t, ok := templates[it.Value]
			if !ok {
				fail(it.Pos, "template %q is not defined", it.Value)
				add("\t# template %s: not defined", it.Value)
				continue
			}
			add("\t# template %s (%s)", t.Label, t.Pos)
			for _, s := range m.templateSteps(t, fail) {
				if s.bad {
					commented(s.key, s.value)
					continue
				}
				kv(s.key, s.value)
				steps++
			}
		case "delay":
			secs, err := minutes(it.Value)
			if err != nil {
				fail(it.Pos, "delay = %s: %v", it.Value, err)
				add("#\t# delay = %s", it.Value)
				continue
			}
			if secs != 0 {
				add("\t# delay = %s minutes", it.Value)
			}
			kv("Delay", strconv.FormatInt(secs, 10))
			if secs > 86400 {
				fail(it.Pos, "delay = %s minutes is %d s, more than Doorward's limit of a day; use cron for longer delays", it.Value, secs)
			}
		case "use":
			switch strings.ToLower(it.Value) {
			case "yes", "1":
			case "no", "0":
				use = false
			default:
				fail(it.Pos, "use = %s is neither yes nor no", it.Value)
			}
		default:
			fail(it.Pos, "%s is not an action key (condition, template, delay, use)", it.Key)
		}
	}
	label := "<action>"
	if a.Label != "" {
		label = "<action " + a.Label + ">"
	}
	if steps == 0 {
		// An action section must run something: write it all as comments.
		fmt.Fprintf(&m.out, "\n# [%s]\n", name)
		m.comment("from %s (%s)", label, a.Pos)
		for _, d := range disabled {
			m.note(config.Pos{}, "%s", d)
		}
		m.note(a.Pos, "%s has nothing left to run, so it is not carried over: its section is commented out", label)
		for _, l := range lines {
			if !strings.HasPrefix(l, "#") {
				l = "#" + l
			}
			m.out.WriteString(l + "\n")
		}
		return
	}
	m.section(name)
	m.comment("from %s (%s)", label, a.Pos)
	for _, d := range disabled {
		m.note(config.Pos{}, "%s\nso the action is written disabled (Use = no): fix it, then set Use = yes", d)
	}
	for _, l := range lines {
		m.out.WriteString(l + "\n")
	}
	if use && len(disabled) == 0 {
		m.kv("Use", "yes")
	} else {
		m.kv("Use", "no")
	}
}

// usesCalendar reports whether an expression reads a THIS* keyword.
func usesCalendar(e string) bool {
	for _, k := range []string{"THISYEAR", "THISMONTH", "THISDAY", "THISHOUR"} {
		if strings.Contains(e, k) {
			return true
		}
	}
	return false
}

// templateSteps returns a template's state and system lines in block
// order, each checked against formats/expr.
func (m *migration) templateSteps(t *Node, fail func(config.Pos, string, ...any)) []step {
	var out []step
	for _, it := range t.Items {
		if it.Block != nil {
			fail(it.Pos, "<%s> inside <template %s> is not knockdaemon syntax", it.Key, t.Label)
			continue
		}
		key := map[string]string{"state": "State", "system": "System"}[it.Key]
		if key == "" {
			fail(it.Pos, "%s in <template %s> is not a template key (state, system)", it.Key, t.Label)
			out = append(out, step{"# " + it.Key, it.Value, true})
			continue
		}
		if err := iniSafe(it.Value); err != nil {
			fail(it.Pos, "%s in <template %s> %v; put the commands in a script", it.Key, t.Label, err)
			out = append(out, step{key, it.Value, true})
			continue
		}
		var err error
		if key == "State" {
			_, err = expr.ParseStatement(it.Value, it.Pos, "state")
		} else if strings.TrimSpace(it.Value) == "" {
			err = errors.New("empty system command")
		} else {
			_, err = expr.ParseCommand(it.Value, it.Pos, "system")
		}
		if err != nil {
			fail(it.Pos, "%v", errText(err))
			out = append(out, step{key, it.Value, true})
			continue
		}
		out = append(out, step{key, it.Value, false})
	}
	return out
}

// errText is an expr error without its position, which the note already
// carries.
func errText(err error) string {
	var ce *config.Error
	if errors.As(err, &ce) {
		if ce.Key != "" {
			return ce.Key + ": " + ce.Err.Error()
		}
		return ce.Err.Error()
	}
	return err.Error()
}

// minutes converts knockdaemon's delay (minutes, as at(1) took them) to
// whole seconds.
func minutes(v string) (int64, error) {
	f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	if err != nil || f < 0 || math.IsNaN(f) || math.IsInf(f, 0) || f > 1e9 {
		return 0, errors.New("not a number of minutes")
	}
	s := f * 60
	if s != math.Trunc(s) {
		return 0, fmt.Errorf("%g minutes is not a whole number of seconds", f)
	}
	return int64(s), nil
}
