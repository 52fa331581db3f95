package redisstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/doorward/doorward/internal/trust"
)

// Options say which Redis holds the shared state and how to reach it.
type Options struct {
	// URL is [options] State, as go-redis's ParseURL reads it:
	// redis://host:6379/0, rediss:// for TLS, unix:///path?db=0. It may
	// not carry a password: that goes in PasswordFile.
	URL string
	// PasswordFile holds the password (its first line), in a file only
	// root (or the daemon's user) may write and no one else may read.
	PasswordFile string
	// Prefix goes before every key, so several fleets (or other programs)
	// can share one Redis; "" is DefaultPrefix.
	Prefix string
	// Sentinels are Sentinel addresses (host:port): the master named
	// Master is asked of them, and URL's host is then unused (its
	// database, user and TLS still apply).
	Sentinels []string
	Master    string
	// Timeout bounds every operation; 0 is DefaultTimeout.
	Timeout time.Duration
}

const (
	// DefaultPrefix is the key prefix without State_Prefix.
	DefaultPrefix = "doorward:"
	// DefaultTimeout bounds one operation, connecting included: a spend
	// runs on the packet path, so a Redis that does not answer costs a
	// knock this much once, and nothing after (the Store is then down
	// and refuses at once until a ping succeeds).
	DefaultTimeout = 500 * time.Millisecond
	// maxPassword bounds the password file read.
	maxPassword = 4096
)

// Check validates o without connecting: the URL parses, carries no
// password, the password file is trusted and private, Sentinel addresses
// are host:port. knockd --check and the start run it.
func (o Options) Check() error {
	_, err := o.redisOptions()
	return err
}

// redisOptions is o as go-redis options, the password read from its file.
func (o Options) redisOptions() (*redis.Options, error) {
	ro, err := redis.ParseURL(o.URL)
	if err != nil {
		return nil, fmt.Errorf("State %q: %w", o.URL, err)
	}
	if ro.Password != "" {
		return nil, fmt.Errorf("State %q: a password in the URL is readable by everyone who reads the config; put it in State_Password_File", redact(o.URL))
	}
	if o.PasswordFile != "" {
		pw, err := readPassword(o.PasswordFile)
		if err != nil {
			return nil, fmt.Errorf("State_Password_File: %w", err)
		}
		ro.Password = pw
	}
	if len(o.Sentinels) > 0 && o.Master == "" {
		return nil, errors.New("State_Sentinel needs State_Sentinel_Master, the name of the master the sentinels watch")
	}
	if len(o.Sentinels) == 0 && o.Master != "" {
		return nil, errors.New("State_Sentinel_Master without State_Sentinel")
	}
	for _, a := range o.Sentinels {
		if _, _, err := net.SplitHostPort(a); err != nil {
			return nil, fmt.Errorf("State_Sentinel %q: %v (use host:port,host:port)", a, err)
		}
	}
	t := o.Timeout
	if t <= 0 {
		t = DefaultTimeout
	}
	ro.DialTimeout, ro.ReadTimeout, ro.WriteTimeout = t, t, t
	ro.PoolTimeout = t
	// One retry: a pooled connection that a Redis restart broke is
	// found out by the first command after it, which then runs on a new
	// one instead of refusing a knock. The operation's context bounds
	// both tries.
	ro.MaxRetries = 1
	ro.DialerRetries = 1      // the Store's ping retries, once a second; a knock does not wait for five dials
	ro.DisableIdentity = true // CLIENT SETINFO: a round trip per connection for nothing we use
	ro.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	return ro, nil
}

// quiet silences go-redis's own logger, which is the library's global
// (a line per failed dial, on stderr): the Store logs each outage once,
// through the daemon's log.
var quiet sync.Once

type discard struct{}

func (discard) Printf(context.Context, string, ...any) {}

// client connects nothing yet: go-redis dials on the first command and
// redials by itself after the server comes back.
func (o Options) client() (redis.UniversalClient, error) {
	ro, err := o.redisOptions()
	if err != nil {
		return nil, err
	}
	quiet.Do(func() { redis.SetLogger(discard{}) })
	if len(o.Sentinels) == 0 {
		return redis.NewClient(ro), nil
	}
	return redis.NewFailoverClient(&redis.FailoverOptions{
		MasterName: o.Master, SentinelAddrs: o.Sentinels,
		Username: ro.Username, Password: ro.Password, DB: ro.DB, TLSConfig: ro.TLSConfig,
		DialTimeout: ro.DialTimeout, ReadTimeout: ro.ReadTimeout, WriteTimeout: ro.WriteTimeout,
		PoolTimeout: ro.PoolTimeout, MaxRetries: ro.MaxRetries, DialerRetries: ro.DialerRetries, DisableIdentity: true,
	}), nil
}

// readPassword reads the first line of path by the state-file rules
// (owner, no group or other write, no symbolic link) and refuses a file
// group or others may read: it is a secret.
func readPassword(path string) (string, error) {
	if err := trust.Private(path); err != nil {
		return "", err
	}
	data, err := trust.ReadFile(path, maxPassword)
	if err != nil {
		return "", err
	}
	if len(data) > maxPassword {
		return "", fmt.Errorf("%s: more than %d bytes", path, maxPassword)
	}
	line, _, _ := bytes.Cut(data, []byte("\n"))
	pw := strings.TrimSuffix(string(line), "\r")
	if pw == "" {
		return "", fmt.Errorf("%s: empty", path)
	}
	return pw, nil
}

// redact hides a URL's password in an error message.
func redact(u string) string {
	scheme, rest, ok := strings.Cut(u, "://")
	if !ok {
		return u
	}
	userinfo, host, ok := strings.Cut(rest, "@")
	if !ok {
		return u
	}
	user, _, _ := strings.Cut(userinfo, ":")
	return scheme + "://" + user + ":xxxxx@" + host
}

// Addr names the server for the log: the URL's host or socket, or the
// sentinels and master.
func (o Options) Addr() string {
	if len(o.Sentinels) > 0 {
		return "sentinel " + strings.Join(o.Sentinels, ",") + " master " + o.Master
	}
	return redact(o.URL)
}
