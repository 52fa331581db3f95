package fwlog

import (
	"net/netip"
	"strings"
	"time"

	"github.com/doorward/doorward/formats/proto"
)

// The kernel's nf_log_syslog prints, for a LOG target or a log statement:
//
//	<prefix>IN=<if> OUT=<if> [PHYSIN=… PHYSOUT=…] [MAC=…|MACSRC=… MACDST=… MACPROTO=…]
//	IPv4: SRC=a.b.c.d DST=a.b.c.d LEN=n TOS=0x.. PREC=0x.. TTL=n ID=n [CE] [DF] [MF] [FRAG:n] [OPT (…)]
//	IPv6: SRC=<8 groups> DST=<8 groups> LEN=n TC=n HOPLIMIT=n FLOWLBL=n [extension headers]
//	TCP:  PROTO=TCP SPT=n DPT=n [SEQ=n ACK=n] WINDOW=n RES=0x.. [AE] [CWR] [ECE] [URG] [ACK] [PSH] [RST] [SYN] [FIN] URGP=n [OPT (…)]
//	UDP:  PROTO=UDP SPT=n DPT=n LEN=n
//	ICMP: PROTO=ICMP TYPE=n CODE=n [ID=n SEQ=n] [[<quoted packet>]]
//	then [UID=n GID=n] [MARK=0x..]
//
// every token followed by one space, the prefix printed as given (no space
// is added after it). Keys repeat (UDP's LEN=, ICMP's ID= and SEQ=, the
// header an ICMP error quotes inside [ ]), so the first of each counts and
// scanning stops at "[".

// findIn returns the index of the "IN=" that starts the packet body, or -1.
// The prefix before it may hold anything, even "IN=", so a candidate counts
// only when its interface name is followed by " OUT=".
func findIn(line string) int {
	from := 0
	for {
		i := strings.Index(line[from:], "IN=")
		if i < 0 {
			return -1
		}
		i += from
		rest := line[i+3:]
		sp := strings.IndexByte(rest, ' ')
		if sp >= 0 && strings.HasPrefix(rest[sp:], " OUT=") {
			return i
		}
		from = i + 3
	}
}

// prefixBefore reports whether before (the text up to "IN=") ends with the
// log prefix p, ignoring trailing blanks on both sides (INI values are
// trimmed, prefixes usually end in a space), with p starting at a word
// boundary.
func prefixBefore(before, p string) bool {
	before = strings.TrimRight(before, " ")
	p = strings.TrimRight(p, " ")
	if !strings.HasSuffix(before, p) {
		return false
	}
	if len(before) == len(p) {
		return true
	}
	switch before[len(before)-len(p)-1] {
	case ' ', '\t', ']', ':', '>':
		return true
	}
	return false
}

// seen bits for the kernel scanner.
const (
	sawIn = 1 << iota
	sawSrc
	sawDst
	sawLen
	sawProto
	sawSPT
	sawDPT
	sawSeq
	sawFrag
	sawIncomplete
)

func (f *Format) parseKernel(line string, ref time.Time, out *Fields) error {
	in := findIn(line)
	if in < 0 {
		return ErrNotPacket
	}
	if f.Prefix != "" && !prefixBefore(line[:in], f.Prefix) {
		return ErrNotPacket
	}
	if f.Contains != "" && !strings.Contains(line, f.Contains) {
		return ErrNotPacket
	}
	out.Time = LineTime(line, ref, f.location())

	var saw uint16
	rest := line[in:]
	for rest != "" {
		// Next space-separated token; runs of spaces are skipped.
		for rest != "" && rest[0] == ' ' {
			rest = rest[1:]
		}
		end := strings.IndexByte(rest, ' ')
		if end < 0 {
			end = len(rest)
		}
		tok := rest[:end]
		rest = rest[end:]
		if tok == "" {
			break
		}
		if tok[0] == '[' {
			break // an ICMP error quoting another packet's header
		}
		eq := strings.IndexByte(tok, '=')
		if eq < 0 {
			switch {
			case strings.HasPrefix(tok, "FRAG:"):
				saw |= sawFrag
			case tok == "INCOMPLETE" || tok == "TRUNCATED":
				saw |= sawIncomplete
			case saw&sawProto != 0 && out.Proto == TCP:
				out.Flags |= flagWord(tok)
			}
			continue
		}
		key, val := tok[:eq], tok[eq+1:]
		switch key {
		case "IN":
			if saw&sawIn == 0 {
				saw |= sawIn
				out.In = val
			}
		case "SRC", "DST":
			bit := uint16(sawSrc)
			if key == "DST" {
				bit = sawDst
			}
			if saw&bit != 0 {
				continue
			}
			a, ok := parseAddr(val)
			if !ok {
				if key == "SRC" {
					return errNoSrc
				}
				return errNoDst
			}
			saw |= bit
			if key == "SRC" {
				out.Src = a
			} else {
				out.Dst = a
			}
		case "LEN":
			if saw&sawLen == 0 {
				n, ok := atou(val, 65535+40)
				if !ok {
					return errBadLen
				}
				saw |= sawLen
				out.Length = int(n)
			}
		case "PROTO":
			if saw&sawProto == 0 {
				p, ok := ProtoNumber(val)
				if !ok {
					return errBadProto
				}
				saw |= sawProto
				out.Proto = p
			}
		case "SPT", "DPT":
			if saw&sawProto == 0 || (out.Proto != TCP && out.Proto != UDP && out.Proto != UDPLite) {
				continue
			}
			bit := uint16(sawSPT)
			if key == "DPT" {
				bit = sawDPT
			}
			if saw&bit != 0 {
				continue
			}
			n, ok := atou(val, 65535)
			if !ok {
				if key == "SPT" {
					return errBadSPort
				}
				return errNoPort
			}
			saw |= bit
			if key == "SPT" {
				out.SrcPort = uint16(n)
			} else {
				out.DstPort = uint16(n)
			}
		case "SEQ":
			if saw&sawProto == 0 || out.Proto != TCP || saw&sawSeq != 0 {
				continue // ICMP echo's SEQ= is not a TCP sequence number
			}
			n, ok := atou(val, 1<<32-1)
			if !ok {
				return errBadSeq
			}
			saw |= sawSeq
			out.Seq, out.HasSeq = uint32(n), true
		}
	}
	switch {
	case saw&(sawSrc|sawDst) == 0:
		// Not an IP packet (the kernel's ARP and unknown-protocol lines
		// have no SRC=/DST=), or an IP header the kernel could not read
		// ("TRUNCATED"): a true line, but never a knock.
		return ErrNoPorts
	case saw&sawSrc == 0:
		return errNoSrc
	case saw&sawDst == 0:
		return errNoDst
	case saw&sawProto == 0:
		if saw&sawIncomplete != 0 {
			return ErrNoPorts
		}
		return errNoProto
	}
	if out.Proto == TCP || out.Proto == UDP || out.Proto == UDPLite {
		if saw&sawDPT == 0 || saw&sawSPT == 0 {
			if saw&(sawFrag|sawIncomplete) != 0 {
				return ErrNoPorts
			}
			if saw&sawDPT == 0 {
				return errNoPort
			}
			return errBadSPort
		}
	}
	return nil
}

// parseAddr reads an address as the kernel prints it, without allocating
// even for a bad one (netip.ParseAddr's errors allocate, and a flood of bad
// lines should not): dotted IPv4, or IPv6 as %pI6 prints it, eight groups
// of four hex digits. Other IPv6 spellings go through netip.
func parseAddr(s string) (netip.Addr, bool) {
	if strings.IndexByte(s, ':') < 0 {
		return parseIPv4(s)
	}
	if len(s) == 39 {
		var b [16]byte
		for g := 0; g < 8; g++ {
			if g > 0 && s[g*5-1] != ':' {
				return netip.Addr{}, false
			}
			var v uint16
			for _, c := range []byte(s[g*5 : g*5+4]) {
				x, ok := hexVal(c)
				if !ok {
					return netip.Addr{}, false
				}
				v = v<<4 | uint16(x)
			}
			b[2*g], b[2*g+1] = byte(v>>8), byte(v)
		}
		return netip.AddrFrom16(b), true
	}
	if strings.IndexByte(s, '%') >= 0 || !isAddrText(s) {
		return netip.Addr{}, false // a zone, or junk netip would reject with an allocated error
	}
	a, err := netip.ParseAddr(s)
	return a, err == nil
}

func parseIPv4(s string) (netip.Addr, bool) {
	var b [4]byte
	for i := range 4 {
		j := 0
		v := 0
		for j < len(s) && j < 4 && isDigit(s[j]) {
			v = v*10 + int(s[j]-'0')
			j++
		}
		if j == 0 || j > 3 || v > 255 || (j > 1 && s[0] == '0') {
			return netip.Addr{}, false
		}
		b[i] = byte(v)
		s = s[j:]
		if i < 3 {
			if s == "" || s[0] != '.' {
				return netip.Addr{}, false
			}
			s = s[1:]
		}
	}
	if s != "" {
		return netip.Addr{}, false
	}
	return netip.AddrFrom4(b), true
}

func hexVal(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// isAddrText reports whether s has only characters an IPv6 address may
// hold, so that what reaches netip.ParseAddr nearly always parses.
func isAddrText(s string) bool {
	if s == "" || len(s) > 45 {
		return false
	}
	colons := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if _, ok := hexVal(c); ok || c == '.' {
			continue
		}
		if c != ':' {
			return false
		}
		colons++
	}
	return colons >= 2 && colons <= 7
}

// flagWord maps a TCP flag as the kernel prints it to its bit; other words
// (AE, the accurate-ECN bit outside the classic eight) give 0.
func flagWord(w string) proto.TCPFlags {
	switch w {
	case "FIN":
		return proto.FIN
	case "SYN":
		return proto.SYN
	case "RST":
		return proto.RST
	case "PSH":
		return proto.PSH
	case "ACK":
		return proto.ACK
	case "URG":
		return proto.URG
	case "ECE":
		return proto.ECE
	case "CWR":
		return proto.CWR
	}
	return 0
}
