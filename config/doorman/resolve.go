package doorman

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"time"

	"github.com/doorward/doorward/formats/services"
)

// SystemResolver resolves service names from /etc/services (read once, at
// the first lookup; never DNS) and host names through the system resolver,
// taking the first IPv4 address as gethostbyname's h_addr_list[0].
func SystemResolver() Resolver {
	var byName map[string]int
	var servErr error
	return Resolver{
		Service: func(name string) (int, error) {
			if byName == nil && servErr == nil {
				byName, servErr = services.Read(services.File)
			}
			if servErr != nil {
				return 0, servErr
			}
			port, ok := byName[name]
			if !ok {
				return 0, errors.New("not in " + services.File)
			}
			return port, nil
		},
		Host: func(name string) (netip.Addr, error) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip4", name)
			if err != nil {
				return netip.Addr{}, err
			}
			if len(addrs) == 0 {
				return netip.Addr{}, errors.New("no IPv4 address")
			}
			return addrs[0].Unmap(), nil
		},
	}
}
