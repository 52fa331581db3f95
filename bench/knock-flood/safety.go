package main

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"

	"golang.org/x/sys/unix"
)

// netEnv is what the safety check looks at: which network namespace the
// process is in and which subnets are directly connected there.
type netEnv struct {
	selfNS string         // readlink /proc/self/ns/net, e.g. "net:[4026532281]"
	initNS string         // readlink /proc/1/ns/net; "" when unreadable
	named  []string       // the namespaces bind-mounted under /run/netns (ip netns add), same form
	local  []netip.Prefix // IPv4 addresses (with their prefix) on the up interfaces of this namespace
}

// currentNetEnv reads the namespace identities and the local subnets.
func currentNetEnv() netEnv {
	var e netEnv
	e.selfNS, _ = os.Readlink("/proc/self/ns/net")
	e.initNS, _ = os.Readlink("/proc/1/ns/net")
	ents, _ := os.ReadDir(netnsRunDir)
	for _, ent := range ents {
		var st unix.Stat_t
		if unix.Stat(filepath.Join(netnsRunDir, ent.Name()), &st) == nil {
			e.named = append(e.named, fmt.Sprintf("net:[%d]", st.Ino))
		}
	}
	ifs, _ := net.Interfaces()
	for _, ifc := range ifs {
		if ifc.Flags&net.FlagUp == 0 {
			continue
		}
		addrs, _ := ifc.Addrs()
		for _, a := range addrs {
			ipn, ok := a.(*net.IPNet)
			if !ok {
				continue
			}
			ip, ok := netip.AddrFromSlice(ipn.IP)
			if !ok {
				continue
			}
			bits, _ := ipn.Mask.Size()
			ip = ip.Unmap()
			if ip.Is4() && bits <= 32 {
				e.local = append(e.local, netip.PrefixFrom(ip, bits))
			}
		}
	}
	return e
}

// netnsRunDir is where `ip netns add` bind-mounts the namespaces it creates.
const netnsRunDir = "/run/netns"

// checkTarget is the safety rule: traffic may only go to a loopback
// address, or, from a process inside a network namespace other than the
// initial one, to an address on a subnet directly connected in that
// namespace (so it stays on the namespace's own links, which a benchmark
// creates and deletes). Everything else is refused.
//
// The initial namespace is PID 1's. Where /proc/1/ns/net cannot be read
// (PID 1 in another user namespace, as in some sandboxes), the process's
// namespace must instead be one created with `ip netns add` (bind-mounted
// under /run/netns), which is what `ip netns exec` runs in.
func checkTarget(dst netip.Addr, e netEnv) error {
	if !dst.IsValid() {
		return errors.New("no destination address")
	}
	dst = dst.Unmap()
	if !dst.Is4() {
		return fmt.Errorf("destination %s: only IPv4 is supported", dst)
	}
	if dst.IsUnspecified() || dst.IsMulticast() || dst == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		return fmt.Errorf("destination %s: not a unicast address", dst)
	}
	if dst.IsLoopback() {
		return nil
	}
	if e.selfNS == "" || (e.initNS == "" && !slices.Contains(e.named, e.selfNS)) {
		return fmt.Errorf("destination %s: refusing: cannot tell whether this process runs in the initial network namespace (/proc/1/ns/net is unreadable and this namespace is not one under %s): run it as root with `ip netns exec NS`", dst, netnsRunDir)
	}
	if e.selfNS == e.initNS {
		return fmt.Errorf("destination %s: refusing: this process runs in the initial network namespace; only loopback targets are allowed there (run it inside a namespace you created: ip netns exec NS knock-flood ...)", dst)
	}
	for _, p := range e.local {
		if !p.Contains(dst) {
			continue
		}
		if p.Bits() < 31 && dst == lastAddr(p) {
			return fmt.Errorf("destination %s: refusing the broadcast address of %s", dst, p.Masked())
		}
		return nil
	}
	return fmt.Errorf("destination %s: refusing: not on a subnet directly connected in this network namespace", dst)
}

// lastAddr is the highest address of an IPv4 prefix.
func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr().As4()
	host := ^uint32(0) >> p.Bits()
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3]) | host
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}
