package filestore_test

import (
	"testing"

	"github.com/doorward/doorward/actions"
	"github.com/doorward/doorward/actions/filestore"
	"github.com/doorward/doorward/actions/journal"
	"github.com/doorward/doorward/actions/storetest"
)

// The file backend as the daemon runs it: the journal of the state
// directory for doors, every space in its file.
func TestConformanceFiles(t *testing.T) {
	journals := map[actions.Store]*journal.Journal{}
	storetest.Run(t, storetest.Backend{
		Open: func(t *testing.T, dir string) actions.Store {
			jr, _, err := journal.Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			s := filestore.New(filestore.Options{Dir: dir, Doors: jr})
			journals[s] = jr
			return s
		},
		Close: func(s actions.Store) {
			if jr := journals[s]; jr != nil {
				jr.Shutdown()
				delete(journals, s)
			}
		},
		Durable: true,
	})
}

// The memory mode replay and --check use.
func TestConformanceMemory(t *testing.T) {
	storetest.Run(t, storetest.Backend{
		Open: func(t *testing.T, dir string) actions.Store { return filestore.Memory() },
	})
}
