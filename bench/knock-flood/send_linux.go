package main

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// sender owns one socket and a batch of frames sent with one sendmmsg(2).
type sender struct {
	fd    int
	frame int // bytes per frame slot
	bufs  []byte
	iovs  []unix.Iovec
	msgs  []unix.Mmsghdr
	ll    unix.RawSockaddrLinklayer
	in4   unix.RawSockaddrInet4
}

// newPacketSender opens an AF_PACKET socket that sends whole Ethernet
// frames out of ifc. Protocol 0: the socket never receives.
func newPacketSender(ifc *net.Interface, dstMAC [6]byte, batch, frame int) (*sender, error) {
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("AF_PACKET socket: %w (needs CAP_NET_RAW)", err)
	}
	// Hand frames straight to the driver (veth has no qdisc anyway).
	unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_QDISC_BYPASS, 1)
	s := newSender(fd, batch, frame)
	s.ll = unix.RawSockaddrLinklayer{
		Family:   unix.AF_PACKET,
		Protocol: htons(unix.ETH_P_IP),
		Ifindex:  int32(ifc.Index),
		Halen:    6,
	}
	copy(s.ll.Addr[:], dstMAC[:])
	for i := range s.msgs {
		s.msgs[i].Hdr.Name = (*byte)(unsafe.Pointer(&s.ll))
		s.msgs[i].Hdr.Namelen = uint32(unsafe.Sizeof(s.ll))
	}
	return s, nil
}

// newRawSender opens a raw IPv4 socket with IP_HDRINCL (implied by
// IPPROTO_RAW): frames start at the IP header and go through the kernel's
// routing and neighbour output path.
func newRawSender(dst netip.Addr, batch, frame int) (*sender, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW)
	if err != nil {
		return nil, fmt.Errorf("raw IPv4 socket: %w (needs CAP_NET_RAW)", err)
	}
	s := newSender(fd, batch, frame)
	s.in4 = unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: dst.As4()}
	for i := range s.msgs {
		s.msgs[i].Hdr.Name = (*byte)(unsafe.Pointer(&s.in4))
		s.msgs[i].Hdr.Namelen = uint32(unsafe.Sizeof(s.in4))
	}
	return s, nil
}

func newSender(fd, batch, frame int) *sender {
	s := &sender{
		fd:    fd,
		frame: frame,
		bufs:  make([]byte, batch*frame),
		iovs:  make([]unix.Iovec, batch),
		msgs:  make([]unix.Mmsghdr, batch),
	}
	for i := range s.msgs {
		s.iovs[i].Base = &s.bufs[i*frame]
		s.msgs[i].Hdr.Iov = &s.iovs[i]
		s.msgs[i].Hdr.Iovlen = 1
	}
	return s
}

// slot is the buffer of frame i of the batch.
func (s *sender) slot(i int) []byte { return s.bufs[i*s.frame : (i+1)*s.frame] }

// setLen records the length of frame i.
func (s *sender) setLen(i, n int) { s.iovs[i].SetLen(n) }

// send sends frames [0, n) with sendmmsg and returns how many went out.
func (s *sender) send(n int) (int, error) {
	r, _, errno := unix.Syscall6(unix.SYS_SENDMMSG, uintptr(s.fd), uintptr(unsafe.Pointer(&s.msgs[0])), uintptr(n), 0, 0, 0)
	runtime.KeepAlive(s)
	if errno != 0 {
		return 0, errno
	}
	return int(r), nil
}

func (s *sender) close() error { return unix.Close(s.fd) }

func htons(v uint16) uint16 {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], v)
	return *(*uint16)(unsafe.Pointer(&b[0]))
}
