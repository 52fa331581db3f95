package doorman

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Conn is a TCP connection as the server sees it.
type Conn struct {
	Local, Remote netip.AddrPort
}

// Socket is what the socket table says about a connection.
type Socket struct {
	Established bool
	Inode       uint64
}

// Sockets is the host's TCP socket table. doormand ran lsof for this; we
// read the kernel's table directly.
type Sockets interface {
	// Lookup returns the sockets among conns that exist.
	Lookup(conns []Conn) (map[Conn]Socket, error)
	// Owner names the process holding socket inode, for log lines;
	// ok is false when none is found.
	Owner(inode uint64) (comm string, pid int, ok bool)
}

// ProcNet reads /proc/net/tcp and /proc/net/tcp6 (of the calling thread's
// network namespace). Root is normally "/proc".
type ProcNet struct{ Root string }

// tcpEstablished is TCP_ESTABLISHED in the st column.
const tcpEstablished = 0x01

// Lookup scans both tables once for all of conns. An IPv4 connection to a
// dual-stack listener appears in tcp6 with mapped addresses; it is found
// either way.
func (p ProcNet) Lookup(conns []Conn) (map[Conn]Socket, error) {
	want := make(map[Conn]bool, len(conns))
	for _, c := range conns {
		want[unmapConn(c)] = true
	}
	out := map[Conn]Socket{}
	for _, name := range []string{"tcp", "tcp6"} {
		data, err := os.ReadFile(filepath.Join(p.Root, "net", name))
		if err != nil {
			if name == "tcp6" && os.IsNotExist(err) {
				continue // IPv6 disabled
			}
			return nil, fmt.Errorf("socket table: %w", err)
		}
		ParseTCPTable(data, func(c Conn, s Socket) {
			if want[c] {
				if old, seen := out[c]; !seen || !old.Established {
					out[c] = s
				}
			}
		})
	}
	return out, nil
}

func unmapConn(c Conn) Conn {
	return Conn{
		Local:  netip.AddrPortFrom(c.Local.Addr().Unmap(), c.Local.Port()),
		Remote: netip.AddrPortFrom(c.Remote.Addr().Unmap(), c.Remote.Port()),
	}
}

// ParseTCPTable calls f for every well-formed row of a /proc/net/tcp or
// tcp6 file, addresses unmapped. Malformed rows are skipped.
//
//	sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
//	 0: 0100007F:0016 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 12345 …
func ParseTCPTable(data []byte, f func(Conn, Socket)) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 10 || !strings.HasSuffix(fs[0], ":") {
			continue
		}
		local, ok1 := parseHexAddrPort(fs[1])
		remote, ok2 := parseHexAddrPort(fs[2])
		st, err1 := strconv.ParseUint(fs[3], 16, 8)
		inode, err2 := strconv.ParseUint(fs[9], 10, 64)
		if !ok1 || !ok2 || err1 != nil || err2 != nil {
			continue
		}
		f(Conn{Local: local, Remote: remote}, Socket{Established: st == tcpEstablished, Inode: inode})
	}
}

// parseHexAddrPort reads "0100007F:0016": the address as the kernel's
// 32-bit words in host (little-endian) order, the port in big-endian hex.
func parseHexAddrPort(s string) (netip.AddrPort, bool) {
	a, p, ok := strings.Cut(s, ":")
	if !ok {
		return netip.AddrPort{}, false
	}
	port, err := strconv.ParseUint(p, 16, 16)
	if err != nil {
		return netip.AddrPort{}, false
	}
	raw, err := hex.DecodeString(a)
	if err != nil || (len(raw) != 4 && len(raw) != 16) {
		return netip.AddrPort{}, false
	}
	var b [16]byte
	for i := 0; i < len(raw); i += 4 {
		binary.BigEndian.PutUint32(b[i:], binary.LittleEndian.Uint32(raw[i:]))
	}
	var addr netip.Addr
	if len(raw) == 4 {
		addr = netip.AddrFrom4([4]byte(b[:4]))
	} else {
		addr = netip.AddrFrom16(b).Unmap()
	}
	return netip.AddrPortFrom(addr, uint16(port)), true
}

// Owner finds the process with an open file descriptor on socket inode by
// reading /proc/*/fd (as lsof does). It stops at the first one.
func (p ProcNet) Owner(inode uint64) (string, int, bool) {
	if inode == 0 {
		return "", 0, false
	}
	target := "socket:[" + strconv.FormatUint(inode, 10) + "]"
	procs, err := os.ReadDir(p.Root)
	if err != nil {
		return "", 0, false
	}
	for _, pe := range procs {
		pid, err := strconv.Atoi(pe.Name())
		if err != nil {
			continue
		}
		fdDir := filepath.Join(p.Root, pe.Name(), "fd")
		fds, err := os.ReadDir(fdDir)
		if err != nil {
			continue
		}
		for _, fd := range fds {
			if l, err := os.Readlink(filepath.Join(fdDir, fd.Name())); err == nil && l == target {
				comm, _ := os.ReadFile(filepath.Join(p.Root, pe.Name(), "comm"))
				return strings.TrimSpace(string(comm)), pid, true
			}
		}
	}
	return "", 0, false
}
