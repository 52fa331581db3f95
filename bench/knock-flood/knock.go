package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// runKnock is the benchmark's legitimate client: one knock sequence from a
// chosen source address, with the kernel's own TCP (a non-blocking connect
// sends one SYN, closed at once, as knock(1) does) or UDP (one byte). It
// prints the wall-clock time at which the last packet was handed to the
// kernel: "src=ADDR last_hit=UNIXSECONDS.NANOSECONDS".
func runKnock(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("knock-flood knock", flag.ContinueOnError)
	fs.SetOutput(stderr)
	src := fs.String("src", "", "source IPv4 address (must be configured on an interface here)")
	dst := fs.String("dst", "", "target IPv4 address")
	delay := fs.Duration("delay", 0, "pause between knocks")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	fail := func(err error) int { fmt.Fprintln(stderr, "knock-flood knock:", err); return 1 }
	srcAddr, err := netip.ParseAddr(*src)
	if err != nil || !srcAddr.Is4() {
		return fail(fmt.Errorf("-src %q: want an IPv4 address", *src))
	}
	dstAddr, err := netip.ParseAddr(*dst)
	if err != nil {
		return fail(fmt.Errorf("-dst: %w", err))
	}
	if fs.NArg() == 0 || fs.NArg() > 32 {
		return fail(errors.New("give 1 to 32 ports (PORT or PORT:udp)"))
	}
	type knock struct {
		port uint16
		udp  bool
	}
	var knocks []knock
	for _, a := range fs.Args() {
		p, proto, _ := strings.Cut(a, ":")
		n, err := strconv.ParseUint(p, 10, 16)
		if err != nil || n == 0 || (proto != "" && proto != "tcp" && proto != "udp") {
			return fail(fmt.Errorf("bad port %q", a))
		}
		knocks = append(knocks, knock{uint16(n), proto == "udp"})
	}
	if err := checkTarget(dstAddr, currentNetEnv()); err != nil {
		return fail(err)
	}
	var last time.Time
	for i, k := range knocks {
		if i > 0 && *delay > 0 {
			time.Sleep(*delay)
		}
		t, err := knockOnce(srcAddr, dstAddr, k.port, k.udp)
		if err != nil {
			return fail(err)
		}
		last = t
	}
	fmt.Fprintf(stdout, "src=%s last_hit=%d.%09d\n", srcAddr, last.Unix(), last.Nanosecond())
	return 0
}

// knockOnce sends one knock and returns the time just before the send.
func knockOnce(src, dst netip.Addr, port uint16, udp bool) (time.Time, error) {
	typ := unix.SOCK_STREAM
	if udp {
		typ = unix.SOCK_DGRAM
	}
	fd, err := unix.Socket(unix.AF_INET, typ|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return time.Time{}, err
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: src.As4()}); err != nil {
		return time.Time{}, fmt.Errorf("bind %s: %w", src, err)
	}
	to := &unix.SockaddrInet4{Addr: dst.As4(), Port: int(port)}
	t := time.Now()
	if udp {
		err = unix.Sendto(fd, []byte{0}, 0, to)
	} else if err = unix.Connect(fd, to); errors.Is(err, unix.EINPROGRESS) {
		err = nil // the SYN is out
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("knock %s:%d: %w", dst, port, err)
	}
	return t, nil
}
