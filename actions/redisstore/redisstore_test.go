package redisstore_test

import (
	"testing"

	"github.com/doorward/doorward/actions"
	"github.com/doorward/doorward/actions/journal"
	"github.com/doorward/doorward/actions/redisstore"
	"github.com/doorward/doorward/actions/redisstore/redistest"
	"github.com/doorward/doorward/actions/storetest"
)

// The Redis backend as the daemon runs it: the state directory's journal
// for doors, every space in one real redis-server, keys under a prefix of
// the test's folder (a restart is a new Store on the same prefix).
func TestConformance(t *testing.T) {
	srv := redistest.Start(t)
	journals := map[actions.Store]*journal.Journal{}
	storetest.Run(t, storetest.Backend{
		Open: func(t *testing.T, dir string) actions.Store {
			jr, _, err := journal.Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			s, err := redisstore.New(redisstore.Options{URL: srv.URL(), Prefix: "t:" + dir + ":"}, jr, t.Logf)
			if err != nil {
				t.Fatal(err)
			}
			journals[s] = jr
			return s
		},
		Close: func(s actions.Store) {
			s.(*redisstore.Store).Close()
			if jr := journals[s]; jr != nil {
				jr.Shutdown()
				delete(journals, s)
			}
		},
		Durable: true,
	})
}
