package rotating

import (
	"encoding/base32"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/doorward/doorward/formats/sequence"
)

var update = flag.Bool("update", false, "rewrite testdata/vectors.md (new vectors only: a changed sequence is a broken spec)")

// vectorsFile holds the spec's test vectors as the markdown table
// docs/rotating.md shows; TestDocShowsVectors keeps the two equal.
const vectorsFile = "testdata/vectors.md"

// vector is one row: the inputs, then T and the sequence.
type vector struct {
	secret, door string
	period       int
	unix         int64
	ports        string
	length       int
	mode         string
	addr         string
	window       int64
	seq          string
}

const header = "| secret | door | period | unix time | ports | length | protocol | address | T | sequence |\n" +
	"| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n"

func (v vector) row() string {
	addr := v.addr
	if addr == "" {
		addr = "-"
	}
	return fmt.Sprintf("| `%s` | `%s` | %d | %d | `%s` | %d | %s | %s | %d | `%s` |\n",
		v.secret, v.door, v.period, v.unix, v.ports, v.length, v.mode, addr, v.window, v.seq)
}

func parseVectors(t *testing.T, text string) []vector {
	t.Helper()
	if !strings.HasPrefix(text, header) {
		t.Fatalf("%s: does not start with the table header", vectorsFile)
	}
	var out []vector
	for i, line := range strings.Split(strings.TrimSuffix(text[len(header):], "\n"), "\n") {
		f := strings.Split(strings.Trim(line, "| "), " | ")
		if len(f) != 10 {
			t.Fatalf("%s: row %d has %d columns", vectorsFile, i+1, len(f))
		}
		for j := range f {
			f[j] = strings.Trim(f[j], "`")
		}
		num := func(s string) int64 {
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				t.Fatalf("%s: row %d: %v", vectorsFile, i+1, err)
			}
			return n
		}
		v := vector{secret: f[0], door: f[1], period: int(num(f[2])), unix: num(f[3]), ports: f[4],
			length: int(num(f[5])), mode: f[6], addr: f[7], window: num(f[8]), seq: f[9]}
		if v.addr == "-" {
			v.addr = ""
		}
		out = append(out, v)
	}
	return out
}

// derive computes a vector's T and sequence from its inputs.
func derive(v vector) (int64, string, error) {
	key, err := ParseSecret(v.secret)
	if err != nil {
		return 0, "", err
	}
	ports, err := ParsePorts(v.ports)
	if err != nil {
		return 0, "", err
	}
	mode, err := ParseMode(v.mode)
	if err != nil {
		return 0, "", err
	}
	p := Params{Secret: key, Door: v.door, Period: v.period, Length: v.length, Ports: ports, Mode: mode, Addr: v.addr}
	w := Window(time.Unix(v.unix, 0), v.period)
	seq, err := Derive(nil, &p, w)
	return w, sequence.Format(seq), err
}

// TestVectors derives every vector of the spec and compares the whole row.
func TestVectors(t *testing.T) {
	b, err := os.ReadFile(vectorsFile)
	if err != nil {
		t.Fatal(err)
	}
	vs := parseVectors(t, string(b))
	if len(vs) < 8 {
		t.Fatalf("only %d vectors", len(vs))
	}
	var out strings.Builder
	out.WriteString(header)
	for i, v := range vs {
		t.Run(strconv.Itoa(i+1), func(t *testing.T) {
			got := v
			var err error
			got.window, got.seq, err = derive(v)
			if err != nil {
				t.Fatal(err)
			}
			if *update && v.seq == "new" {
				v = got
			}
			if got != v {
				t.Errorf("got  %swant %s", got.row(), v.row())
			}
			out.WriteString(v.row())
		})
	}
	if *update {
		if err := os.WriteFile(vectorsFile, []byte(out.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestDocShowsVectors: docs/rotating.md shows the vectors this package is
// checked against, verbatim, so a client author testing against the doc
// tests against the code.
func TestDocShowsVectors(t *testing.T) {
	golden, err := os.ReadFile(vectorsFile)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile("../../docs/rotating.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(doc), "\n"+string(golden)) {
		t.Errorf("docs/rotating.md does not show %s verbatim; copy it into the Test vectors section", vectorsFile)
	}
}

func TestWindow(t *testing.T) {
	for _, c := range []struct {
		unix   int64
		period int
		want   int64
	}{
		{0, 30, 0}, {29, 30, 0}, {30, 30, 1}, {59, 30, 1}, {1111111109, 30, 37037036},
		{1111111111, 30, 37037037}, {-1, 30, -1}, {-30, 30, -1}, {-31, 30, -2}, {3599, 3600, 0},
	} {
		if got := Window(time.Unix(c.unix, 0), c.period); got != c.want {
			t.Errorf("Window(%d, %d) = %d, want %d", c.unix, c.period, got, c.want)
		}
		if s := Start(c.want, c.period).Unix(); s > c.unix || c.unix >= s+int64(c.period) {
			t.Errorf("Start(%d, %d) = %d does not hold %d", c.want, c.period, s, c.unix)
		}
	}
}

func TestMessage(t *testing.T) {
	got := string(Message("ssh|x", 37037036, "192.0.2.7", 2))
	if want := "doorward-rotating-v1|ssh|x|37037036|192.0.2.7|2"; got != want {
		t.Errorf("Message = %q, want %q", got, want)
	}
}

func TestParseSecret(t *testing.T) {
	rfc := []byte("12345678901234567890")
	for _, c := range []struct {
		in      string
		want    []byte
		wantErr string
	}{
		{in: "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ", want: rfc},
		{in: "gezdgnbvgy3tqojqgezdgnbvgy3tqojq", want: rfc},
		{in: "gezd gnbv gy3t qojq-gezd gnbv gy3t qojq\n", want: rfc},
		{in: "MFRGG===", want: []byte("abc")},
		{in: "MFRGG", want: []byte("abc")},
		{in: "mfrgg=", want: []byte("abc")},
		{in: "", wantErr: "empty secret"},
		{in: " = ", wantErr: "empty secret"},
		{in: "MFRG1", wantErr: "secret is not base32 (RFC 4648): bad character or length at offset 4"},
		{in: "M", wantErr: "secret is not base32 (RFC 4648): 1 characters cannot be whole bytes"},
		{in: "MF=RGGAB", wantErr: "secret is not base32 (RFC 4648): bad character or length at offset 2"},
	} {
		got, err := ParseSecret(c.in)
		gotErr := ""
		if err != nil {
			gotErr = err.Error()
		}
		if string(got) != string(c.want) || gotErr != c.wantErr {
			t.Errorf("ParseSecret(%q) = %q, %q; want %q, %q", c.in, got, gotErr, c.want, c.wantErr)
		}
	}
}

func TestParsePorts(t *testing.T) {
	for _, c := range []struct {
		in, want string // want: String(), or the error
		n        int
	}{
		{"20000-40000", "20000-40000", 20001},
		{"20000-40000,!22", "20000-40000", 20001},
		{"20000-40000, !30000-30099 ,!20000", "20001-29999,30100-40000", 19900},
		{"!30000,29999-30001", "29999,30001", 2},
		{"5,3,4,1-2,10", "1-5,10", 6},
		{"1-65535", "1-65535", 65535},
		{"65535", "65535", 1},
		{"", `empty item in port list`, 0},
		{"1,,2", `empty item in port list`, 0},
		{"!1", `no ports listed, only exclusions`, 0},
		{"1-3,!1-3", `the exclusions leave no port`, 0},
		{"0", `port "0" is invalid (must be 1-65535)`, 0},
		{"65536", `port "65536" is invalid (must be 1-65535)`, 0},
		{"2-1", `range "2-1" runs backwards`, 0},
		{"1-2-3", `port "2-3" is invalid (must be 1-65535)`, 0},
		{"x", `port "x" is invalid (must be 1-65535)`, 0},
	} {
		p, err := ParsePorts(c.in)
		got := p.String()
		if err != nil {
			got = err.Error()
		}
		if got != c.want || p.Len() != c.n {
			t.Errorf("ParsePorts(%q) = %q (%d ports); want %q (%d)", c.in, got, p.Len(), c.want, c.n)
		}
	}
}

func TestDeriveProperties(t *testing.T) {
	ports, _ := ParsePorts("7000-7009,!7005")
	p := Params{Secret: []byte("k"), Door: "d", Period: 30, Length: 9, Ports: ports, Mode: Both}
	for w := range int64(200) {
		seq, err := Derive(nil, &p, w)
		if err != nil || len(seq) != 9 {
			t.Fatalf("window %d: %v, %v", w, seq, err)
		}
		seen := map[uint16]bool{}
		for _, k := range seq {
			if seen[k.Port] || k.Port < 7000 || k.Port > 7009 || k.Port == 7005 {
				t.Fatalf("window %d: %s: a port repeated or outside the set", w, sequence.Format(seq))
			}
			seen[k.Port] = true
		}
	}
	for _, c := range []struct {
		p    Params
		want string
	}{
		{Params{Door: "d", Period: 30, Length: 4, Ports: ports}, "empty secret"},
		{Params{Secret: []byte("k"), Period: 0, Length: 4, Ports: ports}, "period 0: must be at least 1 second"},
		{Params{Secret: []byte("k"), Period: 30, Length: 33, Ports: ports}, "length 33: must be 1-32"},
		{Params{Secret: []byte("k"), Period: 30, Length: 10, Ports: ports}, "9 ports cannot hold 10 distinct knocks"},
		{Params{Secret: []byte("k"), Period: 30, Length: 4, Ports: mustPorts(t, "1-40000"), Mode: Both}, "40000 ports with both protocols: at most 32768"},
		{Params{Secret: []byte("k"), Period: 30, Length: 4, Ports: ports, Addr: "a|b"}, `address "a|b" contains '|'`},
	} {
		if _, err := Derive(nil, &c.p, 1); err == nil || err.Error() != c.want {
			t.Errorf("Derive(%+v): %v, want %s", c.p, err, c.want)
		}
	}
}

func mustPorts(t *testing.T, s string) Ports {
	p, err := ParsePorts(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestDeriveReusesDst: the detector derives into a door's buffers once a
// period; Derive must not allocate a new sequence then.
func TestDeriveReusesDst(t *testing.T) {
	p := Params{Secret: []byte("k"), Door: "d", Period: 30, Length: 4, Ports: mustPorts(t, "20000-40000")}
	buf := make([]sequence.Knock, 0, 4)
	seq, _ := Derive(buf, &p, 5)
	if &seq[0] != &buf[:1][0] {
		t.Error("Derive did not derive into dst")
	}
}

func FuzzParsePorts(f *testing.F) {
	for _, s := range []string{"20000-40000", "20000-40000,!22", "1-3,!2", "!1", "5,3,4,1-2,10", "1-65535,!1-65534", " 7 - 9 ", "0-1", "1--2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePorts(s)
		if err != nil {
			if p.Len() != 0 {
				t.Fatalf("ParsePorts(%q): ports with error %v", s, err)
			}
			return
		}
		again, err := ParsePorts(p.String())
		if err != nil || !again.Equal(p) {
			t.Fatalf("round trip of %q: %q, %v", s, again, err)
		}
		list := p.List()
		if len(list) != p.Len() || len(list) == 0 {
			t.Fatalf("ParsePorts(%q): %d listed, Len %d", s, len(list), p.Len())
		}
		for i := 1; i < len(list); i++ {
			if list[i] <= list[i-1] {
				t.Fatalf("ParsePorts(%q): not ascending at %d", s, i)
			}
		}
		if list[0] == 0 || p.At(len(list)-1) != list[len(list)-1] {
			t.Fatalf("ParsePorts(%q): At disagrees with List", s)
		}
	})
}

func FuzzParseSecret(f *testing.F) {
	for _, s := range []string{"GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ", "gezd gnbv", "MFRGG===", "MFRG1", "=", "M", "a-b-c-d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		key, err := ParseSecret(s)
		if err != nil {
			if key != nil {
				t.Fatalf("ParseSecret(%q): key with error %v", s, err)
			}
			return
		}
		if len(key) == 0 {
			t.Fatalf("ParseSecret(%q): empty key without error", s)
		}
		enc := strings.ToLower(strings.TrimRight(base32.StdEncoding.EncodeToString(key), "="))
		again, err := ParseSecret(enc)
		if err != nil || string(again) != string(key) {
			t.Fatalf("round trip of %q: %x, %v", s, again, err)
		}
	})
}
