package sequence

import (
	"fmt"
	"net/netip"

	"github.com/doorward/doorward/config/knockd"
	"github.com/doorward/doorward/detectors"
)

// FromConfig maps knockd.conf doors onto detector doors. Keys are the door
// names, made unique with a "#n" suffix where knockd.conf repeats a section
// name (knockd keeps such sections as separate doors, and so do we).
func FromConfig(cfg *knockd.Config) []Door {
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
		for _, s := range cd.Sequence {
			d.Seq = append(d.Seq, Step{Port: s.Port, Proto: detectors.Proto(s.Proto)})
		}
		out = append(out, d)
	}
	return out
}
