// Package nftset is the grammar of an nftables set reference, as a door's
// Nft_Set directive writes it and the journal keeps it: "<family> <table>
// <set>", optionally followed by a port for a set typed
// "ipv4_addr . inet_service" (or the ipv6 twin). It lives below config and
// actions because both read it: the config to report a bad value with its
// line, the journal so a door opened before a restart is still closed in
// the set it was opened in.
package nftset

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Ref names one nftables set and, for a set keyed by address and port, the
// port of its elements.
type Ref struct {
	Family string // "ip", "ip6" or "inet"
	Table  string
	Set    string
	Port   uint16 // 0: the set is keyed by address only
}

// maxName is NFT_NAME_MAXLEN - 1: the kernel refuses longer table and set
// names, so a longer one can only fail later, at the first knock.
const maxName = 255

// Parse reads "<family> <table> <set> [<port>]".
func Parse(s string) (Ref, error) {
	f := strings.Fields(s)
	if len(f) != 3 && len(f) != 4 {
		return Ref{}, fmt.Errorf("%q: want \"<family> <table> <set>\" (and a port for a set of address . port), e.g. \"inet filter doorward4\"", s)
	}
	r := Ref{Family: f[0], Table: f[1], Set: f[2]}
	switch r.Family {
	case "ip", "ip6", "inet":
	default:
		return Ref{}, fmt.Errorf("%q: family %q is not ip, ip6 or inet", s, r.Family)
	}
	for _, name := range []string{r.Table, r.Set} {
		if err := checkName(name); err != nil {
			return Ref{}, fmt.Errorf("%q: %w", s, err)
		}
	}
	if len(f) == 4 {
		n, err := strconv.ParseUint(f[3], 10, 16)
		if err != nil || n == 0 {
			return Ref{}, fmt.Errorf("%q: %q is not a port (1-65535)", s, f[3])
		}
		r.Port = uint16(n)
	}
	return r, nil
}

// checkName accepts what nft's scanner takes as an identifier, so a set
// named here can also be written in the admin's ruleset.
func checkName(name string) error {
	if len(name) > maxName {
		return fmt.Errorf("name %.20q… is longer than %d bytes", name, maxName)
	}
	for i, c := range name {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '_':
		case i > 0 && (c >= '0' && c <= '9' || c == '.' || c == '-' || c == '/'):
		default:
			return errors.New("name " + strconv.Quote(name) + " is not an nftables identifier (a letter or '_', then letters, digits, '_', '.', '-', '/')")
		}
	}
	return nil
}

// IsZero reports whether r names no set.
func (r Ref) IsZero() bool { return r == Ref{} }

// For6 reports whether r's family can hold IPv6 addresses (ip6, inet)
// and For4 IPv4 ones (ip, inet).
func (r Ref) For6() bool { return r.Family == "ip6" || r.Family == "inet" }
func (r Ref) For4() bool { return r.Family == "ip" || r.Family == "inet" }

// String is the form Parse reads.
func (r Ref) String() string {
	if r.IsZero() {
		return ""
	}
	s := r.Family + " " + r.Table + " " + r.Set
	if r.Port != 0 {
		s += " " + strconv.Itoa(int(r.Port))
	}
	return s
}
