package fwlog

import "time"

// yearSlack is how far past ref a year-less timestamp may be and still be
// read in ref's year: clocks of remote senders drift, and a line logged at
// 23:59:59 on Dec 31 may be read a moment into the new year.
const yearSlack = 24 * time.Hour

// LineTime returns the timestamp at the start of a log line, or the zero
// Time if there is none. It reads, after an optional "<PRI>":
//
//   - RFC 3339 / ISO 8601, as rsyslog's default file format on Debian 12 and
//     journalctl -o short-iso print it: 2026-11-25T08:01:02.123456+01:00
//     (also with Z, +0100, or a space for the T);
//   - the traditional syslog form, as rsyslog's TraditionalFileFormat,
//     syslog-ng and journalctl -o short / short-precise print it:
//     "Nov 25 08:01:02" or "Nov  5 08:01:02.123456", in loc;
//   - seconds since the epoch, as journalctl -o short-unix prints it:
//     1795680062.123456.
//
// The kernel's own "[12345.678901]" (seconds since boot) is not a wall
// clock and is ignored, so dmesg output has no time. A nil loc is time.Local.
//
// Traditional syslog timestamps have no year. The year chosen is the one
// that puts the line latest but not more than a day after ref (the time
// the line was read, or the log file's modification time): a log read live
// is never from the future, and a file's lines are never newer than its
// last write, so a December line read in January lands in the old year,
// and a line stamped a second into the new year by a clock slightly ahead
// lands in the new one. A log spanning more than a year cannot be dated
// this way; use a format with years (RFC 3339) for that.
func LineTime(line string, ref time.Time, loc *time.Location) time.Time {
	if loc == nil {
		loc = time.Local
	}
	s := line
	if len(s) > 2 && s[0] == '<' {
		i := 1
		for i < len(s) && i < 5 && isDigit(s[i]) {
			i++
		}
		if i > 1 && i < len(s) && s[i] == '>' {
			s = s[i+1:]
		}
	}
	switch {
	case len(s) >= 19 && isDigit(s[0]) && s[4] == '-':
		t, _ := iso(s)
		return t
	case len(s) >= 15 && s[3] == ' ' && month(s[:3]) != 0:
		return traditional(s, ref, loc)
	case len(s) > 11 && isDigit(s[0]):
		return unix(s)
	}
	return time.Time{}
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// num reads exactly n digits at s[i:].
func num(s string, i, n int) (int, bool) {
	if i+n > len(s) {
		return 0, false
	}
	v := 0
	for _, c := range []byte(s[i : i+n]) {
		if !isDigit(c) {
			return 0, false
		}
		v = v*10 + int(c-'0')
	}
	return v, true
}

// frac reads ".ddd…" at s[i:] as nanoseconds and returns the index after it.
func frac(s string, i int) (ns, next int) {
	if i >= len(s) || s[i] != '.' {
		return 0, i
	}
	i++
	scale := 100000000
	for i < len(s) && isDigit(s[i]) {
		ns += int(s[i]-'0') * scale
		scale /= 10
		i++
	}
	return ns, i
}

// clock reads "HH:MM:SS" at s[i:].
func clock(s string, i int) (h, m, sec int, ok bool) {
	if i+8 > len(s) || s[i+2] != ':' || s[i+5] != ':' {
		return 0, 0, 0, false
	}
	h, ok1 := num(s, i, 2)
	m, ok2 := num(s, i+3, 2)
	sec, ok3 := num(s, i+6, 2)
	if !ok1 || !ok2 || !ok3 || h > 23 || m > 59 || sec > 60 {
		return 0, 0, 0, false
	}
	return h, m, sec, true
}

// iso reads an RFC 3339 timestamp without allocating: the zone offset is
// applied by arithmetic instead of a time.FixedZone, so the result is UTC.
func iso(s string) (time.Time, bool) {
	y, ok1 := num(s, 0, 4)
	mo, ok2 := num(s, 5, 2)
	d, ok3 := num(s, 8, 2)
	if !ok1 || !ok2 || !ok3 || s[7] != '-' || (s[10] != 'T' && s[10] != ' ') || mo < 1 || mo > 12 || d < 1 || d > 31 {
		return time.Time{}, false
	}
	h, m, sec, ok := clock(s, 11)
	if !ok {
		return time.Time{}, false
	}
	ns, i := frac(s, 19)
	off := 0
	switch {
	case i < len(s) && s[i] == 'Z':
	case i < len(s) && (s[i] == '+' || s[i] == '-'):
		oh, okh := num(s, i+1, 2)
		j := i + 3
		if j < len(s) && s[j] == ':' {
			j++
		}
		om, okm := num(s, j, 2)
		if !okh || !okm || oh > 23 || om > 59 {
			return time.Time{}, false
		}
		off = oh*3600 + om*60
		if s[i] == '-' {
			off = -off
		}
	default:
		return time.Time{}, false
	}
	t := time.Date(y, time.Month(mo), d, h, m, sec, ns, time.UTC)
	if t.Day() != d {
		return time.Time{}, false // Feb 30 and the like
	}
	return t.Add(-time.Duration(off) * time.Second), true
}

var months = [...]string{"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"}

func month(s string) time.Month {
	for i, m := range months {
		if s == m {
			return time.Month(i + 1)
		}
	}
	return 0
}

// traditional reads "Mmm dd HH:MM:SS[.frac]" (day space-padded or not).
func traditional(s string, ref time.Time, loc *time.Location) time.Time {
	mo := month(s[:3])
	i := 4
	if s[i] == ' ' {
		i++
	}
	d := 0
	for j := 0; j < 2 && i < len(s) && isDigit(s[i]); j++ {
		d = d*10 + int(s[i]-'0')
		i++
	}
	if d < 1 || d > 31 || i >= len(s) || s[i] != ' ' {
		return time.Time{}
	}
	h, m, sec, ok := clock(s, i+1)
	if !ok {
		return time.Time{}
	}
	ns, _ := frac(s, i+9)
	if ref.IsZero() {
		ref = time.Now()
	}
	// The latest date not more than yearSlack after ref: start a year
	// ahead (a line a second into the new year, read just before it) and
	// go back at most a leap cycle ("Feb 29" needs a leap year).
	limit := ref.Add(yearSlack)
	y := ref.In(loc).Year() + 1
	for range 9 {
		t := time.Date(y, mo, d, h, m, sec, ns, loc)
		if t.Day() == d && !t.After(limit) {
			return t
		}
		y--
	}
	return time.Time{}
}

// unix reads "seconds[.frac]" followed by a space; at least 9 digits of
// seconds (2001 onward), so a stray number is not read as a time.
func unix(s string) time.Time {
	i := 0
	var sec int64
	for i < len(s) && isDigit(s[i]) && i < 12 {
		sec = sec*10 + int64(s[i]-'0')
		i++
	}
	if i < 9 {
		return time.Time{}
	}
	ns, j := frac(s, i)
	if j >= len(s) || s[j] != ' ' {
		return time.Time{}
	}
	return time.Unix(sec, int64(ns))
}
