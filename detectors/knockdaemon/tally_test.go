package knockdaemon_test

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/doorward/doorward/actions"
	"github.com/doorward/doorward/detectors/knockdaemon"
)

// TestTally: what the detector tells actions.Tally of the knocks its
// checks refuse; a knock it passes on is not told (the action tells
// whether it opened the door).
func TestTally(t *testing.T) {
	owner, other := netip.MustParseAddr("10.1.1.1"), netip.MustParseAddr("10.2.2.2")
	enc := newIndep(t, "my_secret_phrase")
	knock := func(ip netip.Addr, iv byte) []uint16 {
		return spell(enc.seal(record(ip, 22, 2, 1), [8]byte{iv, 'k'}))
	}
	broken := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(broken, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		conf   string
		opt    knockdaemon.Options
		knocks [][]uint16
		want   []string
	}{
		{"passed on, then replayed", forgeryConf, knockdaemon.Options{},
			[][]uint16{knock(owner, 1), knock(owner, 1)}, []string{"ssh 1 replay"}},
		{"not a unicast address", forgeryConf, knockdaemon.Options{},
			[][]uint16{knock(netip.IPv4Unspecified(), 2)}, []string{"ssh 1 not_unicast"}},
		{"for another host, Require_IP_Match", forgeryConf + "\tRequire_IP_Match = yes\n", knockdaemon.Options{},
			[][]uint16{knock(other, 3)}, []string{"ssh 1 ip_mismatch"}},
		{"spent store not open", forgeryConf, knockdaemon.Options{SpentPath: filepath.Join(broken, knockdaemon.SpentFile)},
			[][]uint16{knock(owner, 4)}, []string{"ssh 1 spent_store_error"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var told []string
			tc.opt.Tally = func(door string, o actions.Outcome, reason string) {
				told = append(told, fmt.Sprintf("%s %d %s", door, o, reason))
			}
			r := newRig(t, tc.conf, tc.opt)
			defer r.det.Close()
			if tc.opt.SpentPath != "" {
				commit(t, r) // fails: the store stays closed
			}
			for _, k := range tc.knocks {
				r.send(owner, k)
			}
			if !slices.Equal(told, tc.want) {
				t.Errorf("told %q, want %q", told, tc.want)
			}
		})
	}
}
