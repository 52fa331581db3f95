package portspan_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/doorward/doorward/actions"
	"github.com/doorward/doorward/config/knockd"
	"github.com/doorward/doorward/detectors"
	"github.com/doorward/doorward/detectors/detectortest"
	"github.com/doorward/doorward/detectors/pcaptest"
	"github.com/doorward/doorward/detectors/portspan"
)

// floodKnock is the knock of testdata/cases/eviction (Key secret, span
// 1024-1279, IP=10.0.0.2 PORT=22): its 32 hits, as captured there.
var floodKnock = []uint16{1106, 1121, 1134, 1124, 1135, 1133, 1097, 1110, 1089, 1090, 1091, 1092, 1093, 1094, 1095, 1096,
	1088, 1126, 1232, 1220, 1154, 1139, 1097, 1074, 1208, 1270, 1056, 1169, 1276, 1134, 1144, 1048}

const floodMax = 64

const floodConf = `[ssh]
	Type        = portspan
	Portspan    = 1024-1279
	Knock       = IP,PORT,FLAG0,CHECKSUM
	Key         = secret
	Max_Sources = 64
`

// TestFreshSenderBetweenHitsDoesNotLockOut: the sender table is filled with
// Max_Sources spoofed senders of two hits each, then one fresh spoofed
// sender hits the span between each two hits of a real knock. The knock
// still opens. The capture is generated from Max_Sources and the span
// alone and replayed through the real replay source and dispatcher.
func TestFreshSenderBetweenHitsDoesNotLockOut(t *testing.T) {
	server := netip.MustParseAddr("10.0.0.1")
	knocker := netip.MustParseAddr("10.0.0.2")
	at := t0
	var frames []pcaptest.Frame
	hit := func(src netip.Addr, port uint16) {
		at = at.Add(time.Millisecond)
		frames = append(frames, pcaptest.Frame{Time: at, Src: netip.AddrPortFrom(src, uint16(30000+len(frames))),
			Dst: netip.AddrPortFrom(server, port), Proto: detectors.TCP, Flags: detectors.SYN})
	}
	for i := range floodMax { // a full table of two-hit senders
		hit(pcaptest.Spoofed(i), 1024+uint16(i%256))
		hit(pcaptest.Spoofed(i), 1024+uint16((i*7)%256))
	}
	for i, port := range floodKnock {
		hit(pcaptest.Spoofed(floodMax+i), 1024+uint16((i*13)%256))
		hit(knocker, port)
	}

	cfg, err := knockd.Parse("knockd.conf", []byte(floodConf))
	if err != nil {
		t.Fatal(err)
	}
	keys := cfg.Keys()
	doors, err := portspan.FromDoors(cfg.Doors, func(d *knockd.Door) string { return keys[d] }, 0)
	if err != nil {
		t.Fatal(err)
	}
	det := portspan.New(doors, portspan.Options{})
	var opened []netip.Addr
	disp := detectors.NewDispatcher([]detectors.Detector{det}, func(ev actions.Event) { opened = append(opened, ev.Addr) })
	var now time.Time
	detectortest.ReplayEvery(t, detectortest.WriteFrames(t, frames), disp, &now, time.Second, nil)
	if len(opened) != 1 || opened[0] != knocker {
		t.Errorf("door opened for %v, want only the knocker %v (stats %+v)", opened, knocker, det.Stats("ssh"))
	}
}
