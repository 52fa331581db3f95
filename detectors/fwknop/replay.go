package fwknop

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/doorward/doorward/actions"
	"github.com/doorward/doorward/actions/filestore"
	"github.com/doorward/doorward/detectors"
)

// The replay cache is a Ring token space of the Store: bounded, synced
// before a knock acts, a map lookup per Spend whatever its size, and kept
// across restarts (fwknopd's digest.cache is an unsynced text file it
// scans line by line).
const (
	// SpentFile is the cache's name in the state directory.
	SpentFile = "fwknop.spent"
	// SpentSize is how many SPA digests it remembers: with aging on, a
	// packet older than MAX_SPA_PACKET_AGE is refused anyway, so this is
	// 65536 accepted packets within two minutes.
	SpentSize = 1 << 16
	// spentSize is the bytes of a digest a ring slot keeps.
	spentSize = 16
)

// replayCache is the detector's hold on the cache: durable for stanzas
// with ENABLE_DIGEST_PERSISTENCE (the default), in memory for the others,
// as fwknopd keeps no replay record for them across restarts.
type replayCache struct {
	durable actions.Tokens
	memory  actions.Tokens
}

// Commit opens the replay cache (detectors.Committer), and, when the
// cache is new (first start), imports the digests of an fwknopd
// digest.cache (DIGEST_FILE), so packets fwknopd accepted are replays here
// too.
func (d *Detector) Commit() error {
	if d.cache != nil {
		return nil
	}
	store := d.store
	if store == nil {
		store = filestore.Memory()
	}
	sp := actions.Space{Name: SpentFile, Layout: actions.Ring, Size: SpentSize, Sync: true}
	durable, info, err := store.Tokens(sp)
	if err != nil {
		return fmt.Errorf("fwknop: replay cache: %w", err)
	}
	memory, _, err := filestore.Memory().Tokens(sp)
	if err != nil {
		durable.Close()
		return fmt.Errorf("fwknop: replay cache: %w", err)
	}
	d.cache = &replayCache{durable: durable, memory: memory}
	if !info.Created || d.opt.Replay {
		return nil
	}
	seen := map[string]bool{}
	for _, s := range d.stanzas {
		if !s.Persist || s.DigestFile == "" || seen[s.DigestFile] {
			continue
		}
		seen[s.DigestFile] = true
		n, err := importDigests(s.DigestFile, durable)
		switch {
		case errors.Is(err, os.ErrNotExist):
		case err != nil:
			d.logf("fwknop: importing %s: %v", s.DigestFile, err)
		default:
			d.logf("fwknop: imported %d digests from fwknopd's %s into the replay cache", n, s.DigestFile)
		}
	}
	return nil
}

// Close releases the replay cache.
func (d *Detector) Close() error {
	c := d.cache
	d.cache = nil
	if c == nil {
		return nil
	}
	return errors.Join(c.durable.Close(), c.memory.Close())
}

// importDigests spends every digest of an fwknopd digest.cache in t, at
// the time the line says it was created. Lines (server/replay_cache.c):
//
//	<base64 SHA-256> <proto> <src ip> <src port> <dst ip> <dst port> <created>
//
// with '#' comments; a line that does not read is skipped, as fwknopd
// skips it.
func importDigests(path string, t actions.Tokens) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		fs := strings.Fields(line)
		if len(fs) != 7 {
			continue
		}
		tok, ok := digestToken(fs[0])
		created, err := strconv.ParseInt(fs[6], 10, 64)
		if !ok || err != nil {
			continue
		}
		if _, err := t.Spend(time.Unix(created, 0), tok[:spentSize]); err != nil {
			return n, err
		}
		n++
	}
	return n, sc.Err()
}

// Adopt takes over a previous detector's state after a reload. The
// durable cache needs nothing (both detectors hold the same space of one
// Store); the memory one of stanzas without digest persistence is swapped
// in, so the old detector's Close closes the new, empty one.
func (d *Detector) Adopt(prev detectors.Detector) {
	old, ok := prev.(*Detector)
	if !ok {
		return
	}
	if old.cache != nil && d.cache != nil {
		old.cache.memory, d.cache.memory = d.cache.memory, old.cache.memory
	}
	byKey := map[string]bool{}
	for i, s := range old.stanzas {
		if i < len(old.expired) && old.expired[i] {
			byKey[s.Key] = true
		}
	}
	for i, s := range d.stanzas {
		d.expired[i] = byKey[s.Key]
	}
}
