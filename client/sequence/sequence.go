// Package sequence sends knockd-style knock sequences: one TCP SYN or one UDP
// datagram per port, in order, to one address. It is the library behind the
// default mode of cmd/knock and is compatible with what knockd (and
// doorward's knockd-compatible detector) expects of a client.
//
// Deliberate differences from Debian's knock 0.8, which a caller sees:
//   - The host is resolved once per Knock (per distinct Hit.Host), not once per
//     port, so round-robin DNS cannot spread one sequence over several servers.
//   - Every hit is validated and resolved before the first packet is sent, so a
//     bad third port does not leave a half-sent sequence behind.
//   - Ports outside 1..65535 are rejected; knock 0.8 wraps them (70000 → 4464).
//   - ParseHit accepts "tcp"/"udp" in any case and rejects other protocols;
//     knock 0.8 knocks TCP for anything but the exact lowercase "udp".
package sequence

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Hit is one knock: a packet to Port on Host. Port is a number or a service
// name ("ssh"), looked up for the hit's protocol.
type Hit struct {
	Host string
	Port string
	UDP  bool
}

func (h Hit) proto() string {
	if h.UDP {
		return "udp"
	}
	return "tcp"
}

// Family chooses the address family used for a host.
type Family int

const (
	// AnyFamily uses the first address the resolver returns, like getaddrinfo
	// with AF_UNSPEC (it may be IPv6).
	AnyFamily Family = iota
	IPv4             // only IPv4 addresses (knock -4)
	IPv6             // only IPv6 addresses (knock -6)
)

func (f Family) network() string {
	switch f {
	case IPv4:
		return "ip4"
	case IPv6:
		return "ip6"
	}
	return "ip"
}

func (f Family) String() string {
	switch f {
	case IPv4:
		return "IPv4"
	case IPv6:
		return "IPv6"
	}
	return "any"
}

// Resolver looks up hosts and service names. *net.Resolver implements it.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
	LookupPort(ctx context.Context, network, service string) (int, error)
}

// Dialer sends the packets of a knock.
//
// An error that is (or wraps) a *SendError means the packet may not have gone
// out but the sequence goes on, as in the original client; any other error
// (such as failing to open a socket) aborts the knock.
type Dialer interface {
	// HitTCP sends exactly one SYN to dst: a non-blocking connect that is
	// closed at once, so nothing is retransmitted and no handshake is awaited.
	HitTCP(dst netip.AddrPort) error
	// HitUDP sends one datagram holding a single 0x00 byte to dst.
	HitUDP(dst netip.AddrPort) error
}

// SendError reports a connect or send that failed after the socket was open.
// Knocker ignores these (reporting them to Warn), like knock 0.8 does.
type SendError struct {
	Op  string // "connect" or "sendto"
	Dst netip.AddrPort
	Err error
}

func (e *SendError) Error() string { return fmt.Sprintf("%s %s: %v", e.Op, e.Dst, e.Err) }
func (e *SendError) Unwrap() error { return e.Err }

// Knocker sends knock sequences. The zero value is ready to use: any family,
// no delay, the system resolver and raw sockets.
type Knocker struct {
	Family Family
	// Delay is slept after every hit, including the last (as knock 0.8 does).
	Delay time.Duration

	Resolver Resolver                                         // nil: net.DefaultResolver
	Dialer   Dialer                                           // nil: SystemDialer
	Sleep    func(ctx context.Context, d time.Duration) error // nil: a timer that honours ctx

	// Trace, if non-nil, gets one "hitting tcp <ip>:<port>" line per hit
	// (IPv6 without brackets, as knock -v prints it).
	Trace io.Writer
	// Warn, if non-nil, gets the ignored send errors.
	Warn io.Writer
}

type target struct {
	dst netip.AddrPort
	udp bool
}

// Knock sends hits in order. It first resolves every host (once per distinct
// host) and port, and sends nothing if any of them fails.
func (k *Knocker) Knock(ctx context.Context, hits []Hit) error {
	targets, err := k.plan(ctx, hits)
	if err != nil {
		return err
	}
	d := k.Dialer
	if d == nil {
		d = SystemDialer{}
	}
	sleep := k.Sleep
	if sleep == nil {
		sleep = sleepCtx
	}
	for _, t := range targets {
		if err := ctx.Err(); err != nil {
			return err
		}
		proto := "tcp"
		if t.udp {
			proto = "udp"
		}
		if k.Trace != nil {
			fmt.Fprintf(k.Trace, "hitting %s %s:%d\n", proto, t.dst.Addr(), t.dst.Port())
		}
		var err error
		if t.udp {
			err = d.HitUDP(t.dst)
		} else {
			err = d.HitTCP(t.dst)
		}
		if err != nil {
			var se *SendError
			if !errors.As(err, &se) {
				return err
			}
			if k.Warn != nil {
				fmt.Fprintf(k.Warn, "warning: %v\n", err)
			}
		}
		if k.Delay > 0 {
			if err := sleep(ctx, k.Delay); err != nil {
				return err
			}
		}
	}
	return nil
}

func (k *Knocker) plan(ctx context.Context, hits []Hit) ([]target, error) {
	r := k.Resolver
	if r == nil {
		r = net.DefaultResolver
	}
	addrs := make(map[string]netip.Addr)
	targets := make([]target, 0, len(hits))
	for _, h := range hits {
		addr, ok := addrs[h.Host]
		if !ok {
			var err error
			if addr, err = k.resolveHost(ctx, r, h.Host); err != nil {
				return nil, err
			}
			addrs[h.Host] = addr
		}
		port, err := resolvePort(ctx, r, h)
		if err != nil {
			return nil, err
		}
		targets = append(targets, target{netip.AddrPortFrom(addr, port), h.UDP})
	}
	return targets, nil
}

func (k *Knocker) resolveHost(ctx context.Context, r Resolver, host string) (netip.Addr, error) {
	if host == "" {
		return netip.Addr{}, errors.New("cannot resolve hostname: empty host")
	}
	list, err := r.LookupNetIP(ctx, k.Family.network(), host)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("cannot resolve hostname %q: %w", host, err)
	}
	for _, a := range list {
		a = a.Unmap()
		switch {
		case !a.IsValid():
		case k.Family == IPv4 && !a.Is4():
		case k.Family == IPv6 && !a.Is6():
		default:
			return a, nil
		}
	}
	if k.Family == AnyFamily {
		return netip.Addr{}, fmt.Errorf("cannot resolve hostname %q: no address", host)
	}
	return netip.Addr{}, fmt.Errorf("cannot resolve hostname %q: no %v address", host, k.Family)
}

// resolvePort turns h.Port into a port number: numbers are checked against
// 1..65535, anything else is looked up as a service name for h's protocol.
func resolvePort(ctx context.Context, r Resolver, h Hit) (uint16, error) {
	if p, numeric, err := numericPort(h.Port); numeric {
		return p, err
	}
	n, err := r.LookupPort(ctx, h.proto(), h.Port)
	if err != nil {
		return 0, fmt.Errorf("unknown port %q: %w", h.Port, err)
	}
	if n < 1 || n > 65535 {
		return 0, fmt.Errorf("invalid port %q: service resolves to %d", h.Port, n)
	}
	return uint16(n), nil
}

// numericPort reports whether s is meant as a number (digits, optionally
// signed) and, if so, its value, which must be in 1..65535.
func numericPort(s string) (port uint16, numeric bool, err error) {
	if s == "" {
		return 0, true, errors.New("missing port")
	}
	digits := s
	if s[0] == '+' || s[0] == '-' {
		digits = s[1:]
	}
	if digits == "" || strings.Trim(digits, "0123456789") != "" {
		return 0, false, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 65535 {
		return 0, true, fmt.Errorf("invalid port %q: must be 1-65535", s)
	}
	return uint16(n), true, nil
}

// ParseHit parses a knockd-style "port[:proto]" argument for host. The
// protocol is "tcp" (the default) or "udp" in any case; anything else is an
// error, where knock 0.8 silently knocks TCP. A numeric port must be in
// 1..65535; a service name is only checked when the hit is knocked.
func ParseHit(host, arg string) (Hit, error) {
	h := Hit{Host: host, Port: arg}
	if port, proto, ok := strings.Cut(arg, ":"); ok {
		h.Port = port
		switch strings.ToLower(proto) {
		case "tcp":
		case "udp":
			h.UDP = true
		default:
			return Hit{}, fmt.Errorf("unknown protocol %q in %q", proto, arg)
		}
	}
	if h.Port == "" {
		return Hit{}, fmt.Errorf("missing port in %q", arg)
	}
	if _, numeric, err := numericPort(h.Port); numeric && err != nil {
		return Hit{}, err
	}
	return h, nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
