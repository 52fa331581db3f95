package doorman

import (
	"bufio"
	"crypto/hmac"
	"crypto/md5"
	"encoding/hex"
	"os"
	"strconv"
	"strings"
	"testing"
)

type vector struct {
	secret, payload string
	port            uint16
	group           string
	tag             uint32
}

// vectors reads testdata/vectors.txt: the spec's verified vectors.
func vectors(t testing.TB) []vector {
	t.Helper()
	f, err := os.Open("testdata/vectors.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []vector
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		secret, payload, ok := strings.Cut(line, "\t")
		fs := strings.Fields(payload)
		if !ok || len(fs) != 4 {
			t.Fatalf("bad vector line %q", line)
		}
		port, err1 := strconv.ParseUint(fs[0], 10, 16)
		tag, err2 := strconv.ParseUint(fs[2], 10, 32)
		if err1 != nil || err2 != nil {
			t.Fatalf("bad vector line %q", line)
		}
		out = append(out, vector{secret, payload, uint16(port), fs[1], uint32(tag)})
	}
	if len(out) != 5 {
		t.Fatalf("%d vectors, want the spec's 5", len(out))
	}
	return out
}

// TestVectors formats and verifies every vector of the spec, and checks the
// hash against crypto/hmac with the roles as the spec states them (key =
// "port group tag", message = secret).
func TestVectors(t *testing.T) {
	for _, v := range vectors(t) {
		t.Run(v.payload, func(t *testing.T) {
			if got := string(Format(v.port, v.group, v.tag, []byte(v.secret))); got != v.payload {
				t.Errorf("Format = %q, want %q", got, v.payload)
			}
			k, err := Parse([]byte(v.payload))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			d, ok := k.Verify([]byte(v.secret))
			if !ok {
				t.Errorf("Verify(%q) failed", v.secret)
			}
			m := hmac.New(md5.New, []byte(v.payload[:strings.LastIndexByte(v.payload, ' ')]))
			m.Write([]byte(v.secret))
			if want := hex.EncodeToString(m.Sum(nil)); hex.EncodeToString(d[:]) != want || !strings.HasSuffix(v.payload, want) {
				t.Errorf("digest %x, crypto/hmac says %s", d, want)
			}
			if _, ok := k.Verify([]byte(v.secret + "x")); ok {
				t.Error("Verify accepted a wrong secret")
			}
		})
	}
	if n := len("65534 abcdefghijklm 4294967295 8cab1afec6cca2d638e70a047ac4ef83"); n != MaxOriginalPayload {
		t.Errorf("largest vector is %d bytes, MaxOriginalPayload %d", n, MaxOriginalPayload)
	}
}

// TestParse covers doormand's tokenising and length rules (spec §1.3 steps
// 2, 5 and 6) and the leniencies of its hash check (step 11).
func TestParse(t *testing.T) {
	const (
		hash   = "4270a3248a23c209b37d35bb060e1cd6"
		secret = "hushhush"
	)
	type result struct {
		err                        error
		service, group, tag, hashF string
		valid                      bool // Verify with secret
	}
	tests := []struct {
		name, payload string
		want          result
	}{
		{"plain", "22 martink 1519966632 " + hash, result{nil, "22", "martink", "1519966632", hash, true}},
		{"trailing newline", "22 martink 1519966632 " + hash + "\n", result{nil, "22", "martink", "1519966632", hash, true}},
		{"only one newline dropped", "22 martink 1519966632 " + hash + "\n\n", result{ErrLengths, "22", "martink", "1519966632", hash + "\n", false}},
		{"crlf is not a newline", "22 martink 1519966632 " + hash + "\r\n", result{ErrLengths, "22", "martink", "1519966632", hash + "\r", false}},
		{"runs of spaces", "  22   martink 1519966632    " + hash + "   ", result{nil, "22", "martink", "1519966632", hash, true}},
		{"upper-case hash", "22 martink 1519966632 " + strings.ToUpper(hash), result{nil, "22", "martink", "1519966632", strings.ToUpper(hash), true}},
		{"extra fields ignored", "22 martink 1519966632 " + hash + " more stuff", result{nil, "22", "martink", "1519966632", hash, true}},
		{"ends at NUL", "22 martink 1519966632 " + hash + "\x00garbage", result{nil, "22", "martink", "1519966632", hash, true}},
		{"port re-normalised", "022 martink 1519966632 " + hash, result{nil, "022", "martink", "1519966632", hash, true}},
		{"port with junk after digits", "22x martink 1519966632 " + hash, result{nil, "22x", "martink", "1519966632", hash, true}},
		{"port with sign", "+22 martink 1519966632 " + hash, result{nil, "+22", "martink", "1519966632", hash, true}},
		{"tab is not a separator", "22\tmartink 1519966632 x " + hash, result{ErrLengths, "22\tmartink", "1519966632", "x", hash, false}},
		{"tag verbatim, not re-padded", "22 martink 01519966632 " + hash, result{ErrLengths, "22", "martink", "01519966632", hash, false}},
		{"three fields", "22 martink " + hash, result{err: ErrTokens}},
		{"two fields", "22 martink", result{err: ErrTokens}},
		{"empty", "", result{err: ErrTokens}},
		{"only spaces", "     ", result{err: ErrTokens}},
		{"NUL before fourth field", "22 martink 1519966632\x00 " + hash, result{err: ErrTokens}},
		{"service too long", "000022 martink 1519966632 " + hash, result{ErrLengths, "000022", "martink", "1519966632", hash, false}},
		{"group of 32", "22 " + strings.Repeat("g", 32) + " 1 " + hash, result{nil, "22", strings.Repeat("g", 32), "1", hash, false}},
		{"group of 33", "22 " + strings.Repeat("g", 33) + " 1 " + hash, result{ErrLengths, "22", strings.Repeat("g", 33), "1", hash, false}},
		{"short hash", "22 martink 1519966632 " + hash[:31], result{ErrLengths, "22", "martink", "1519966632", hash[:31], false}},
		{"non-hex digit decodes as 0", "22 martink 1519966632 " + "4z70a3248a23c209b37d35bb060e1cd6", result{nil, "22", "martink", "1519966632", "4z70a3248a23c209b37d35bb060e1cd6", false}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k, err := Parse([]byte(tc.payload))
			got := result{err: err, service: string(k.Service), group: string(k.Group), tag: string(k.Tag), hashF: string(k.Hash)}
			if err == nil {
				_, got.valid = k.Verify([]byte(secret))
			}
			if got != tc.want {
				t.Errorf("Parse(%q)\n got %+v\nwant %+v", tc.payload, got, tc.want)
			}
		})
	}
}

// TestDecodeHashLenient: hex2byte decodes anything that is not a hex digit
// as 0, so "4z70" equals "4070".
func TestDecodeHashLenient(t *testing.T) {
	a := DecodeHash([]byte("4z70a3248a23c209b37d35bb060e1cd6"))
	b := DecodeHash([]byte("4070A3248A23C209B37D35BB060E1CD6"))
	if a != b {
		t.Errorf("%x != %x", a, b)
	}
}

func TestAtoi(t *testing.T) {
	for in, want := range map[string]int{
		"22": 22, "022": 22, "22x": 22, "+7": 7, "-7": -7, "x22": 0, "": 0,
		" \t22": 22, "99999": 99999, "-": 0, "65534": 65534,
	} {
		if got := Atoi([]byte(in)); got != want {
			t.Errorf("Atoi(%q) = %d, want %d", in, got, want)
		}
	}
}

// TestSumLongInputs checks the two paths Sum does not take for doorman
// knocks (a key over one block, a secret over the stack buffer) against
// crypto/hmac.
func TestSumLongInputs(t *testing.T) {
	for _, tc := range []struct{ key, msg string }{
		{strings.Repeat("k", 64), "s"},
		{strings.Repeat("k", 65), "s"},
		{"k", strings.Repeat("s", 192)},
		{"k", strings.Repeat("s", 193)},
		{"", ""},
	} {
		m := hmac.New(md5.New, []byte(tc.key))
		m.Write([]byte(tc.msg))
		got := Sum([]byte(tc.key), []byte(tc.msg))
		if want := m.Sum(nil); !hmac.Equal(got[:], want) {
			t.Errorf("Sum(len %d, len %d) = %x, want %x", len(tc.key), len(tc.msg), got, want)
		}
	}
}

// TestParseVerifyAllocs: the detector parses and verifies every packet an
// attacker sends, so neither may allocate.
func TestParseVerifyAllocs(t *testing.T) {
	payload := []byte("22 martink 1519966632 4270a3248a23c209b37d35bb060e1cd6\n")
	secret := []byte("hushhush")
	n := testing.AllocsPerRun(100, func() {
		k, err := Parse(payload)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := k.Verify(secret); !ok {
			t.Fatal("not valid")
		}
	})
	if n != 0 {
		t.Errorf("Parse+Verify: %v allocations, want 0", n)
	}
}

func TestNewTag(t *testing.T) {
	seen := map[uint32]bool{}
	for range 8 {
		tag, err := NewTag()
		if err != nil {
			t.Fatal(err)
		}
		seen[tag] = true
	}
	if len(seen) < 2 {
		t.Errorf("8 tags, %d distinct", len(seen))
	}
	p := Format(1, "g", 42, []byte("s"))
	if !strings.Contains(string(p), " 0000000042 ") {
		t.Errorf("tag not zero-padded to 10 digits: %q", p)
	}
}

func BenchmarkParseVerify(b *testing.B) {
	payload := []byte("22 martink 1519966632 4270a3248a23c209b37d35bb060e1cd6")
	secret := []byte("hushhush")
	b.ReportAllocs()
	for b.Loop() {
		k, _ := Parse(payload)
		k.Verify(secret)
	}
}
