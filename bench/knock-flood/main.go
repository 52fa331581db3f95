// Command knock-flood is Doorward's load generator for benchmarking a
// port-knock daemon: it sends a flood of spoofed-source TCP SYNs (or UDP
// datagrams) to knock ports, with random source addresses from a prefix
// (default 198.18.0.0/15, the benchmarking range of RFC 2544) and random
// source ports.
//
//	knock-flood -dst ADDR [-ports 7000[,8000…]] [-proto tcp|udp]
//	            [-rate PPS] [-count N] [-duration D] [-src-prefix P]
//	            [-mode packet|raw] [-i IFACE] [-dst-mac MAC] [-batch N]
//	            [-payload-base64 N]
//	knock-flood knock -src ADDR -dst ADDR [-delay D] PORT[:udp] …
//	knock-flood sockstats PID
//	knock-flood probe [-n N]
//
// Every flood is bounded: it stops after -count packets or -duration,
// whichever comes first (defaults 1,000,000 and 5s; at most 10^9 and 10m).
//
// Safety: it only sends to a loopback address, or, when it runs inside a
// network namespace other than PID 1's, to an address on a subnet directly
// connected in that namespace (checkTarget). Run it with `ip netns exec` in
// a namespace pair you created, as bench/flood.sh does.
//
// Modes: "packet" (the default) writes whole Ethernet frames to an
// AF_PACKET socket, many per sendmmsg(2), straight to the driver
// (PACKET_QDISC_BYPASS); "raw" writes IP packets to a raw IPv4 socket
// (IP_HDRINCL), which adds a route and neighbour lookup per packet. On a
// veth pair from one core packet mode is the faster (see docs/benchmark.md).
//
// "knock" is the legitimate client of the benchmark: it knocks from a given
// source address with ordinary kernel TCP connects (one SYN each, like
// knock(1)) or UDP datagrams and prints the time the last one was sent.
//
// "sockstats" reads the kernel's PACKET_STATISTICS (packets that passed the
// filter, packets dropped because the ring was full) of every AF_PACKET
// socket of process PID, through pidfd_getfd(2) (root, Linux 5.6+). The
// kernel resets these counters on every read.
//
// "probe" times the benchmark's start command alone (see probe.go).
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

const (
	defaultCount    = 1_000_000
	defaultDuration = 5 * time.Second
	maxCount        = 1_000_000_000
	maxDuration     = 10 * time.Minute
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "knock":
			return runKnock(args[1:], stdout, stderr)
		case "sockstats":
			return runSockstats(args[1:], stdout, stderr)
		case "probe":
			return runProbe(args[1:], stdout, stderr)
		}
	}
	return runFlood(args, stdout, stderr)
}

// floodConfig is a checked flood command line.
type floodConfig struct {
	dst      netip.Addr
	ports    []uint16
	proto    uint8
	prefix   netip.Prefix
	rate     int
	count    uint64
	duration time.Duration
	mode     string
	iface    string
	dstMAC   string
	batch    int
	seed     uint64
	b64      int // UDP payload: this many random base64 characters; 0: one zero byte
}

func parseFloodFlags(args []string, stderr io.Writer) (*floodConfig, error) {
	fs := flag.NewFlagSet("knock-flood", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dst := fs.String("dst", "", "target IPv4 address (required; loopback, or on-link inside a non-initial network namespace)")
	ports := fs.String("ports", "7000", "comma-separated destination ports, sent to in turn")
	proto := fs.String("proto", "tcp", "tcp (SYN) or udp (1-byte datagram)")
	prefix := fs.String("src-prefix", "198.18.0.0/15", "spoofed source addresses are drawn uniformly from this IPv4 prefix")
	rate := fs.Int("rate", 0, "packets per second; 0 = as fast as possible")
	count := fs.Uint64("count", defaultCount, "stop after this many packets (1..1e9)")
	duration := fs.Duration("duration", defaultDuration, "stop after this long (at most 10m)")
	mode := fs.String("mode", "packet", "packet (AF_PACKET, Ethernet frames) or raw (raw IPv4 socket, IP_HDRINCL)")
	iface := fs.String("i", "", "interface to send on (packet mode; default: the one whose subnet holds -dst)")
	dstMAC := fs.String("dst-mac", "", "target MAC address (packet mode; default: from the neighbour table)")
	batch := fs.Int("batch", 64, "frames per sendmmsg call (1..1024)")
	seed := fs.Uint64("seed", 0, "random seed (0: from the clock)")
	b64 := fs.Int("payload-base64", 0, "UDP only: a payload of this many random base64 characters (an SPA packet's kind), drawn once per flood; 0: one zero byte")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: knock-flood -dst ADDR [flags]\n       knock-flood knock -src ADDR -dst ADDR [-delay D] PORT[:udp]...\n       knock-flood sockstats PID")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	c := &floodConfig{rate: *rate, count: *count, duration: *duration, mode: *mode, iface: *iface, dstMAC: *dstMAC, batch: *batch, seed: *seed, b64: *b64}
	var err error
	if *dst == "" {
		return nil, errors.New("-dst is required")
	}
	if c.dst, err = netip.ParseAddr(*dst); err != nil {
		return nil, fmt.Errorf("-dst: %w", err)
	}
	c.dst = c.dst.Unmap()
	if c.ports, err = parsePorts(*ports); err != nil {
		return nil, fmt.Errorf("-ports: %w", err)
	}
	switch *proto {
	case "tcp":
		c.proto = protoTCP
	case "udp":
		c.proto = protoUDP
	default:
		return nil, fmt.Errorf("-proto %q: tcp or udp", *proto)
	}
	if c.prefix, err = netip.ParsePrefix(*prefix); err != nil || !c.prefix.Addr().Is4() {
		return nil, fmt.Errorf("-src-prefix %q: want an IPv4 prefix", *prefix)
	}
	c.prefix = c.prefix.Masked()
	if err := checkBounds(c.count, c.duration); err != nil {
		return nil, err
	}
	if c.rate < 0 {
		return nil, errors.New("-rate must be ≥ 0")
	}
	if c.mode != "packet" && c.mode != "raw" {
		return nil, fmt.Errorf("-mode %q: packet or raw", c.mode)
	}
	if c.batch < 1 || c.batch > 1024 {
		return nil, errors.New("-batch must be in 1..1024")
	}
	if c.b64 < 0 || c.b64 > 1400 || c.b64 > 0 && c.proto != protoUDP {
		return nil, errors.New("-payload-base64 must be in 0..1400, with -proto udp")
	}
	return c, nil
}

// checkBounds refuses a flood that would not stop by itself soon.
func checkBounds(count uint64, d time.Duration) error {
	if count == 0 || count > maxCount {
		return fmt.Errorf("-count must be in 1..%d", maxCount)
	}
	if d <= 0 || d > maxDuration {
		return fmt.Errorf("-duration must be in (0, %v]", maxDuration)
	}
	return nil
}

func parsePorts(s string) ([]uint16, error) {
	var out []uint16
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.ParseUint(strings.TrimSpace(f), 10, 16)
		if err != nil || n == 0 {
			return nil, fmt.Errorf("bad port %q", f)
		}
		out = append(out, uint16(n))
	}
	return out, nil
}

func runFlood(args []string, stdout, stderr io.Writer) int {
	c, err := parseFloodFlags(args, stderr)
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(stderr, "knock-flood:", err)
		}
		return 2
	}
	if err := checkTarget(c.dst, currentNetEnv()); err != nil {
		fmt.Fprintln(stderr, "knock-flood:", err)
		return 1
	}
	res, err := flood(c, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "knock-flood:", err)
		return 1
	}
	pps := float64(res.sent) / res.elapsed.Seconds()
	fmt.Fprintf(stdout, "knock-flood: %s mode, %s to %s port(s) %s from %s: sent %d packets in %.3fs = %.0f pps (%d send errors)\n",
		c.mode, map[uint8]string{protoTCP: "TCP SYN", protoUDP: "UDP"}[c.proto], c.dst, joinPorts(c.ports), c.prefix,
		res.sent, res.elapsed.Seconds(), pps, res.errors)
	fmt.Fprintf(stdout, "sent=%d elapsed_s=%.3f pps=%.0f errors=%d\n", res.sent, res.elapsed.Seconds(), pps, res.errors)
	return 0
}

func joinPorts(p []uint16) string {
	s := make([]string, len(p))
	for i, v := range p {
		s[i] = strconv.Itoa(int(v))
	}
	return strings.Join(s, ",")
}

type floodResult struct {
	sent, errors uint64
	elapsed      time.Duration
}

// flood sends until c.count packets went out, c.duration passed, or
// SIGINT/SIGTERM.
func flood(c *floodConfig, stderr io.Writer) (floodResult, error) {
	var (
		ifc            *net.Interface
		srcMAC, dstMAC [6]byte
		err            error
	)
	if c.mode == "packet" {
		if c.iface != "" {
			ifc, err = net.InterfaceByName(c.iface)
		} else {
			ifc, err = interfaceFor(c.dst)
		}
		if err != nil {
			return floodResult{}, err
		}
		if ifc.Flags&net.FlagLoopback == 0 {
			copy(srcMAC[:], ifc.HardwareAddr)
			var mac net.HardwareAddr
			if c.dstMAC != "" {
				mac, err = net.ParseMAC(c.dstMAC)
			} else {
				mac, err = resolveMAC(c.dst, ifc.Name)
			}
			if err != nil {
				return floodResult{}, err
			}
			if len(mac) != 6 {
				return floodResult{}, fmt.Errorf("MAC %s: want 6 bytes", mac)
			}
			copy(dstMAC[:], mac)
		}
	}
	seed := c.seed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	r := rng(seed | 1)
	var payload []byte
	if c.proto == protoUDP {
		payload = base64Payload(&r, c.b64)
	}
	tmpl, err := newTemplate(c.mode == "packet", srcMAC, dstMAC, c.proto, c.dst, payload)
	if err != nil {
		return floodResult{}, err
	}
	picker, err := newSourcePicker(c.prefix)
	if err != nil {
		return floodResult{}, err
	}
	var s *sender
	if c.mode == "packet" {
		s, err = newPacketSender(ifc, dstMAC, c.batch, tmpl.size())
	} else {
		s, err = newRawSender(c.dst, c.batch, tmpl.size())
	}
	if err != nil {
		return floodResult{}, err
	}
	defer s.close()

	var stop atomic.Bool
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	go func() {
		if _, ok := <-sigs; ok {
			stop.Store(true)
		}
	}()

	var res floodResult
	portIdx := 0
	start := time.Now()
	deadline := start.Add(c.duration)
	for res.sent < c.count && !stop.Load() {
		now := time.Now()
		if !now.Before(deadline) {
			break
		}
		n := uint64(c.batch)
		if left := c.count - res.sent; left < n {
			n = left
		}
		if c.rate > 0 {
			allowed := uint64(float64(c.rate)*now.Sub(start).Seconds()) + 1
			if allowed <= res.sent {
				next := start.Add(time.Duration(float64(res.sent) / float64(c.rate) * float64(time.Second)))
				if next.After(deadline) {
					next = deadline
				}
				time.Sleep(next.Sub(now))
				continue
			}
			n = min(n, allowed-res.sent)
		}
		for i := range int(n) {
			x := r.next()
			src := picker.pick(uint32(x))
			sport := uint16(x>>32)%(65535-1024) + 1024
			dport := c.ports[portIdx]
			if portIdx++; portIdx == len(c.ports) {
				portIdx = 0
			}
			s.setLen(i, tmpl.build(s.slot(i), src, sport, dport, uint32(r.next()), uint16(x>>48)))
		}
		k, err := s.send(int(n))
		if err != nil {
			if errors.Is(err, unix.ENOBUFS) || errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
				res.errors++
				time.Sleep(50 * time.Microsecond)
				continue
			}
			res.elapsed = time.Since(start)
			return res, fmt.Errorf("sendmmsg: %w", err)
		}
		res.sent += uint64(k)
	}
	res.elapsed = time.Since(start)
	return res, nil
}

// base64Payload is n random characters of the base64 alphabet, what passes
// an SPA daemon's cheap checks and makes it compute an HMAC (fwknop's
// costliest refusal), or one zero byte for n = 0. One payload serves a
// whole flood: what a daemon spends on a packet does not depend on which
// base64 characters it holds.
func base64Payload(r *rng, n int) []byte {
	if n == 0 {
		return []byte{0}
	}
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	p := make([]byte, n)
	for i := range p {
		p[i] = alphabet[r.next()%uint64(len(alphabet))]
	}
	return p
}
