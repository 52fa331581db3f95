package pcaptest

import (
	"bufio"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/doorward/doorward/detectors"
)

// ParseScript reads a readable packet list, one packet a line:
//
//	TIME SRC DST PORT/PROTO [FLAGS]
//	0.5  10.0.0.2 10.0.0.1 8000/tcp S
//
// TIME is seconds after t0, PROTO tcp or udp, FLAGS letters of FSRPAU
// (default S for tcp). Blank lines and # comments are skipped. Source ports
// are 40000 plus the line number, so each line is a distinct hit, unless
// SRC gives one (10.0.0.2:40001, [fd00::2]:40001): a retransmitted SYN
// repeats its source port.
func ParseScript(r io.Reader, t0 time.Time) ([]Frame, error) {
	var frames []Frame
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		fs := strings.Fields(line)
		if len(fs) < 4 || len(fs) > 5 {
			return nil, fmt.Errorf("line %d: want TIME SRC DST PORT/PROTO [FLAGS]", n)
		}
		sec, err := strconv.ParseFloat(fs[0], 64)
		if err != nil {
			return nil, fmt.Errorf("line %d: time: %v", n, err)
		}
		srcPort := uint16(40000 + n)
		src, err1 := netip.ParseAddr(fs[1])
		if ap, err := netip.ParseAddrPort(fs[1]); err == nil {
			src, srcPort, err1 = ap.Addr(), ap.Port(), nil
		}
		dst, err2 := netip.ParseAddr(fs[2])
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("line %d: bad address", n)
		}
		port, proto, _ := strings.Cut(fs[3], "/")
		pn, err := strconv.ParseUint(port, 10, 16)
		if err != nil {
			return nil, fmt.Errorf("line %d: port: %v", n, err)
		}
		f := Frame{
			Time:  t0.Add(time.Duration(sec * float64(time.Second))),
			Src:   netip.AddrPortFrom(src, srcPort),
			Dst:   netip.AddrPortFrom(dst, uint16(pn)),
			Proto: detectors.TCP,
			Flags: detectors.SYN,
		}
		switch proto {
		case "", "tcp":
		case "udp":
			f.Proto, f.Flags = detectors.UDP, 0
		default:
			return nil, fmt.Errorf("line %d: unknown protocol %q", n, proto)
		}
		if len(fs) == 5 {
			f.Flags = 0
			for _, c := range fs[4] {
				i := strings.IndexRune("FSRPAU", c)
				if i < 0 {
					return nil, fmt.Errorf("line %d: unknown flag %q", n, c)
				}
				f.Flags |= detectors.TCPFlags(1) << i
			}
		}
		frames = append(frames, f)
	}
	return frames, sc.Err()
}
