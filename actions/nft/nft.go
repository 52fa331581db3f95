// Package nft is the native nftables backend of knockd doors: a door opens
// by adding the knocker's address (and, for a set keyed by address and
// port, the door's port) to an nftables set, with the door's open time as
// the element's timeout, so the kernel closes the door by itself even if
// the daemon is killed or the host loses power; closing deletes the
// element early.
//
// It talks netlink itself (github.com/google/nftables), never runs nft: a
// door needs no shell, and the one netlink socket is opened at start-up,
// before the daemon gives up what it does not need.
//
// What it touches in the admin's ruleset: the named sets, and only them.
// It creates a set that is missing (type by family and port, "flags
// timeout"), in a table that must exist: a table made by the daemon would
// hold no chain that references the set, so the door would silently do
// nothing (docs/nftables.md). It never creates, changes or deletes a table,
// a chain, a rule or another set, and deletes only the elements it added.
package nft

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/doorward/doorward/formats/nftset"
	"github.com/google/nftables"
	"golang.org/x/sys/unix"
)

// Backend is one netlink connection to nftables. Safe for concurrent use:
// the engine adds from worker goroutines while extending from its loop.
type Backend struct {
	mu   sync.Mutex
	conn *nftables.Conn
	dial func() (*nftables.Conn, error)
}

// Open opens the netlink socket now, in the current network namespace, so
// the daemon can drop privileges it needs only to open sockets.
func Open() (*Backend, error) {
	return open(func() (*nftables.Conn, error) { return nftables.New(nftables.AsLasting()) })
}

func open(dial func() (*nftables.Conn, error)) (*Backend, error) {
	c, err := dial()
	if err != nil {
		return nil, fmt.Errorf("nftables: %w", err)
	}
	return &Backend{conn: c, dial: dial}, nil
}

// Close closes the socket. Elements already added stay, and expire on
// their own.
func (b *Backend) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.conn == nil {
		return nil
	}
	err := b.conn.CloseLasting()
	b.conn = nil
	return err
}

// maxTimeout bounds an element's timeout: far beyond any door's open
// time, and well inside what the kernel converts to jiffies on every
// architecture, so a huge Cmd_Timeout fails here with a clear message
// rather than with the kernel's ERANGE.
const maxTimeout = 49 * 24 * time.Hour

// Ensure checks that r exists with a type that holds addresses of the
// family v6 says (and r's port) and "flags timeout", and creates it if it
// is missing. Its table must exist.
func (b *Backend) Ensure(r nftset.Ref, v6 bool) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.retry(func() error { return b.ensure(r, v6) })
}

func (b *Backend) ensure(r nftset.Ref, v6 bool) error {
	want := keyType(v6, r.Port != 0)
	tab := table(r)
	s, err := b.conn.GetSetByName(tab, r.Set)
	if err == nil {
		switch {
		case s.KeyType.Bytes != want.Bytes || s.IsMap || s.Interval:
			return fmt.Errorf("nftables set %s: has type %s, want %s", r, s.KeyType.Name, want.Name)
		case !s.HasTimeout:
			return fmt.Errorf("nftables set %s: has no \"flags timeout\", so its elements cannot expire: add it to the set in your ruleset", r)
		}
		return nil
	}
	if !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("nftables set %s: %w", r, err)
	}
	if _, err := b.conn.ListTableOfFamily(r.Table, tab.Family); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("nftables set %s: table %s %s does not exist: load your ruleset first, with a chain that accepts addresses in @%s (docs/nftables.md)", r, r.Family, r.Table, r.Set)
		}
		return fmt.Errorf("nftables set %s: %w", r, err)
	}
	ns := &nftables.Set{Table: tab, Name: r.Set, KeyType: want, HasTimeout: true}
	if err := b.conn.AddSet(ns, nil); err != nil {
		return fmt.Errorf("nftables set %s: %w", r, err)
	}
	if err := b.conn.Flush(); err != nil {
		return fmt.Errorf("nftables set %s: creating it: %w", r, err)
	}
	return nil
}

// Add puts addr in r for timeout, or, if it is there already, restarts its
// timeout: one netlink batch (add, delete, add), which the kernel applies
// whole or not at all, so an open door is never seen closed in between.
// Adding first makes the delete valid whether or not the element was
// there (an element may have expired a moment before an extension). The
// kernel's own "update the timeout of an existing element" came only in
// Linux 6.10; this works on every kernel with element timeouts.
func (b *Backend) Add(r nftset.Ref, addr netip.Addr, timeout time.Duration) error {
	if timeout < time.Second || timeout > maxTimeout {
		return fmt.Errorf("nftables set %s: timeout %v outside 1s..%v", r, timeout, maxTimeout)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	err := b.retry(func() error {
		err := b.put(r, addr, timeout, true)
		if errors.Is(err, unix.ENOENT) {
			// The set went away (the admin loaded a ruleset that does not
			// declare it): make it again, in its table, once.
			if err := b.ensure(r, addr.Is6()); err != nil {
				return err
			}
			err = b.put(r, addr, timeout, false)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("nftables set %s: adding %s: %w", r, addr, err)
	}
	return nil
}

// put sends one batch that adds addr to r with timeout; with refresh, the
// batch is add, delete, add, which restarts the timeout of an element that
// was there (and the first add makes the delete valid if it was not).
func (b *Backend) put(r nftset.Ref, addr netip.Addr, timeout time.Duration, refresh bool) error {
	s := set(r, addr.Is6())
	add := []nftables.SetElement{{Key: Key(addr, r.Port), Timeout: timeout}}
	if err := b.conn.SetAddElements(s, add); err != nil {
		return err
	}
	if refresh {
		if err := b.conn.SetDeleteElements(s, []nftables.SetElement{{Key: Key(addr, r.Port)}}); err != nil {
			return err
		}
		if err := b.conn.SetAddElements(s, add); err != nil {
			return err
		}
	}
	return b.conn.Flush()
}

// Delete removes addr from r. An element that is no longer there (it
// expired, or the admin flushed the set) is no error: the door is shut
// either way.
func (b *Backend) Delete(r nftset.Ref, addr netip.Addr) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	err := b.retry(func() error {
		if err := b.conn.SetDeleteElements(set(r, addr.Is6()), []nftables.SetElement{{Key: Key(addr, r.Port)}}); err != nil {
			return err
		}
		err := b.conn.Flush()
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("nftables set %s: deleting %s: %w", r, addr, err)
	}
	return nil
}

// retry runs op, and once more on a new socket if it failed: a socket the
// kernel closed (ENOBUFS after an overrun, a namespace gone) fails every
// later call, and each op is safe to repeat. An error the kernel answered
// with comes back the same the second time.
func (b *Backend) retry(op func() error) error {
	if b.conn == nil {
		return errors.New("nftables: connection closed")
	}
	err := op()
	if err == nil {
		return nil
	}
	c, derr := b.dial()
	if derr != nil {
		return errors.Join(err, fmt.Errorf("reconnecting: %w", derr))
	}
	b.conn.CloseLasting()
	b.conn = c
	return op()
}

// Key is a set element's key: the address in network order, then, for a
// set of address . port, the port in network order padded to the 4-byte
// register every field of an nftables concatenation takes.
func Key(addr netip.Addr, port uint16) []byte {
	k := addr.Unmap().AsSlice()
	if port != 0 {
		k = binary.BigEndian.AppendUint16(k, port)
		k = append(k, 0, 0)
	}
	return k
}

var (
	addr4Port = nftables.MustConcatSetType(nftables.TypeIPAddr, nftables.TypeInetService)
	addr6Port = nftables.MustConcatSetType(nftables.TypeIP6Addr, nftables.TypeInetService)
)

// keyType is the type of a set of v6 (or v4) addresses, with or without a
// port.
func keyType(v6, port bool) nftables.SetDatatype {
	switch {
	case v6 && port:
		return addr6Port
	case v6:
		return nftables.TypeIP6Addr
	case port:
		return addr4Port
	}
	return nftables.TypeIPAddr
}

func table(r nftset.Ref) *nftables.Table {
	fam := map[string]nftables.TableFamily{"ip": nftables.TableFamilyIPv4, "ip6": nftables.TableFamilyIPv6, "inet": nftables.TableFamilyINet}[r.Family]
	return &nftables.Table{Name: r.Table, Family: fam}
}

// set is what an element operation needs of r: its table and name, and
// that it has timeouts (so the element's timeout is sent).
func set(r nftset.Ref, v6 bool) *nftables.Set {
	return &nftables.Set{Table: table(r), Name: r.Set, KeyType: keyType(v6, r.Port != 0), HasTimeout: true}
}
