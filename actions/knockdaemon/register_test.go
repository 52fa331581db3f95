package knockdaemon

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/doorward/doorward/actions"
	"github.com/doorward/doorward/actions/filestore"
	"github.com/doorward/doorward/actions/journal"
	"github.com/doorward/doorward/actions/state"
	"github.com/doorward/doorward/config/knockd"
)

// TestKnockdaemonActionLive: outside replay the action keeps its state in
// the StateCache file and its delayed commands in the journal, until they
// have run.
func TestKnockdaemonActionLive(t *testing.T) {
	dir := t.TempDir()
	cache := filepath.Join(dir, "state.json")
	cfg, err := knockd.Parse("k.conf", []byte(`[ssh]
	Type = knockdaemon
[close]
	Type = action
	Condition = ! state(IP,seen)
	State = state(IP,seen)++
	Delay = 60
	System = close IP
`))
	if err != nil {
		t.Fatal(err)
	}
	jr, _, err := journal.Open(filepath.Join(dir, "statedir"))
	if err != nil {
		t.Fatal(err)
	}
	defer jr.Shutdown()
	var ran []string
	var mu sync.Mutex
	keys := cfg.Keys()
	env := &actions.Env{Logf: actions.Discard, Doors: jr, StateCache: cache,
		Store: filestore.New(filestore.Options{Dir: filepath.Join(dir, "statedir"), Doors: jr}),
		Key:   func(d *knockd.Door) string { return keys[d] },
		Run: func(_ context.Context, line string) (int, error) {
			mu.Lock()
			defer mu.Unlock()
			ran = append(ran, line)
			return 0, nil
		}}
	a, err := newAction(cfg.Doors, env)
	if err != nil {
		t.Fatal(err)
	}
	// A second daemon cannot share the cache.
	if _, err := newAction(cfg.Doors, env); !errors.Is(err, state.ErrInUse) {
		t.Errorf("second action on the same cache: %v", err)
	}
	ctx := context.Background()
	knocked := time.Now()
	a.Handle(ctx, actions.Event{Kind: actions.Knock, Door: "ssh", Addr: netip.MustParseAddr("10.1.1.1"), Time: knocked,
		Sender: netip.MustParseAddr("10.0.0.2"), Record: &actions.Record{Has: actions.HasIP, IP: netip.MustParseAddr("10.1.1.1")}})
	data, err := os.ReadFile(cache)
	if err != nil || !strings.Contains(string(data), `"key":["10.1.1.1","seen"],"value":"1"`) {
		t.Errorf("state cache after a knock: %q, %v", data, err)
	}
	// Opened (the knock's time) is for knockd --status.
	if e := jr.OpenDoors(); len(e) != 1 || e[0].Stop != "close 10.1.1.1" || e[0].Name != "ssh: action close" || !e[0].Opened.Equal(knocked) {
		t.Errorf("journal: %+v", e)
	}
	a.Close(ctx)
	if e := jr.OpenDoors(); len(e) != 0 {
		t.Errorf("journal after Close: %+v", e)
	}
	if !slices.Equal(ran, []string{"close 10.1.1.1"}) {
		t.Errorf("ran %q", ran)
	}
}
