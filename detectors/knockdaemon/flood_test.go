package knockdaemon_test

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/doorward/doorward/actions"
	"github.com/doorward/doorward/config/knockd"
	"github.com/doorward/doorward/detectors"
	"github.com/doorward/doorward/detectors/detectortest"
	"github.com/doorward/doorward/detectors/knockdaemon"
	"github.com/doorward/doorward/detectors/pcaptest"
)

// floodKnock is the knock of testdata/cases/eviction (Key secret, span
// 1024-1279, IP=10.0.0.2 PORT=22): its 32 hits, as captured there.
var floodKnock = []uint16{1106, 1121, 1134, 1124, 1135, 1133, 1097, 1110, 1089, 1090, 1091, 1092, 1093, 1094, 1095, 1096,
	1088, 1126, 1232, 1220, 1154, 1139, 1097, 1074, 1208, 1270, 1056, 1169, 1276, 1134, 1144, 1048}

const floodMax = 64

const floodConf = `[ssh]
	Type        = knockdaemon
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

	wantOnly(t, floodRun(t, floodConf, frames), knocker)
}

// TestFirstHitFloodDoesNotLockOut: new spoofed senders hit the span at
// 500,000 a second while a knock's 32 hits go out 10 ms apart (knock
// span's default), into a door with the default Max_Sources: the first
// hit must outlive the senders that arrive before the second.
func TestFirstHitFloodDoesNotLockOut(t *testing.T) {
	const pps = 500_000
	const gap = 10 * time.Millisecond
	server := netip.MustParseAddr("10.0.0.1")
	knocker := netip.MustParseAddr("10.0.0.2")
	n := int(time.Duration(len(floodKnock)+1) * gap * pps / time.Second)
	var frames []pcaptest.Frame
	k := 0
	for i := range n {
		at := t0.Add(time.Duration(i) * time.Second / pps)
		if k < len(floodKnock) && !at.Before(t0.Add(time.Duration(k+1)*gap)) {
			frames = append(frames, pcaptest.Frame{Time: at, Src: netip.AddrPortFrom(knocker, uint16(40000+k)),
				Dst: netip.AddrPortFrom(server, floodKnock[k]), Proto: detectors.TCP, Flags: detectors.SYN})
			k++
		}
		frames = append(frames, pcaptest.Frame{Time: at, Src: netip.AddrPortFrom(pcaptest.Spoofed(i), uint16(i)),
			Dst: netip.AddrPortFrom(server, 1024+uint16(i%256)), Proto: detectors.TCP, Flags: detectors.SYN})
	}
	conf := strings.Replace(floodConf, "Max_Sources = 64\n", "", 1)
	if conf == floodConf {
		t.Fatal("floodConf has no Max_Sources line to remove")
	}
	wantOnly(t, floodRun(t, conf, frames), knocker)
}

// floodRun replays frames through a detector for conf's doors and returns
// the addresses a door opened for.
func floodRun(t *testing.T, conf string, frames []pcaptest.Frame) []netip.Addr {
	t.Helper()
	cfg, err := knockd.Parse("knockd.conf", []byte(conf))
	if err != nil {
		t.Fatal(err)
	}
	keys := cfg.Keys()
	doors, err := knockdaemon.FromDoors(cfg.Doors, func(d *knockd.Door) string { return keys[d] }, 0)
	if err != nil {
		t.Fatal(err)
	}
	det := knockdaemon.New(doors, knockdaemon.Options{})
	var opened []netip.Addr
	disp := detectors.NewDispatcher([]detectors.Detector{det}, func(ev actions.Event) { opened = append(opened, ev.Addr) })
	var now time.Time
	detectortest.ReplayEvery(t, detectortest.WriteFrames(t, frames), disp, &now, time.Second, nil)
	if st := det.Stats("ssh"); len(opened) != 1 {
		t.Logf("stats %+v", st)
	}
	return opened
}

func wantOnly(t *testing.T, opened []netip.Addr, knocker netip.Addr) {
	t.Helper()
	if len(opened) != 1 || opened[0] != knocker {
		t.Errorf("door opened for %v, want only the knocker %v", opened, knocker)
	}
}
