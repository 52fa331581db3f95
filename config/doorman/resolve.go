package doorman

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"
)

// ServicesFile is where service names are looked up.
const ServicesFile = "/etc/services"

// SystemResolver resolves service names from /etc/services (read once, at
// the first lookup; never DNS) and host names through the system resolver,
// taking the first IPv4 address as gethostbyname's h_addr_list[0].
func SystemResolver() Resolver {
	var services map[string]int
	var servErr error
	return Resolver{
		Service: func(name string) (int, error) {
			if services == nil && servErr == nil {
				services, servErr = ReadServices(ServicesFile)
			}
			if servErr != nil {
				return 0, servErr
			}
			port, ok := services[name]
			if !ok {
				return 0, errors.New("not in " + ServicesFile)
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

// ReadServices reads an /etc/services file into name → port, as
// getservbyname(name, NULL) sees it: names and aliases, case-sensitive,
// any protocol, the first line that names a service wins.
func ReadServices(path string) (map[string]int, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("services: %w", unwrapPath(err))
	}
	defer f.Close()
	return ParseServices(bufio.NewScanner(f))
}

// ParseServices is ReadServices on a scanner of lines.
func ParseServices(sc *bufio.Scanner) (map[string]int, error) {
	out := map[string]int{}
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		fs := strings.Fields(line)
		if len(fs) < 2 {
			continue
		}
		portText, _, ok := strings.Cut(fs[1], "/")
		port, err := strconv.Atoi(portText)
		if !ok || err != nil || port < 0 || port > 65535 {
			continue
		}
		for _, name := range append(fs[:1:1], fs[2:]...) {
			if _, seen := out[name]; !seen {
				out[name] = port
			}
		}
	}
	return out, sc.Err()
}
