package daemon

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// checkPidFile decides, before anything starts, what to do with the pid
// file at path (daemon mode only, as knockd and doormand write it there):
//
//   - missing: nothing to say;
//   - it names a running process of this same program (/proc/PID/exe is
//     our executable, or cannot be read): refuse, naming the pid. Two
//     daemons would fight over the capture, the firewall and the file.
//     doormand refuses too ("Found an old pidfile");
//   - it names no running process, our own pid (a container restarted
//     with the same pid), another program (the pid was reused after a
//     crash or reboot), or holds no pid: it is stale, and the daemon
//     replaces it, saying so. doormand refuses any old pid file until an
//     admin removes it; we do not, because a daemon that crashed or lost
//     power must come back by itself to run the stop commands its journal
//     holds, and the journal's lock already keeps two daemons off one
//     state directory.
//
// note is the line to log for a stale file.
func checkPidFile(path string) (note string, err error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("pid file %s: %w", path, err)
	}
	pid, perr := strconv.Atoi(strings.TrimSpace(string(data)))
	switch {
	case perr != nil || pid <= 0:
		return fmt.Sprintf("pid file %s holds no pid: replacing it", path), nil
	case pid == os.Getpid():
		return fmt.Sprintf("pid file %s names this process (pid %d): a leftover, replacing it", path, pid), nil
	}
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return fmt.Sprintf("pid file %s names pid %d, which is not running: a previous daemon died without removing it; replacing it (doormand would refuse to start, see README)", path, pid), nil
	}
	if !sameProgram(pid) {
		return fmt.Sprintf("pid file %s names pid %d, which is another program (the pid was reused): replacing it", path, pid), nil
	}
	return "", fmt.Errorf("pid file %s names pid %d, which is still running (another knockd?); stop it first, or give it another -p", path, pid)
}

// sameProgram reports whether pid runs our executable; true when that
// cannot be told (refusing is the safe side).
func sameProgram(pid int) bool {
	self, err := os.Executable()
	if err != nil {
		return true
	}
	exe, err := os.Readlink(filepath.Join("/proc", strconv.Itoa(pid), "exe"))
	if err != nil {
		return true
	}
	exe = strings.TrimSuffix(exe, " (deleted)")
	return exe == self
}
