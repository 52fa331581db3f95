package sequence

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/doorward/doorward/config/knockd"
	"github.com/doorward/doorward/detectors"
)

// FromConfig maps knockd.conf doors onto detector doors. Keys are the door
// names, made unique with a "#n" suffix where knockd.conf repeats a section
// name (knockd keeps such sections as separate doors, and so do we).
// openOneTime opens One_Time_Sequences files; nil refuses such doors.
func FromConfig(cfg *knockd.Config, openOneTime func(path string) (OneTime, error)) ([]Door, error) {
	var errs []error
	seen := map[string]int{}
	out := make([]Door, 0, len(cfg.Doors))
	for _, cd := range cfg.Doors {
		seen[cd.Name]++
		k := cd.Name
		if n := seen[cd.Name]; n > 1 {
			k = fmt.Sprintf("%s#%d", cd.Name, n)
		}
		d := Door{
			Key:      k,
			Name:     cd.Name,
			Timeout:  cd.SeqTimeout,
			FlagMask: detectors.TCPFlags(cd.TCPFlags.Set | cd.TCPFlags.Clear),
			FlagWant: detectors.TCPFlags(cd.TCPFlags.Set),
		}
		if cd.Target != "" {
			d.Target, _ = netip.ParseAddr(cd.Target) // validated by the parser
		}
		d.Seq = steps(cd.Sequence)
		if cd.OneTimeSequences != "" {
			var err error
			if openOneTime == nil {
				err = errors.New("one-time sequences are not available here")
			} else {
				d.OneTime, err = openOneTime(cd.OneTimeSequences)
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: door %s: one_time_sequences: %w", cd.Pos, cd.Name, err))
			}
		}
		out = append(out, d)
	}
	return out, errors.Join(errs...)
}
