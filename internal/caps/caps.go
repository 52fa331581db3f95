// Package caps narrows the process's Linux capabilities to the few a
// running daemon still needs, once the sockets that needed more are open.
//
// Capabilities are per thread in the kernel, and a Go program runs on
// several threads it does not choose, so every change is made on all of
// them at once (syscall.AllThreadsSyscall, which needs a binary without
// cgo: `make build` sets CGO_ENABLED=0).
package caps

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Set is a set of capabilities, bit n for capability n.
type Set uint64

// Of makes a Set of capability numbers (unix.CAP_NET_RAW …).
func Of(caps ...int) Set {
	var s Set
	for _, c := range caps {
		s |= 1 << c
	}
	return s
}

// Has reports whether c is in s.
func (s Set) Has(c int) bool { return s&(1<<c) != 0 }

// names are capability(7)'s names by number; newer ones print as cap_N.
var names = [...]string{
	"cap_chown", "cap_dac_override", "cap_dac_read_search", "cap_fowner", "cap_fsetid", "cap_kill",
	"cap_setgid", "cap_setuid", "cap_setpcap", "cap_linux_immutable", "cap_net_bind_service", "cap_net_broadcast",
	"cap_net_admin", "cap_net_raw", "cap_ipc_lock", "cap_ipc_owner", "cap_sys_module", "cap_sys_rawio",
	"cap_sys_chroot", "cap_sys_ptrace", "cap_sys_pacct", "cap_sys_admin", "cap_sys_boot", "cap_sys_nice",
	"cap_sys_resource", "cap_sys_time", "cap_sys_tty_config", "cap_mknod", "cap_lease", "cap_audit_write",
	"cap_audit_control", "cap_setfcap", "cap_mac_override", "cap_mac_admin", "cap_syslog", "cap_wake_alarm",
	"cap_block_suspend", "cap_audit_read", "cap_perfmon", "cap_bpf", "cap_checkpoint_restore",
}

// String lists s as setpriv(1) and capsh(1) name capabilities.
func (s Set) String() string {
	var out []string
	for c := range 64 {
		if s.Has(c) {
			if c < len(names) {
				out = append(out, names[c])
			} else {
				out = append(out, "cap_"+strconv.Itoa(c))
			}
		}
	}
	return strings.Join(out, ",")
}

// State is one thread's (after Keep: the process's) capability sets, as
// /proc/PID/status shows them.
type State struct {
	Effective, Permitted, Inheritable, Bounding, Ambient Set
}

// Status reads the sets of process pid (0: this process) from
// /proc/PID/status.
func Status(pid int) (State, error) {
	p := "/proc/self/status"
	if pid != 0 {
		p = "/proc/" + strconv.Itoa(pid) + "/status"
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return State{}, err
	}
	var st State
	fields := map[string]*Set{"CapEff": &st.Effective, "CapPrm": &st.Permitted, "CapInh": &st.Inheritable,
		"CapBnd": &st.Bounding, "CapAmb": &st.Ambient}
	for line := range strings.SplitSeq(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if f := fields[k]; ok && f != nil {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			if err != nil {
				return State{}, fmt.Errorf("%s: %s: %w", p, k, err)
			}
			*f = Set(n)
		}
	}
	return st, nil
}

// capHeader and capData are the kernel's _LINUX_CAPABILITY_VERSION_3
// structures: 64 bits as two 32-bit halves.
type capHeader struct {
	version uint32
	pid     int32
}

type capData [2]struct{ effective, permitted, inheritable uint32 }

// Keep leaves this process only the capabilities in keep: they are
// removed from the effective, permitted and inheritable sets, from the
// ambient set (so the commands the daemon runs do not get them either),
// and from the bounding set, which is what limits a command that root
// executes. Changing the bounding set takes CAP_SETPCAP: without it (a
// daemon that was given only some capabilities, by systemd or setpriv)
// the bounding set is left as the caller got it, which is already what
// its manager allowed. What is not held is not added.
func Keep(keep Set) error {
	st, err := Status(0)
	if err != nil {
		return err
	}
	// The bounding set first, while CAP_SETPCAP may still be effective.
	if st.Effective.Has(unix.CAP_SETPCAP) {
		for c := range lastCap() + 1 {
			if st.Bounding.Has(c) && !keep.Has(c) {
				if err := allThreads(unix.SYS_PRCTL, unix.PR_CAPBSET_DROP, uintptr(c), 0); err != nil {
					return fmt.Errorf("dropping %s from the bounding set: %w", Set(0).with(c), err)
				}
			}
		}
	}
	for c := range lastCap() + 1 {
		if st.Ambient.Has(c) && !keep.Has(c) {
			if err := allThreads(unix.SYS_PRCTL, unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_LOWER, uintptr(c)); err != nil {
				return fmt.Errorf("dropping %s from the ambient set: %w", Set(0).with(c), err)
			}
		}
	}
	eff, prm, inh := st.Effective&keep, st.Permitted&keep, st.Inheritable&keep
	if eff == st.Effective && prm == st.Permitted && inh == st.Inheritable {
		return nil
	}
	hdr := capHeader{version: unix.LINUX_CAPABILITY_VERSION_3}
	var data capData
	for i := range data {
		data[i].effective = uint32(eff >> (32 * i))
		data[i].permitted = uint32(prm >> (32 * i))
		data[i].inheritable = uint32(inh >> (32 * i))
	}
	err = allThreads(unix.SYS_CAPSET, uintptr(unsafe.Pointer(&hdr)), uintptr(unsafe.Pointer(&data)), 0)
	if err != nil {
		return fmt.Errorf("capset: %w", err)
	}
	return nil
}

func (s Set) with(c int) Set { return s | 1<<c }

// allThreads makes a system call on every thread of the process.
func allThreads(trap, a1, a2, a3 uintptr) error {
	_, _, errno := syscall.AllThreadsSyscall(trap, a1, a2, a3)
	if errno == syscall.ENOTSUP {
		return errors.New("not possible in a binary built with cgo (build with CGO_ENABLED=0)")
	}
	if errno != 0 {
		return errno
	}
	return nil
}

// lastCap is the highest capability this kernel knows.
func lastCap() int {
	b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && n < 64 {
			return n
		}
	}
	return unix.CAP_LAST_CAP
}
