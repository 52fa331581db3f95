package knockdaemon_test

// The spent store's lifecycle (detectors/lifecycle.go): a detector opens
// its file in Commit, once its config is accepted, and nowhere else; a
// store that cannot be opened rejects the config, and a detector without
// its store accepts no knock.

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/doorward/doorward/actions/filestore"
	"github.com/doorward/doorward/detectors"
	"github.com/doorward/doorward/detectors/knockdaemon"
)

// spentKnock is the i-th distinct legitimate knock from owner (its own IV).
func spentKnock(t *testing.T, owner netip.Addr, i int) []uint16 {
	enc := newIndep(t, "my_secret_phrase")
	return spell(enc.seal(record(owner, 22, 2, 1), [8]byte{byte(i), byte(i >> 8), 'k'}))
}

// commit is the daemon's step 2 for a rig's detector.
func commit(t *testing.T, r *forgeryRig) error {
	t.Helper()
	c, ok := any(r.det).(detectors.Committer)
	if !ok {
		t.Fatal("the port-span detector is not a detectors.Committer")
	}
	return c.Commit()
}

// TestSpentStoreFailsClosed: a spent store that cannot be opened makes
// Commit fail, naming the file, so the daemon rejects the config; and the
// detector accepts no knock without it. It used to fall back to a store
// in memory, so after a restart every knock it accepted could be replayed.
func TestSpentStoreFailsClosed(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(file, knockdaemon.SpentFile) // ENOTDIR, even for root
	r := newForgeryRig(t, knockdaemon.Options{SpentPath: path})
	defer r.det.Close()
	if c, ok := any(r.det).(detectors.Committer); ok {
		err := c.Commit()
		// The state-file rules check the directory first, so the error
		// names it (the store's own path when the directory is fine).
		if err == nil || !strings.Contains(err.Error(), file) || !strings.Contains(err.Error(), "not a directory") {
			t.Errorf("Commit: %v, want an error naming %s", err, file)
		}
	}
	owner := netip.MustParseAddr("10.1.1.1")
	r.det.Expire(r.now)
	r.send(owner, spentKnock(t, owner, 1))
	if len(r.opened) != 0 {
		t.Errorf("a knock opened without its spent store: %+v", r.opened)
	}
	if st := r.det.Stats("ssh"); st.Refused != 1 {
		t.Errorf("refused %d knocks, want 1", st.Refused)
	}
}

// TestSpentOpenedByCommit: building a detector (a config check, a reload
// that is then rejected), its ticks and its packets create no file; Commit
// does, at the size the doors need.
func TestSpentOpenedByCommit(t *testing.T) {
	path := filepath.Join(t.TempDir(), knockdaemon.SpentFile)
	r := newForgeryRig(t, knockdaemon.Options{SpentPath: path})
	defer r.det.Close()
	owner := netip.MustParseAddr("10.1.1.1")
	r.det.Expire(r.now)
	r.send(owner, spentKnock(t, owner, 1))
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("the spent store exists before Commit: %v", err)
	}
	if len(r.opened) != 0 {
		t.Errorf("a knock opened before Commit: %+v", r.opened)
	}
	if err := commit(t, r); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatalf("Commit did not open the store: %v", err)
	}
	if want := int64(knockdaemon.DefaultSpentKnocks * 2 * 24); fi.Size() != want {
		t.Errorf("store is %d bytes, want %d", fi.Size(), want)
	}
	r.send(owner, spentKnock(t, owner, 2))
	if len(r.opened) != 1 {
		t.Errorf("a knock after Commit opened %d times, want 1", len(r.opened))
	}
}

// TestSpentReload: a reload's detector commits (opening the file again,
// resized if Spent_Knocks changed), adopts the running one and the
// running one is closed. Every knock the store still has room for stays
// spent, the newest first when it shrinks, the file is the same one when
// the size is, and the new detector records durably after the old one is
// closed.
func TestSpentReload(t *testing.T) {
	owner := netip.MustParseAddr("10.1.1.1")
	conf := func(knocks int) string { return forgeryConf + fmt.Sprintf("\tSpent_Knocks = %d\n", knocks) }
	for _, tc := range []struct {
		name     string
		from, to int
		// Of knocks 1..4 accepted before the reload and 6 accepted by the
		// old detector after the new one's Commit, those still refused:
		// the store keeps the newest Spent_Knocks.
		spent []int
	}{
		{"same size", 4, 4, []int{2, 3, 4, 6}},
		{"grown", 4, 8, []int{1, 2, 3, 4, 6}},
		{"shrunk", 4, 2, []int{4, 6}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), knockdaemon.SpentFile)
			// The daemon's one Store, which every detector's spent store
			// is a space of.
			store := filestore.New(filestore.Options{Dir: filepath.Dir(path)})
			old := newRig(t, conf(tc.from), knockdaemon.Options{Store: store, SpentPath: path})
			if err := commit(t, old); err != nil {
				t.Fatal(err)
			}
			for i := 1; i <= 4; i++ {
				old.send(owner, spentKnock(t, owner, i))
			}
			if len(old.opened) != 4 {
				t.Fatalf("before the reload %d knocks opened, want 4", len(old.opened))
			}
			before, _ := os.Stat(path)

			r := newRig(t, conf(tc.to), knockdaemon.Options{Store: store, SpentPath: path})
			if err := commit(t, r); err != nil {
				t.Fatal(err)
			}
			// A knock the running detector accepts between the new one's
			// Commit and its Adopt is spent for the new one too.
			old.opened = nil
			old.send(owner, spentKnock(t, owner, 6))
			if len(old.opened) != 1 {
				t.Fatalf("knock 6 before Adopt opened %d times, want 1", len(old.opened))
			}
			r.det.Adopt(old.det)
			old.det.Close()
			after, _ := os.Stat(path)
			if tc.from == tc.to && !os.SameFile(before, after) {
				t.Error("a reload at the same size replaced the store's file")
			}
			if want := int64(tc.to * 2 * 24); after.Size() != want {
				t.Errorf("store is %d bytes, want %d", after.Size(), want)
			}
			for _, i := range tc.spent {
				r.opened = nil
				r.send(owner, spentKnock(t, owner, i))
				if len(r.opened) != 0 {
					t.Errorf("knock %d, replayed after the reload, opened", i)
				}
			}
			r.opened = nil
			r.send(owner, spentKnock(t, owner, 5))
			if len(r.opened) != 1 {
				t.Fatalf("a fresh knock after the reload opened %d times", len(r.opened))
			}
			r.det.Close()

			// A restart: knock 5 was recorded in the file.
			again := newRig(t, conf(tc.to), knockdaemon.Options{Store: filestore.New(filestore.Options{Dir: filepath.Dir(path)}), SpentPath: path})
			defer again.det.Close()
			if err := commit(t, again); err != nil {
				t.Fatal(err)
			}
			again.send(owner, spentKnock(t, owner, 5))
			if len(again.opened) != 0 {
				t.Error("the knock accepted after the reload opened again after a restart")
			}
		})
	}
}
