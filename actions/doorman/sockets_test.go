package doorman

import (
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestParseTCPTable reads rows in the kernel's format: IPv4 words in host
// order, IPv6 as four such words, ports in hex.
func TestParseTCPTable(t *testing.T) {
	tcp := `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100000A:0016 0200000A:C350 01 00000000:00000000 02:000AFE6C 00000000     0        0 4242 2 0000000000000000 20 4 31 10 -1
   1: 0100007F:0CEA 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 17 1 0000000000000000 100 0 0 10 0
   2: garbage
`
	tcp6 := `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0000000000000000FFFF00000100000A:08AE 0000000000000000FFFF00000200000A:D431 01 00000000:00000000 00:00000000 00000000     0        0 99 1 0000000000000000 20 4 30 10 -1
   1: 000000FD000000000000000001000000:0016 000000FD000000000000000002000000:C351 06 00000000:00000000 00:00000000 00000000     0        0 0 1 0000000000000000 20 4 30 10 -1
`
	var got []string
	collect := func(c Conn, s Socket) {
		got = append(got, c.Local.String()+" "+c.Remote.String()+" "+map[bool]string{true: "ESTABLISHED", false: "other"}[s.Established])
	}
	ParseTCPTable([]byte(tcp), collect)
	ParseTCPTable([]byte(tcp6), collect)
	want := []string{
		"10.0.0.1:22 10.0.0.2:50000 ESTABLISHED",
		"127.0.0.1:3306 0.0.0.0:0 other",
		"10.0.0.1:2222 10.0.0.2:54321 ESTABLISHED",
		"[fd00::1]:22 [fd00::2]:50001 other",
	}
	// fd00::1 is "FD000000…01" in network order; as host-order words the
	// first is 000000FD and the last 01000000.
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "net"), 0o755)
	os.WriteFile(filepath.Join(root, "net", "tcp"), []byte(tcp), 0o644)
	os.WriteFile(filepath.Join(root, "net", "tcp6"), []byte(tcp6), 0o644)
	c1 := Conn{Local: netip.MustParseAddrPort("10.0.0.1:22"), Remote: netip.MustParseAddrPort("10.0.0.2:50000")}
	c2 := Conn{Local: netip.MustParseAddrPort("10.0.0.1:2222"), Remote: netip.MustParseAddrPort("10.0.0.2:54321")}
	c3 := Conn{Local: netip.MustParseAddrPort("10.0.0.1:22"), Remote: netip.MustParseAddrPort("10.0.0.2:1")}
	m, err := ProcNet{Root: root}.Lookup([]Conn{c1, c2, c3})
	if err != nil {
		t.Fatal(err)
	}
	if !m[c1].Established || m[c1].Inode != 4242 || !m[c2].Established || len(m) != 2 {
		t.Errorf("Lookup = %v", m)
	}
}

// TestProcNetLive looks up a real loopback connection of this process in
// the real /proc, and finds this process as its owner.
func TestProcNetLive(t *testing.T) {
	if _, err := os.Stat("/proc/net/tcp"); err != nil {
		t.Skip("no /proc/net/tcp")
	}
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Skip(err)
	}
	defer ln.Close()
	cli, err := net.Dial("tcp4", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	srv, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	conn := Conn{Local: netip.MustParseAddrPort(srv.LocalAddr().String()), Remote: netip.MustParseAddrPort(srv.RemoteAddr().String())}
	p := ProcNet{Root: "/proc"}
	m, err := p.Lookup([]Conn{conn})
	if err != nil {
		t.Fatal(err)
	}
	s := m[conn]
	if !s.Established {
		t.Fatalf("connection %v not ESTABLISHED: %v", conn, m)
	}
	if _, pid, ok := p.Owner(s.Inode); !ok || pid != os.Getpid() {
		t.Errorf("Owner = %d, %v; want this process %d", pid, ok, os.Getpid())
	}
	srv.Close()
	cli.Close()
	if m, _ := p.Lookup([]Conn{conn}); m[conn].Established {
		t.Error("still ESTABLISHED after close")
	}
}
