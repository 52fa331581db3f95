package knockd

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
)

// MetricsUnix is the prefix of a Metrics value naming a unix socket.
const MetricsUnix = "unix:"

// checkMetricsAddr validates [options] Metrics without listening, so a
// typo fails --check and a reload with its line instead of at bind time.
// Host names other than localhost are refused: the endpoint must not
// depend on a resolver at start, nor listen on an address that a DNS
// change moves.
func checkMetricsAddr(val string) error {
	if path, ok := strings.CutPrefix(val, MetricsUnix); ok {
		if !filepath.IsAbs(path) || filepath.Clean(path) != path || strings.HasSuffix(path, "/") {
			return fmt.Errorf("%q: a unix socket needs a clean absolute path (unix:/run/doorward/metrics.sock)", val)
		}
		return nil
	}
	host, port, err := net.SplitHostPort(val)
	if err != nil {
		var ae *net.AddrError
		if errors.As(err, &ae) {
			err = errors.New(ae.Err)
		}
		return fmt.Errorf("%q: %v (use host:port, as 127.0.0.1:9732, or unix:/path)", val, err)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("%q: port %q is not a number from 1 to 65535", val, port)
	}
	if host == "" || host == "localhost" {
		return nil
	}
	if a, err := netip.ParseAddr(host); err != nil || a.Zone() != "" {
		return fmt.Errorf("%q: %q is not an IP address (host names other than localhost are not looked up)", val, host)
	}
	return nil
}
