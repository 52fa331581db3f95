package journal

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"time"
	"unicode/utf8"
)

// A record is one line of the journal file:
//
//	<crc32c of json, 8 lowercase hex digits> <json>\n
//
// The JSON object is one of
//
//	{"op":"next","next":N}            IDs below N are used (first line after compaction)
//	{"op":"open","id":..,"door":..,"name":..,"addr":..,"stop":..,"set":..,"due":..,"failures":..,"opened":..,"port":..}
//	{"op":"update", same fields as open}
//	{"op":"close","id":..}
//
// An update carries the whole entry, so an update also restores an entry
// whose open record was damaged: losing a record must not strand a door.
//
// "opened" and "port" came later (knockd --status shows them) and are
// left out when zero. Records gain fields only this way: a daemon that
// predates a field ignores it (encoding/json skips unknown keys, and the
// checksum covers the bytes as written), and a record without it reads as
// "unknown", so old and new daemons read each other's journals.
type record struct {
	Op       string    `json:"op"`
	Next     uint64    `json:"next,omitempty"`
	ID       uint64    `json:"id,omitempty"`
	Door     string    `json:"door,omitempty"`
	Name     string    `json:"name,omitempty"`
	Addr     string    `json:"addr,omitempty"`
	Stop     string    `json:"stop,omitempty"`
	Set      string    `json:"set,omitempty"` // an nftables set to delete Addr from; absent in journals before Nft_Set
	Due      time.Time `json:"due,omitzero"`
	Failures int       `json:"failures,omitempty"`
	Opened   time.Time `json:"opened,omitzero"`
	Port     uint16    `json:"port,omitempty"`
}

const (
	opNext   = "next"
	opOpen   = "open"
	opUpdate = "update"
	opClose  = "close"
)

// maxID bounds IDs so that the next ID can never wrap around.
const maxID = 1 << 62

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func entryRecord(op string, e Entry) record {
	return record{Op: op, ID: e.ID, Door: e.Door, Name: e.Name, Addr: e.Addr, Stop: e.Stop, Set: e.Set, Due: e.Due, Failures: e.Failures, Opened: e.Opened, Port: e.Port}
}

func (r record) entry() Entry {
	return Entry{ID: r.ID, Door: r.Door, Name: r.Name, Addr: r.Addr, Stop: r.Stop, Set: r.Set, Due: r.Due, Failures: r.Failures, Opened: r.Opened, Port: r.Port}
}

// encode renders r as one journal line, newline included. It fails if the
// line would be read back as damaged.
func encode(r record) ([]byte, error) {
	var js bytes.Buffer
	enc := json.NewEncoder(&js)
	enc.SetEscapeHTML(false) // keep "&&" and ">" readable in stop commands
	if err := enc.Encode(r); err != nil {
		return nil, err
	}
	b := bytes.TrimSuffix(js.Bytes(), []byte("\n"))
	line := make([]byte, 0, len(b)+10)
	line = fmt.Appendf(line, "%08x ", crc32.Checksum(b, castagnoli))
	line = append(line, b...)
	line = append(line, '\n')
	if len(line) > maxLine {
		return nil, fmt.Errorf("record is %d bytes, over the %d-byte limit", len(line), maxLine)
	}
	return line, nil
}

// decode parses one line without its newline. Any error means the line is
// damaged: torn by a crash, corrupted on disk, or not written by us.
func decode(line []byte) (record, error) {
	var r record
	if len(line)+1 > maxLine {
		return r, errors.New("line too long")
	}
	if len(line) < 10 || line[8] != ' ' {
		return r, errors.New("no checksum")
	}
	var sum uint32
	for _, c := range line[:8] {
		switch {
		case '0' <= c && c <= '9':
			sum = sum<<4 | uint32(c-'0')
		case 'a' <= c && c <= 'f':
			sum = sum<<4 | uint32(c-'a'+10)
		default:
			return r, errors.New("bad checksum")
		}
	}
	js := line[9:]
	if crc32.Checksum(js, castagnoli) != sum {
		return r, errors.New("checksum mismatch")
	}
	if err := json.Unmarshal(js, &r); err != nil {
		return r, err
	}
	err := r.valid()
	return r, err
}

func (r *record) valid() error {
	switch r.Op {
	case opNext:
		if r.Next == 0 || r.Next > maxID {
			return errors.New("bad next ID")
		}
		return nil
	case opOpen, opUpdate, opClose:
	default:
		return fmt.Errorf("unknown op %q", r.Op)
	}
	if r.ID == 0 || r.ID >= maxID {
		return errors.New("bad ID")
	}
	if r.Op == opClose {
		return nil
	}
	if r.Failures < 0 {
		return errors.New("negative failures")
	}
	r.Due = r.Due.UTC()
	if y := r.Due.Year(); y < 0 || y > 9999 {
		return errors.New("due time out of range")
	}
	if !r.Opened.IsZero() {
		r.Opened = r.Opened.UTC()
		if y := r.Opened.Year(); y < 0 || y > 9999 {
			return errors.New("opened time out of range")
		}
	}
	return nil
}

func checkEntry(e Entry) error {
	for _, s := range []string{e.Door, e.Name, e.Addr, e.Stop, e.Set} {
		if !utf8.ValidString(s) {
			return fmt.Errorf("entry has invalid UTF-8 %q (the journal cannot store it exactly)", s)
		}
	}
	if e.Failures < 0 {
		return errors.New("entry has negative failures")
	}
	return nil
}

// state is what a journal file says: open entries and the next free ID.
type state struct {
	open    map[uint64]Entry
	next    uint64
	damaged int
}

// parse reads a whole journal file. It never fails: a line that does not
// decode is counted and skipped, and the others are kept.
func parse(data []byte) state {
	s := state{open: map[uint64]Entry{}, next: 1}
	for len(data) > 0 {
		line := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			data = nil // unterminated tail: accepted if it decodes
		}
		r, err := decode(line)
		if err != nil {
			s.damaged++
			continue
		}
		switch r.Op {
		case opNext:
			s.next = max(s.next, r.Next)
			continue
		case opOpen, opUpdate:
			s.open[r.ID] = r.entry()
		case opClose:
			delete(s.open, r.ID)
		}
		s.next = max(s.next, r.ID+1)
	}
	return s
}
