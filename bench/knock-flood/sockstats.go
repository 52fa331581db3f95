package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// runSockstats prints the summed PACKET_STATISTICS of every AF_PACKET
// socket that process PID holds: "sockets=N packets=P drops=D". packets
// counts every packet that passed the socket's filter (dropped ones
// included, as the kernel reports them); drops those lost because the ring
// or queue was full. The counters are reset by the read.
func runSockstats(args []string, stdout, stderr io.Writer) int {
	if len(args) != 1 {
		fmt.Fprintln(stderr, "usage: knock-flood sockstats PID")
		return 2
	}
	pid, err := strconv.Atoi(args[0])
	if err != nil || pid <= 0 {
		fmt.Fprintf(stderr, "knock-flood sockstats: bad pid %q\n", args[0])
		return 2
	}
	n, packets, drops, err := packetSocketStats(pid)
	if err != nil {
		fmt.Fprintln(stderr, "knock-flood sockstats:", err)
		return 1
	}
	fmt.Fprintf(stdout, "sockets=%d packets=%d drops=%d\n", n, packets, drops)
	return 0
}

// packetInodes returns the socket inodes listed in a /proc/net/packet text.
func packetInodes(r io.Reader) map[uint64]bool {
	inodes := map[uint64]bool{}
	sc := bufio.NewScanner(r)
	sc.Scan() // header: sk RefCnt Type Proto Iface R Rmem User Inode
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 9 {
			continue
		}
		if ino, err := strconv.ParseUint(f[8], 10, 64); err == nil {
			inodes[ino] = true
		}
	}
	return inodes
}

func packetSocketStats(pid int) (sockets int, packets, drops uint64, err error) {
	proc := filepath.Join("/proc", strconv.Itoa(pid))
	b, err := os.ReadFile(filepath.Join(proc, "net", "packet"))
	if err != nil {
		return 0, 0, 0, err
	}
	inodes := packetInodes(bytes.NewReader(b))
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return 0, 0, 0, fmt.Errorf("pidfd_open %d: %w", pid, err)
	}
	defer unix.Close(pidfd)
	ents, err := os.ReadDir(filepath.Join(proc, "fd"))
	if err != nil {
		return 0, 0, 0, err
	}
	for _, e := range ents {
		link, err := os.Readlink(filepath.Join(proc, "fd", e.Name()))
		if err != nil {
			continue
		}
		s, ok := strings.CutPrefix(link, "socket:[")
		if !ok {
			continue
		}
		ino, err := strconv.ParseUint(strings.TrimSuffix(s, "]"), 10, 64)
		if err != nil || !inodes[ino] {
			continue
		}
		target, _ := strconv.Atoi(e.Name())
		fd, err := unix.PidfdGetfd(pidfd, target, 0)
		if err != nil {
			return 0, 0, 0, fmt.Errorf("pidfd_getfd %d/%d: %w (root and Linux 5.6+ needed)", pid, target, err)
		}
		st, err := unix.GetsockoptTpacketStatsV3(fd, unix.SOL_PACKET, unix.PACKET_STATISTICS)
		unix.Close(fd)
		if err != nil {
			return 0, 0, 0, fmt.Errorf("PACKET_STATISTICS of %d/%d: %w", pid, target, err)
		}
		sockets++
		packets += uint64(st.Packets)
		drops += uint64(st.Drops)
	}
	if sockets == 0 {
		return 0, 0, 0, fmt.Errorf("process %d holds no AF_PACKET socket", pid)
	}
	return sockets, packets, drops, nil
}
