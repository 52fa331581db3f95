package knockdaemon

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/doorward/doorward/config"
	"github.com/doorward/doorward/config/knockd"
	"github.com/doorward/doorward/detectors"
	wire "github.com/doorward/doorward/formats/knockdaemon"
)

// Defaults of a port-span door's bounds (spec §7, [chosen] point 8).
const (
	DefaultHitTimeout = 30 * time.Second
	// DefaultMaxSources lets a knock made at knock span's pace (a hit
	// every 10 ms) through a flood of 500,000 new spoofed senders a second
	// into the span: a first hit survives DefaultMaxSources/2 new senders
	// (16 ms at that rate), a sender past its first hit is protected. At
	// about 600 bytes a sender, a door flooded that hard takes 10 MiB.
	DefaultMaxSources = 16384
	// maxMaxSources keeps a typo from reserving gigabytes.
	maxMaxSources = 1 << 20
	// DefaultSpentKnocks is how many accepted knocks the spent store
	// remembers by default: at 24 bytes a ciphertext block, 3 MiB for the
	// usual two-block knock.
	DefaultSpentKnocks = 65536
	// maxSpentKnocks bounds Spent_Knocks so a typo cannot fill the disk
	// and memory: with 4-block knocks, 96 MiB of file.
	maxSpentKnocks = 1 << 20
)

// Door is one port-span door as the detector sees it.
type Door struct {
	Key   string // identifies the door in events (unique)
	Name  string // section name, for log lines
	Codec *wire.Codec
	Proto detectors.Proto
	// TCP only: flags&FlagMask must equal FlagWant (default: SYN set).
	FlagMask, FlagWant detectors.TCPFlags
	// HitTimeout is how long a hit may wait for the rest of its knock.
	HitTimeout time.Duration
	// MaxSources bounds the senders tracked at once (0: the default).
	MaxSources int
	// RequireIPMatch refuses knocks whose record IP is not the sender.
	RequireIPMatch bool
	// SpentKnocks is how many accepted knocks the spent store keeps
	// against replay and forgery (Spent_Knocks; 0: this door does not
	// use it). Unencrypted doors never do: anyone can forge their knocks.
	SpentKnocks int

	sig string // the door's directives as written, to recognise it after a reload
}

// directives are the directive names of a port-span door, canonical
// spelling; keys are matched case-insensitively, as in knockd.conf.
var directives = [...]string{
	"Portspan", "Knock", "Encrypt", "Cipher", "Key", "IV", "IV_Hex", "Header",
	"Port_Width", "Time_Width", "Checksum_Mod", "Span_Tail",
	"Protocol", "TCPFlags", "Hit_Timeout", "Max_Sources", "Require_IP_Match",
	"Spent_Knocks", "Mac_Key",
}

// Directives are the directives of a port-span door that FromDoors
// accepts (besides Type, which every section may have), canonical
// spelling; the reader looks keys up in the same list, so a document can
// be checked against it.
func Directives() []string { return slices.Clone(directives[:]) }

// directive returns key's canonical name. The comparison folds ASCII
// only, as knockd's toupper does: strings.EqualFold would take the long s
// of "Portſpan" for an s.
func directive(key string) (string, bool) {
	up := []byte(key)
	for i, c := range up {
		if 'a' <= c && c <= 'z' {
			up[i] = c - ('a' - 'A')
		}
	}
	for _, d := range directives {
		if strings.ToUpper(d) == string(up) {
			return d, true
		}
	}
	return "", false
}

// FromDoors validates the port-span doors among doors (sections of other
// types, such as the "action" sections the kind also receives, are
// skipped) and maps them onto detector doors keyed by key. Every error of
// every door is reported, each with the file:line of its directive (or of
// the section, for a missing one). defaultMaxSources applies to doors
// without Max_Sources (0: DefaultMaxSources).
func FromDoors(doors []*knockd.Door, key func(*knockd.Door) string, defaultMaxSources int) ([]Door, error) {
	var errs config.List
	var out []Door
	for _, kd := range doors {
		if kd.Type != Name {
			continue
		}
		d, derrs := fromDoor(kd, defaultMaxSources)
		errs = append(errs, derrs...)
		if len(derrs) == 0 {
			d.Key = key(kd)
			out = append(out, d)
		}
	}
	return out, errs.Err()
}

func fromDoor(kd *knockd.Door, defaultMaxSources int) (Door, config.List) {
	var errs config.List
	d := Door{
		Name:       kd.Name,
		Proto:      detectors.TCP,
		FlagMask:   detectors.SYN,
		FlagWant:   detectors.SYN,
		HitTimeout: DefaultHitTimeout,
		MaxSources: defaultMaxSources,

		SpentKnocks: DefaultSpentKnocks,
	}
	if d.MaxSources <= 0 {
		d.MaxSources = DefaultMaxSources
	}
	pos := map[string]config.Pos{}
	var s wire.Settings
	var flags *config.Param
	var sig strings.Builder
	for i := range kd.Params {
		prm := &kd.Params[i]
		name, ok := directive(prm.Key)
		if !ok {
			errs.Add(config.Errorf(prm.Pos, prm.Key, "unknown port-span directive"))
			continue
		}
		if p, dup := pos[name]; dup {
			errs.Add(config.Errorf(prm.Pos, name, "given twice (first at line %d)", p.Line))
			continue
		}
		pos[name] = prm.Pos
		fmt.Fprintf(&sig, "%s=%s\n", name, prm.Value)
		v := prm.Value
		switch name {
		case "Portspan":
			s.Portspan = v
		case "Knock":
			s.Knock = v
		case "Encrypt":
			s.Encrypt = v
		case "Cipher":
			s.Cipher = v
		case "Key":
			s.Key = v
		case "Mac_Key":
			s.MacKey = v
		case "IV":
			s.IV = v
		case "IV_Hex":
			s.IVHex = v
		case "Header":
			s.Header = v
		case "Port_Width":
			s.PortWidth = v
		case "Time_Width":
			s.TimeWidth = v
		case "Checksum_Mod":
			s.ChecksumMod = v
		case "Span_Tail":
			s.SpanTail = v
		case "Protocol":
			switch strings.ToLower(v) {
			case "tcp":
			case "udp":
				d.Proto = detectors.UDP
			default:
				errs.Add(config.Errorf(prm.Pos, name, "%q is not tcp or udp", v))
			}
		case "TCPFlags":
			flags = prm
		case "Hit_Timeout":
			n, err := strconv.ParseUint(v, 10, 32)
			if err != nil || n == 0 || n > math.MaxInt32 {
				errs.Add(config.Errorf(prm.Pos, name, "%q is not a whole number of seconds from 1", v))
				continue
			}
			d.HitTimeout = time.Duration(n) * time.Second
		case "Max_Sources":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > maxMaxSources {
				errs.Add(config.Errorf(prm.Pos, name, "%q is not a number from 1 to %d", v, maxMaxSources))
				continue
			}
			d.MaxSources = n
		case "Spent_Knocks":
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > maxSpentKnocks {
				errs.Add(config.Errorf(prm.Pos, name, "%q is not a number from 0 to %d", v, maxSpentKnocks))
				continue
			}
			d.SpentKnocks = n
		case "Require_IP_Match":
			switch strings.ToLower(v) {
			case "yes", "true", "on", "1":
				d.RequireIPMatch = true
			case "no", "false", "off", "0":
			default:
				errs.Add(config.Errorf(prm.Pos, name, "%q is not yes or no", v))
			}
		}
	}
	if flags != nil {
		if d.Proto != detectors.TCP {
			errs.Add(config.Errorf(flags.Pos, "TCPFlags", "only applies with Protocol = tcp"))
		} else if fl, err := knockd.ParseTCPFlags(flags.Value); err != nil {
			errs.Add(config.Errorf(flags.Pos, "TCPFlags", "%v", err))
		} else {
			d.FlagMask, d.FlagWant = fl.Set|fl.Clear, fl.Set
		}
	}
	if d.Proto == detectors.UDP {
		d.FlagMask, d.FlagWant = 0, 0
	}
	codec, err := s.Codec()
	if err != nil {
		for _, e := range unjoin(err) {
			var se *wire.SettingError
			if !errors.As(e, &se) {
				errs.Add(config.Errorf(kd.Pos, "", "%v", e))
				continue
			}
			p, given := pos[se.Key]
			if !given {
				p = kd.Pos // a missing directive belongs to the section
			}
			errs.Add(config.Errorf(p, se.Key, "%v", se.Err))
		}
	}
	d.Codec = codec
	if codec == nil || codec.Crypt == nil {
		d.SpentKnocks = 0
	}
	d.sig = sig.String()
	// In line order, as an admin reads the file; missing directives (at
	// the section's line) first.
	slices.SortStableFunc(errs, func(a, b *config.Error) int { return a.Pos.Line - b.Pos.Line })
	return d, errs
}

func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}
