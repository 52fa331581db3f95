//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package sequence

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"syscall"
)

// SystemDialer knocks with raw socket calls, exactly like knock 0.8:
// a TCP hit is socket + non-blocking connect + close, which puts one SYN on
// the wire and nothing else (net.Dial would wait for the handshake and
// retransmit the SYN). No SO_LINGER is set, so an already established
// connection (an open port on loopback, say) is closed with a normal FIN.
// A UDP hit is sendto of a single 0x00 byte.
type SystemDialer struct{}

// HitTCP implements Dialer.
func (SystemDialer) HitTCP(dst netip.AddrPort) error {
	fd, sa, err := open(dst, syscall.SOCK_STREAM)
	if err != nil {
		return err
	}
	defer syscall.Close(fd)
	if err := syscall.SetNonblock(fd, true); err != nil {
		return fmt.Errorf("cannot open socket: %w", os.NewSyscallError("setnonblock", err))
	}
	switch err := syscall.Connect(fd, sa); err {
	case nil, syscall.EINPROGRESS:
		return nil
	default:
		return &SendError{Op: "connect", Dst: dst, Err: err}
	}
}

// HitUDP implements Dialer.
func (SystemDialer) HitUDP(dst netip.AddrPort) error {
	fd, sa, err := open(dst, syscall.SOCK_DGRAM)
	if err != nil {
		return err
	}
	defer syscall.Close(fd)
	if err := syscall.Sendto(fd, []byte{0}, 0, sa); err != nil {
		return &SendError{Op: "sendto", Dst: dst, Err: err}
	}
	return nil
}

func open(dst netip.AddrPort, typ int) (int, syscall.Sockaddr, error) {
	addr := dst.Addr()
	family := syscall.AF_INET
	var sa syscall.Sockaddr
	if addr.Is4() {
		sa = &syscall.SockaddrInet4{Port: int(dst.Port()), Addr: addr.As4()}
	} else {
		family = syscall.AF_INET6
		zone, err := zoneID(addr.Zone())
		if err != nil {
			return -1, nil, err
		}
		sa = &syscall.SockaddrInet6{Port: int(dst.Port()), ZoneId: zone, Addr: addr.As16()}
	}
	// Hold ForkLock so that no child started meanwhile inherits the socket.
	syscall.ForkLock.RLock()
	fd, err := syscall.Socket(family, typ, 0)
	if err == nil {
		syscall.CloseOnExec(fd)
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		return -1, nil, fmt.Errorf("cannot open socket: %w", os.NewSyscallError("socket", err))
	}
	return fd, sa, nil
}

// zoneID maps an IPv6 zone ("eth0" or "2") to an interface index.
func zoneID(zone string) (uint32, error) {
	if zone == "" {
		return 0, nil
	}
	if n, err := strconv.ParseUint(zone, 10, 32); err == nil {
		return uint32(n), nil
	}
	ifi, err := net.InterfaceByName(zone)
	if err != nil {
		return 0, fmt.Errorf("IPv6 zone %q: %w", zone, err)
	}
	return uint32(ifi.Index), nil
}
