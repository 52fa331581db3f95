package sequence

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/doorward/doorward/actions"
	"github.com/doorward/doorward/config/knockd"
	"github.com/doorward/doorward/formats/rotating"
	"github.com/doorward/doorward/internal/trust"
)

// FromConfig maps the knockd.conf doors of cfg that are sequence doors
// (no Type) onto detector doors, keyed by cfg.Keys. openOneTime opens
// One_Time_Sequences files; nil refuses such doors.
func FromConfig(cfg *knockd.Config, openOneTime func(path string) (OneTime, error)) ([]Door, error) {
	keys := cfg.Keys()
	var doors []*knockd.Door
	for _, d := range cfg.Doors {
		if d.Type == "" {
			doors = append(doors, d)
		}
	}
	return FromDoors(doors, func(d *knockd.Door) string { return keys[d] }, openOneTime)
}

// FromDoors is FromConfig for a given list of sequence doors and keys.
func FromDoors(doors []*knockd.Door, key func(*knockd.Door) string, openOneTime func(path string) (OneTime, error)) ([]Door, error) {
	var errs []error
	out := make([]Door, 0, len(doors))
	for _, cd := range doors {
		d := Door{
			Key:      key(cd),
			Name:     cd.Name,
			Timeout:  cd.SeqTimeout,
			FlagMask: cd.TCPFlags.Set | cd.TCPFlags.Clear,
			FlagWant: cd.TCPFlags.Set,
		}
		if cd.Target != "" {
			d.Target, _ = netip.ParseAddr(cd.Target) // validated by the parser
		}
		d.Seq = slices.Clone(cd.Sequence)
		if r := cd.Rotating; r != nil {
			secret, err := readSecret(r.Secret)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: Rotating_Secret: %w", r.SecretPos, err))
			}
			d.Rotating = &Rotating{Skew: r.Skew, Params: rotating.Params{
				Secret: secret, Door: cd.Name, Period: r.Period, Length: r.Length, Ports: r.Ports, Mode: r.Mode,
			}}
		}
		if cd.OneTimeSequences != "" {
			var err error
			if openOneTime == nil {
				err = errors.New("one-time sequences are not available here")
			} else {
				d.OneTime, err = openOneTime(cd.OneTimeSequences)
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: one_time_sequences: %w", cd.Pos, err))
			}
		}
		out = append(out, d)
	}
	return out, errors.Join(errs...)
}

// MinSecret is the shortest secret a rotating door accepts, in bytes:
// RFC 4226's 128 bits.
const MinSecret = 16

// readSecret reads a rotating door's secret file: a file only root (or
// the daemon's user) may have written, as every file the daemon trusts
// (internal/trust), and that no one else may read, since whoever reads
// it can knock. The base32 secret is its first line.
func readSecret(path string) ([]byte, error) {
	b, err := trust.ReadFile(path, 4096)
	if err == nil {
		err = trust.Private(path)
	}
	if err != nil {
		return nil, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	key, err := rotating.ParseSecret(line)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(key) < MinSecret {
		return nil, fmt.Errorf("%s: a secret of %d bytes is too short (at least %d: 26 base32 characters)", path, len(key), MinSecret)
	}
	return key, nil
}

// OneTimeFrom opens one-time sequence files as OneTimeLines spaces of
// store, for FromDoors: the state layer owns the file (knockd's format,
// list and marks in one), so spending a line is one Store call.
func OneTimeFrom(store actions.Store) func(path string) (OneTime, error) {
	return func(path string) (OneTime, error) {
		tok, _, err := store.Tokens(actions.Space{Name: path, File: path, Layout: actions.OneTimeLines})
		if err != nil {
			return nil, err
		}
		ot, ok := tok.(OneTime)
		if !ok {
			tok.Close()
			return nil, fmt.Errorf("one-time sequences %s: the state backend does not read one-time sequence files", path)
		}
		return ot, nil
	}
}
