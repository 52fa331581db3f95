// Package proto is the one definition of a knock's transport protocol and
// of the TCP flag bits, shared by the sequence grammar (formats/sequence,
// and through it config/knockd) and the packet contract (detectors), so a
// door's protocol and a decoded packet's are the same type and compare
// without a conversion. It is a format, below both (arch_test.go), and
// imports nothing.
package proto

// Proto is the transport protocol of a knock or a packet. Values are IANA
// numbers so a decoder can store the IP header's protocol byte directly.
type Proto uint8

const (
	None Proto = 0 // not a knock candidate
	TCP  Proto = 6
	UDP  Proto = 17

	// Not knock protocols, but named because firewall logs (formats/fwlog)
	// report them: a log line of one is a packet, just not a knock.
	ICMP    Proto = 1
	ICMPv6  Proto = 58
	UDPLite Proto = 136
)

// String is the protocol as the sequence grammar writes it ("tcp",
// "udp"); "none" for anything else.
func (p Proto) String() string {
	switch p {
	case TCP:
		return "tcp"
	case UDP:
		return "udp"
	}
	return "none"
}

// TCPFlags are the TCP header flag bits, as on the wire. Knock filters
// (a door's TCPFlags, the capture filter) use the low six, KnockFlags;
// ECE and CWR are there because firewall logs print them.
type TCPFlags uint8

const (
	FIN TCPFlags = 1 << iota
	SYN
	RST
	PSH
	ACK
	URG
	ECE
	CWR

	KnockFlags = FIN | SYN | RST | PSH | ACK | URG
)
