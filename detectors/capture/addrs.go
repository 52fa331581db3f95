package capture

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
)

// LocalAddrs lists the addresses of iface ("" or "any": of every
// interface), without zones, so rules can name this host's addresses the
// way knockd's "dst host" filter does. The list is read once; callers that
// care about address changes must call it again.
func LocalAddrs(iface string) ([]netip.Addr, error) {
	var addrs []net.Addr
	var err error
	if iface == "" || iface == "any" {
		addrs, err = net.InterfaceAddrs()
	} else {
		var ifi *net.Interface
		if ifi, err = net.InterfaceByName(iface); err == nil {
			addrs, err = ifi.Addrs()
		}
	}
	if err != nil {
		return nil, fmt.Errorf("capture %s: %w", iface, err)
	}
	var out []netip.Addr
	for _, a := range addrs {
		var ip net.IP
		switch a := a.(type) {
		case *net.IPNet:
			ip = a.IP
		case *net.IPAddr:
			ip = a.IP
		}
		if ad, ok := netip.AddrFromSlice(ip); ok {
			out = append(out, ad.Unmap())
		}
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return slices.Compact(out), nil
}
