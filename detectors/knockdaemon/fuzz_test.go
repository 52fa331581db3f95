package knockdaemon_test

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/doorward/doorward/actions"
	"github.com/doorward/doorward/detectors"
	"github.com/doorward/doorward/detectors/knockdaemon"
)

// FuzzObserve drives a small detector (four senders at most, a 16-port
// span) with arbitrary hits: each 4-byte group is a sender, a span index,
// a source port and a time step. Nothing may panic, the table stays within
// Max_Sources, and after the timeout everything is gone.
func FuzzObserve(f *testing.F) {
	f.Add([]byte{1, 2, 3, 4, 1, 2, 3, 4, 2, 5, 6, 200, 3, 0, 0, 255})
	f.Add([]byte(strings.Repeat("\x01\x05\x07\x01\x02\x06\x07\x01\x03\x07\x07\x01\x04\x08\x07\x01\x05\x09\x07\x01", 8)))
	f.Fuzz(func(t *testing.T, data []byte) {
		doors, err := fromConfig(t, `
[d]
	Type = knockdaemon
	Portspan = 1000-1015
	Knock = FLAG0,CHECKSUM
	Key = k
	IV = no
	Max_Sources = 4
	Hit_Timeout = 2
[u]
	Type = knockdaemon
	Portspan = 1008-1011,2000-2003
	Knock = FLAG0
	Encrypt = no
`, 0)
		if err != nil {
			t.Fatal(err)
		}
		det := knockdaemon.New(doors, knockdaemon.Options{})
		now := time.Unix(1_000_000, 0)
		var p detectors.Packet
		for i := 0; i+4 <= len(data); i += 4 {
			g := data[i : i+4]
			now = now.Add(time.Duration(g[3]) * 10 * time.Millisecond)
			p = detectors.Packet{
				Time: now, Src: netip.AddrFrom4([4]byte{10, 0, 0, g[0] % 8}), Dst: netip.MustParseAddr("10.0.0.1"),
				SrcPort: uint16(g[2] % 4), DstPort: 1000 + uint16(g[1]%24), Proto: detectors.TCP, Flags: detectors.SYN,
			}
			det.Observe(&p, func(actions.Event) {})
			if g[3] == 255 {
				det.Expire(now)
			}
			if st := det.Stats("d"); st.Sources > 4 {
				t.Fatalf("%d senders tracked, Max_Sources 4", st.Sources)
			}
		}
		det.Expire(now.Add(time.Minute))
		if n := det.Sources(); n != 0 {
			t.Fatalf("%d senders left after the timeout", n)
		}
	})
}
