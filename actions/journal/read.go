package journal

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/doorward/doorward/internal/flock"
	"github.com/doorward/doorward/internal/trust"
)

// Snapshot is what a journal says at one moment, read by someone other
// than the daemon that writes it (knockd --status).
type Snapshot struct {
	Dir     string
	NoDir   bool    // the state directory does not exist: no daemon ever ran with it
	NoFile  bool    // the directory exists, the journal not (yet)
	Doors   []Entry // open entries in ID order
	Damaged int     // complete records that did not check out
	// DaemonPID is the process holding the state directory's lock, 0 if
	// none; DaemonKnown is false when that cannot be told (no /proc).
	DaemonPID   int
	DaemonKnown bool
}

// Read reads the journal in dir as it is now, for a reader that is not the
// daemon: it takes no lock (the running daemon holds it) and writes
// nothing, not even the compaction and the damaged copy Open makes. The
// daemon only appends whole records and replaces the file by rename, so a
// read sees a complete file, at worst ending in a record still being
// written: that torn last record is ignored, as recovery would ignore it,
// and is not counted as damaged. The trust rules are Open's: what the
// daemon would refuse to run is refused here too, with the same message.
func Read(dir string) (Snapshot, error) {
	s := Snapshot{Dir: dir}
	if err := trust.Dir(dir); errors.Is(err, os.ErrNotExist) {
		s.NoDir = true
		return s, nil
	} else if err != nil {
		return s, fmt.Errorf("journal: state directory %w", err)
	}
	if pid, known, err := flock.Holder(filepath.Join(dir, LockName)); err == nil {
		s.DaemonPID, s.DaemonKnown = pid, known
	} else if errors.Is(err, os.ErrNotExist) {
		s.DaemonKnown = true // no lock file: no daemon has run here yet
	} else {
		return s, fmt.Errorf("journal: lock %w", err)
	}
	path := filepath.Join(dir, FileName)
	if _, err := os.Lstat(path); errors.Is(err, os.ErrNotExist) {
		s.NoFile = true
		return s, nil
	}
	data, err := readFile(path)
	if err != nil {
		return s, err
	}
	torn := 0
	if i := bytes.LastIndexByte(data, '\n'); i+1 < len(data) {
		if _, err := decode(data[i+1:]); err != nil {
			torn = 1 // parse counts it; a writer is still on it
		}
	}
	st := parse(data)
	s.Damaged = st.damaged - torn
	for _, e := range st.open {
		s.Doors = append(s.Doors, e)
	}
	sortByID(s.Doors)
	return s, nil
}
