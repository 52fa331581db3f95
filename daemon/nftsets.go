package daemon

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/doorward/doorward/actions/journal"
	"github.com/doorward/doorward/actions/nft"
	"github.com/doorward/doorward/config/knockd"
	"github.com/doorward/doorward/formats/nftset"
)

// liveSets is the engine's nftables backend in a live daemon. Its netlink
// socket is opened at start-up when the config's doors or the journal's
// leftovers name a set (before recovery, which deletes leftovers), or by
// the first reload that adds such a door; a daemon without Nft_Set doors
// never opens one.
type liveSets struct {
	mu sync.Mutex
	b  *nft.Backend
}

// needsSets reports whether cfg or the doors a previous run left open
// use nftables sets.
func needsSets(cfg *knockd.Config, left []journal.Entry) bool {
	for _, d := range cfg.Doors {
		if !d.NftSet.IsZero() || !d.NftSet6.IsZero() {
			return true
		}
	}
	for _, e := range left {
		if e.Set != "" {
			return true
		}
	}
	return false
}

func (s *liveSets) backend() (*nft.Backend, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.b == nil {
		b, err := nft.Open()
		if err != nil {
			return nil, err
		}
		s.b = b
	}
	return s.b, nil
}

func (s *liveSets) Add(r nftset.Ref, addr netip.Addr, timeout time.Duration) error {
	b, err := s.backend()
	if err != nil {
		return err
	}
	return b.Add(r, addr, timeout)
}

func (s *liveSets) Delete(r nftset.Ref, addr netip.Addr) error {
	b, err := s.backend()
	if err != nil {
		return err
	}
	return b.Delete(r, addr)
}

// ensure checks (and creates where missing) every set cfg's doors name,
// each error with its door's file:line, so a config whose sets cannot
// work is refused at start and on reload, not at the first knock.
func (s *liveSets) ensure(cfg *knockd.Config) error {
	var errs []error
	for _, d := range cfg.Doors {
		for i, r := range [2]nftset.Ref{d.NftSet, d.NftSet6} {
			if r.IsZero() {
				continue
			}
			b, err := s.backend()
			if err == nil {
				err = b.Ensure(r, i == 1)
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: [%s]: %w", d.Pos, d.Name, err))
			}
		}
	}
	return errors.Join(errs...)
}

// close closes the socket; elements stay and expire by their timeouts.
func (s *liveSets) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.b != nil {
		s.b.Close()
		s.b = nil
	}
}
