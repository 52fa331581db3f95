package doorman

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/doorward/doorward/config"
	"github.com/doorward/doorward/config/knockd"
)

// Defaults of doormand.cf(5) (constants.h).
const (
	DefaultWaitfor         = 10 * time.Second
	DefaultDelay1          = 500 * time.Millisecond // connection-delay-1, 500000 µs
	DefaultDelay2          = 5 * time.Second        // connection-delay-2
	DefaultHashArchiveSize = 100000
)

// Level is a doormand log level; messages above a door's level are not
// logged. The numbers are syslog's, which the script protocol also uses.
type Level int

const (
	Emerg Level = iota
	Alert
	Crit
	Error
	Warn
	Notice
	Info
	Debug
)

var levelNames = [...]string{"emerg", "alert", "crit", "error", "warn", "notice", "info", "debug"}

// String is doormand's spelling of the level, as its log lines show it.
func (l Level) String() string { return levelNames[l&7] }

// ParseLevel reads a loglevel value: doormand's names in any case, and
// "warning" (which doormand's man page lists but its code refuses).
func ParseLevel(s string) (Level, error) {
	if strings.EqualFold(s, "warning") {
		return Warn, nil
	}
	for i, n := range levelNames {
		if strings.EqualFold(s, n) {
			return Level(i), nil
		}
	}
	return 0, fmt.Errorf("illegal value %q (want one of %s, warning)", s, strings.Join(levelNames[:], ", "))
}

// Door is a validated doorman door: the directives of a knockd.conf
// section with Type = doorman, named after doormand.cf's.
type Door struct {
	Name string
	Pos  config.Pos

	Port             uint16        // UDP knock port (port)
	Guestlist        string        // guestlist
	FirewallAdd      string        // firewall-add: script path (run through /bin/sh -c)
	FirewallDel      string        // firewall-del
	Waitfor          time.Duration // from the broad rule to the client's SYN
	Delay1           time.Duration // connection-delay-1: SYN to ESTABLISHED, polled every 100 ms
	Delay2           time.Duration // connection-delay-2: liveness poll interval
	HashArchive      string
	HashArchiveSize  int
	Interface        string // $1 of the scripts; "" = the interface holding the knocked address
	LogLevel         Level
	CheckPermissions bool     // doormand's daemon-mode file checks (§7)
	Notes            []string // things to log once: ignored directives
	Positions        map[string]config.Pos
}

// Directive names, canonical spelling. Keys are matched ignoring case,
// with '-' and '_' the same, so doormand.cf's "firewall-add" works too.
const (
	keyPort       = "Port"
	keyGuestlist  = "Guestlist"
	keyAdd        = "Firewall_Add"
	keyDel        = "Firewall_Del"
	keyWaitfor    = "Waitfor"
	keyDelay1     = "Connection_Delay_1"
	keyDelay2     = "Connection_Delay_2"
	keyArchive    = "Hash_Archive"
	keyArchSize   = "Hash_Archive_Size"
	keyLinkHeader = "Link_Header_Length"
	keyInterface  = "Interface"
	keyLogLevel   = "LogLevel"
	keyCheckPerms = "Check_Permissions"
	keyFailLimit  = "Fail_Limit"
	keyFailDelay  = "Fail_Delay"
)

var doorKeys = []string{keyPort, keyGuestlist, keyAdd, keyDel, keyWaitfor, keyDelay1, keyDelay2,
	keyArchive, keyArchSize, keyLinkHeader, keyInterface, keyLogLevel, keyCheckPerms, keyFailLimit, keyFailDelay}

// DoorKeys are the directives FromDoor accepts (besides Type, which every
// section may have), canonical spelling; the reader looks keys up in the
// same list, so a document can be checked against it.
func DoorKeys() []string { return slices.Clone(doorKeys) }

func canonKey(k string) string {
	norm := strings.ReplaceAll(strings.ToLower(k), "-", "_")
	for _, c := range doorKeys {
		if strings.ToLower(c) == norm {
			return c
		}
	}
	return ""
}

// FromDoor validates a doorman door's directives. Every error is returned
// (a config.List), each with its file:line and directive.
//
//	[ssh]
//	    Type               = doorman
//	    Port               = 1001
//	    Guestlist          = /etc/dd_guestlist
//	    Firewall_Add       = /etc/doorward/iptables_add
//	    Firewall_Del       = /etc/doorward/iptables_delete
//	    Hash_Archive       = /var/lib/doorward/doorman.hash
//	    Hash_Archive_Size  = 100000
//	    Waitfor            = 10
//	    Connection_Delay_1 = 500000
//	    Connection_Delay_2 = 5
//
// Units are doormand.cf's: Waitfor and Connection_Delay_2 in seconds,
// Connection_Delay_1 in microseconds. Firewall_Add, Firewall_Del and
// Hash_Archive are required. Interface (the scripts' $1), LogLevel and
// Check_Permissions (yes) are optional; Link_Header_Length, Fail_Limit and
// Fail_Delay are accepted and ignored, as doormand ignores the last two.
// See docs/doorman.md.
func FromDoor(d *knockd.Door) (*Door, error) {
	out := &Door{
		Name:             d.Name,
		Pos:              d.Pos,
		Port:             1001,
		Guestlist:        DefaultGuestlist,
		Waitfor:          DefaultWaitfor,
		Delay1:           DefaultDelay1,
		Delay2:           DefaultDelay2,
		HashArchiveSize:  DefaultHashArchiveSize,
		LogLevel:         Debug,
		CheckPermissions: true,
		Positions:        map[string]config.Pos{},
	}
	var errs config.List
	for _, prm := range d.Params {
		key := canonKey(prm.Key)
		errorf := func(format string, args ...any) {
			errs.Add(config.Errorf(prm.Pos, prm.Key, format, args...))
		}
		if key == "" {
			errorf("not a doorman directive (have: %s)", strings.Join(doorKeys, ", "))
			continue
		}
		if first, dup := out.Positions[key]; dup {
			errorf("given twice (first at line %d)", first.Line)
			continue
		}
		out.Positions[key] = prm.Pos
		v := prm.Value
		switch key {
		case keyPort:
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 65535 {
				errorf("%q is not a port number 1..65535", v)
				continue
			}
			out.Port = uint16(n)
		case keyGuestlist, keyAdd, keyDel, keyArchive:
			if v == "" {
				errorf("empty path")
				continue
			}
			switch key {
			case keyGuestlist:
				out.Guestlist = v
			case keyAdd:
				out.FirewallAdd = v
			case keyDel:
				out.FirewallDel = v
			case keyArchive:
				out.HashArchive = v
			}
		case keyWaitfor:
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				errorf("%q is not a whole number of seconds >= 1", v)
				continue
			}
			out.Waitfor = time.Duration(n) * time.Second
		case keyDelay1:
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				errorf("%q is not a whole number of microseconds >= 0", v)
				continue
			}
			out.Delay1 = time.Duration(n) * time.Microsecond
		case keyDelay2:
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				errorf("%q is not a whole number of seconds >= 1", v)
				continue
			}
			out.Delay2 = time.Duration(n) * time.Second
		case keyArchSize:
			n, err := strconv.Atoi(v)
			if err != nil || n < 1000 || n > 10_000_000 {
				errorf("%q is not a number of records 1000..10000000", v)
				continue
			}
			out.HashArchiveSize = n
		case keyLinkHeader:
			if _, err := strconv.ParseUint(v, 10, 32); err != nil {
				errorf("%q is not a number", v)
				continue
			}
			out.Notes = append(out.Notes, fmt.Sprintf("%s: %s is ignored: the capture finds the IP header itself on every link type", prm.Pos, prm.Key))
		case keyInterface:
			if !ValidInterface(v) {
				errorf("%q is not an interface name", v)
				continue
			}
			out.Interface = v
		case keyLogLevel:
			l, err := ParseLevel(v)
			if err != nil {
				errorf("%v", err)
				continue
			}
			out.LogLevel = l
		case keyCheckPerms:
			switch strings.ToLower(v) {
			case "yes", "true", "1", "on":
				out.CheckPermissions = true
			case "no", "false", "0", "off":
				out.CheckPermissions = false
			default:
				errorf("%q is not yes or no", v)
			}
		case keyFailLimit, keyFailDelay:
			// Parsed and required >= 1 by doormand, used by nothing.
			if n, err := strconv.Atoi(v); err != nil || n < 1 {
				errorf("%q is not a whole number >= 1", v)
			}
		}
	}
	for _, req := range []struct {
		key string
		val string
	}{{keyAdd, out.FirewallAdd}, {keyDel, out.FirewallDel}, {keyArchive, out.HashArchive}} {
		if req.val == "" {
			errs.Add(config.Errorf(d.Pos, "", "doorman door %q needs %s", d.Name, req.key))
		}
	}
	return out, errs.Err()
}

// ValidInterface reports whether s can be a Linux interface name that is
// safe on a shell command line: 1 to 15 bytes of [A-Za-z0-9_.:@-], not
// starting with '-'. It reaches the firewall scripts as $1.
func ValidInterface(s string) bool {
	if s == "" || len(s) > 15 || s[0] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(isLetter(c) || isDigit(c) || strings.IndexByte("_.:@-", c) >= 0) {
			return false
		}
	}
	return true
}

// Dump prints d in a stable form for golden tests and tools.
func (d *Door) Dump() string {
	var b strings.Builder
	fmt.Fprintf(&b, "doorman door %q\n", d.Name)
	fmt.Fprintf(&b, "  Port = %d\n  Guestlist = %q\n  Firewall_Add = %q\n  Firewall_Del = %q\n", d.Port, d.Guestlist, d.FirewallAdd, d.FirewallDel)
	fmt.Fprintf(&b, "  Waitfor = %v\n  Connection_Delay_1 = %v\n  Connection_Delay_2 = %v\n", d.Waitfor, d.Delay1, d.Delay2)
	fmt.Fprintf(&b, "  Hash_Archive = %q\n  Hash_Archive_Size = %d\n  Interface = %q\n  LogLevel = %v\n  Check_Permissions = %v\n",
		d.HashArchive, d.HashArchiveSize, d.Interface, d.LogLevel, d.CheckPermissions)
	for _, n := range d.Notes {
		fmt.Fprintf(&b, "  note: %s\n", n)
	}
	return b.String()
}

// KeyOrName is key, falling back to the door's name for doors key does not
// know. The doorman action keeps the key function of the config it was
// built for, and a reloaded config's doors are not in it; the detector
// uses the same function so that both sides name a door alike.
func KeyOrName(key func(*knockd.Door) string) func(*knockd.Door) string {
	return func(d *knockd.Door) string {
		if key != nil {
			if k := key(d); k != "" {
				return k
			}
		}
		return d.Name
	}
}
