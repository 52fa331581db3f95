package doorman

import (
	"slices"
	"strings"
	"testing"
)

// TestParseCF pins cfg_next_ascii_value's quirks (spec §3).
func TestParseCF(t *testing.T) {
	long := "run " + strings.Repeat("a", 130) // split after 127 bytes
	tests := []struct {
		name, src string
		want      []CFEntry
	}{
		{"key and value", "group  martink\n", []CFEntry{{"group", "martink", 1}}},
		{"value is one token", "interface eth0 extra\n", []CFEntry{{"interface", "eth0", 1}}},
		{"tabs", "\tport\t1001\t\n", []CFEntry{{"port", "1001", 1}}},
		{"comment anywhere", "secret abc#def\n# whole line\n", []CFEntry{{"secret", "abc", 1}}},
		{"comment inside quotes", "run \"ssh #x\"\n", []CFEntry{{"run", "", 1}}},
		{"quotes keep the first", "run \"ssh -l me %H%\"\n", []CFEntry{{"run", "\"ssh -l me %H%", 1}}},
		{"text after the last quote dropped", "run ab\"c d\" e\n", []CFEntry{{"run", "\"c d", 1}}},
		{"single quote is empty", "run \"ssh\n", []CFEntry{{"run", "", 1}}},
		{"single quotes are ordinary", "run 'ssh -l me'\n", []CFEntry{{"run", "'ssh", 1}}},
		{"key without value skipped", "port\nport 1002\n", []CFEntry{{"port", "1002", 2}}},
		{"CR is part of the value", "port 1001\r\n", []CFEntry{{"port", "1001\r", 1}}},
		{"NUL ends the line", "group a\x00b c\n", []CFEntry{{"group", "a", 1}}},
		{"no final newline", "group g", []CFEntry{{"group", "g", 1}}},
		// The first 127 bytes are a line; "aaaaaaa\n" is a key without value.
		{"long line split", long + "\n", []CFEntry{{"run", strings.Repeat("a", 123), 1}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := ParseCF("f", []byte(tc.src)).Entries
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
	cf := ParseCF("f", []byte("Secret one\nSECRET two\n"))
	if e, ok := cf.First("secret"); !ok || e.Value != "one" {
		t.Errorf("First = %+v, %v; want the first, case-insensitively", e, ok)
	}
}

// TestCFSplitPiece: the second piece of a long line is parsed on its own.
func TestCFSplitPiece(t *testing.T) {
	src := strings.Repeat("k", 127) + "port 9\n"
	got := ParseCF("f", []byte(src)).Entries
	want := []CFEntry{{"port", "9", 1}}
	if !slices.Equal(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

// FuzzParseCF: the lexer never panics; keys and values hold no NUL, '#'
// or newline, keys no blank, and no entry is longer than one fgets piece.
func FuzzParseCF(f *testing.F) {
	for _, src := range []string{
		"group  martink\nsecret abc#def\n# whole line\n",
		"\tport\t1001\t\nport\nport 1002\r\n",
		"run \"ssh -l me %H%\"\nrun ab\"c d\" e\nrun 'ssh -l me'\n",
		"group a\x00b c\ngroup g",
		"run " + strings.Repeat("a", 130) + "\n" + strings.Repeat("k", 127) + "port 9\n",
		"run \"a\" b \"c\n" + strings.Repeat("y", 300),
	} {
		f.Add([]byte(src))
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		for _, e := range ParseCF("fuzz", src).Entries {
			if e.Key == "" || strings.ContainsAny(e.Key, " \t\n#\x00") || strings.ContainsAny(e.Value, "\n#\x00") {
				t.Fatalf("entry %+v", e)
			}
			if len(e.Key)+len(e.Value) > cfLine {
				t.Fatalf("entry longer than a piece: %+v", e)
			}
		}
	})
}
