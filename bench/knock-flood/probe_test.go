package main

import (
	"testing"
	"time"
)

func TestParseUnixNano(t *testing.T) {
	got, err := parseUnixNano("1796453251.012345678")
	if err != nil || got.Unix() != 1796453251 || got.Nanosecond() != 12345678 {
		t.Fatalf("got %v, %v", got, err)
	}
	for _, bad := range []string{"", "1796453251", "1796453251.12345", "x.012345678", "1.01234567x"} {
		if _, err := parseUnixNano(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestMedianMax(t *testing.T) {
	for _, c := range []struct {
		in          []time.Duration
		median, max time.Duration
	}{
		{[]time.Duration{5}, 5, 5},
		{[]time.Duration{9, 1, 4}, 4, 9},
		{[]time.Duration{8, 2, 6, 4}, 5, 8},
	} {
		m, x := medianMax(c.in)
		if m != c.median || x != c.max {
			t.Errorf("%v: got %v %v, want %v %v", c.in, m, x, c.median, c.max)
		}
	}
}
