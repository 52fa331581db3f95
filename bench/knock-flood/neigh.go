package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"
)

// arpLookup finds the complete entry for ip on device dev in the text of
// /proc/net/arp.
func arpLookup(r io.Reader, ip netip.Addr, dev string) (net.HardwareAddr, bool) {
	sc := bufio.NewScanner(r)
	sc.Scan() // header
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 6 || f[0] != ip.String() || f[5] != dev {
			continue
		}
		flags, err := strconv.ParseUint(strings.TrimPrefix(f[2], "0x"), 16, 32)
		if err != nil || flags&0x2 == 0 { // ATF_COM: resolved
			continue
		}
		mac, err := net.ParseMAC(f[3])
		if err != nil || len(mac) != 6 || bytes.Equal(mac, make([]byte, 6)) {
			continue
		}
		return mac, true
	}
	return nil, false
}

// resolveMAC returns ip's MAC address on dev from the neighbour table. When
// there is no entry yet it sends one UDP datagram to ip's discard port (9)
// to make the kernel resolve it, and waits up to a second.
func resolveMAC(ip netip.Addr, dev string) (net.HardwareAddr, error) {
	lookup := func() (net.HardwareAddr, bool) {
		b, err := os.ReadFile("/proc/net/arp")
		if err != nil {
			return nil, false
		}
		return arpLookup(bytes.NewReader(b), ip, dev)
	}
	if mac, ok := lookup(); ok {
		return mac, nil
	}
	if c, err := net.Dial("udp4", netip.AddrPortFrom(ip, 9).String()); err == nil {
		c.Write([]byte{0})
		c.Close()
	}
	for range 20 {
		time.Sleep(50 * time.Millisecond)
		if mac, ok := lookup(); ok {
			return mac, nil
		}
	}
	return nil, fmt.Errorf("no neighbour entry for %s on %s (pass -dst-mac)", ip, dev)
}

// interfaceFor returns the up interface whose IPv4 subnet contains dst.
func interfaceFor(dst netip.Addr) (*net.Interface, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, err
	}
	for i := range ifs {
		ifc := &ifs[i]
		if ifc.Flags&net.FlagUp == 0 {
			continue
		}
		addrs, _ := ifc.Addrs()
		for _, a := range addrs {
			ipn, ok := a.(*net.IPNet)
			if !ok {
				continue
			}
			if ipn.Contains(net.IP(dst.AsSlice())) {
				return ifc, nil
			}
		}
	}
	return nil, fmt.Errorf("no interface with a subnet containing %s (pass -i)", dst)
}
