package knockd

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
)

// stateOption reads the State keys. The URL is checked for its form only
// (scheme, no password); the backend parses it whole at --check and start,
// and reads the password file then: this package imports no Redis client.
func (p *parser) stateOption(canon, val string) error {
	o := &p.cfg.Options
	switch canon {
	case "State":
		u, err := url.Parse(val)
		if err != nil {
			return fmt.Errorf("%q: %v", val, err)
		}
		switch u.Scheme {
		case "redis", "rediss", "unix":
		default:
			return fmt.Errorf("%q: want redis://host:port/db, rediss://… or unix:///path?db=0", val)
		}
		if _, set := u.User.Password(); set {
			return errors.New("a password in the URL is readable by everyone who reads the config; put it in State_Password_File")
		}
		o.State = val
	case "State_Password_File":
		if val == "" {
			return errors.New("empty path")
		}
		o.StatePasswordFile = val
	case "State_Prefix":
		if val == "" {
			return errors.New("empty prefix")
		}
		o.StatePrefix = val
	case "State_Sentinel":
		var addrs []string
		for a := range strings.SplitSeq(val, ",") {
			a = strings.TrimSpace(a)
			if _, _, err := net.SplitHostPort(a); err != nil {
				return fmt.Errorf("%q: %v (use host:port,host:port)", a, err)
			}
			addrs = append(addrs, a)
		}
		o.StateSentinel = addrs
	case "State_Sentinel_Master":
		if val == "" {
			return errors.New("empty master name")
		}
		o.StateSentinelMaster = val
	}
	return nil
}
