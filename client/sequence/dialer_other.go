//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package sequence

import (
	"fmt"
	"net/netip"
	"runtime"
)

// SystemDialer would knock with raw sockets; this platform has no
// implementation yet, so every hit fails and the knock is aborted.
type SystemDialer struct{}

// HitTCP implements Dialer.
func (SystemDialer) HitTCP(netip.AddrPort) error { return errUnsupported }

// HitUDP implements Dialer.
func (SystemDialer) HitUDP(netip.AddrPort) error { return errUnsupported }

var errUnsupported = fmt.Errorf("knocking is not supported on %s", runtime.GOOS)
