package latency

import (
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"
)

// Every duration falls in a bucket whose bounds hold it, and the buckets
// follow one another without gap or overlap.
func TestBucketBounds(t *testing.T) {
	lower := func(i int) time.Duration {
		if i == 0 {
			return 0
		}
		return upper(i - 1)
	}
	for i := 1; i < NumBuckets-1; i++ {
		if lo, hi := lower(i), upper(i); hi <= lo {
			t.Fatalf("bucket %d: [%v, %v) is empty", i, lo, hi)
		}
		if got := index(lower(i)); got != i {
			t.Fatalf("index(%v) = %d, want %d (its lower bound)", lower(i), got, i)
		}
		if got := index(upper(i) - 1); got != i {
			t.Fatalf("index(%v) = %d, want %d (just under its upper bound)", upper(i)-1, got, i)
		}
		// A step is at most 1/subBuckets of the bucket's lower bound.
		if lo, hi := lower(i), upper(i); float64(hi-lo) > float64(lo)/subBuckets+1 {
			t.Fatalf("bucket %d: [%v, %v) is wider than 1/%d", i, lo, hi, subBuckets)
		}
	}
	if got := index(upper(NumBuckets - 2)); got != NumBuckets-1 {
		t.Fatalf("index(%v) = %d, want the last bucket", upper(NumBuckets-2), got)
	}
	if got := index(time.Duration(1<<62) + 1); got != NumBuckets-1 {
		t.Fatalf("a huge duration went to bucket %d", got)
	}
}

func TestSummary(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name    string
		samples []time.Duration
		want    Summary
	}{
		{name: "empty", want: Summary{}},
		{name: "one", samples: []time.Duration{1500 * time.Microsecond},
			want: Summary{Count: 1, P50: 1500 * time.Microsecond, P99: 1500 * time.Microsecond, Max: 1500 * time.Microsecond}},
		{name: "negative counts as zero", samples: []time.Duration{-ms},
			want: Summary{Count: 1}},
		// 99 samples of 1 ms and one of 30 ms: p99 is the 99th (nearest
		// rank), 1 ms rounded up to its bucket's top (2^20 ns = 1.048576
		// ms is where 1 ms falls: its bucket is [0.983, 1.049) ms).
		{name: "one slow of a hundred", samples: append(slices.Repeat([]time.Duration{ms}, 99), 30*ms),
			want: Summary{Count: 100, P50: 1 << 20, P99: 1 << 20, Max: 30 * ms}},
		{name: "two slow of a hundred", samples: append(slices.Repeat([]time.Duration{ms}, 98), 30*ms, 30*ms),
			want: Summary{Count: 100, P50: 1 << 20, P99: 30 * ms, Max: 30 * ms}},
		{name: "beyond the last bucket", samples: []time.Duration{time.Hour},
			want: Summary{Count: 1, P50: time.Hour, P99: time.Hour, Max: time.Hour}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h Histogram
			for _, d := range tt.samples {
				h.Record(d)
			}
			if got := h.Summary(); got != tt.want {
				t.Errorf("Summary() = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// Quantiles of random samples are never below the exact ones and at most
// one step (1/subBuckets) above.
func TestQuantilesAgainstSorted(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var h Histogram
	var all []time.Duration
	for range 10000 {
		d := time.Duration(r.ExpFloat64() * float64(2*time.Millisecond))
		h.Record(d)
		all = append(all, d)
	}
	slices.Sort(all)
	s := h.Summary()
	for _, q := range []struct {
		name  string
		got   time.Duration
		exact time.Duration
	}{
		{"p50", s.P50, all[len(all)/2-1]},
		{"p99", s.P99, all[len(all)*99/100-1]},
		{"max", s.Max, all[len(all)-1]},
	} {
		if q.got < q.exact || float64(q.got) > float64(q.exact)*(1+1.0/subBuckets)+1024 {
			t.Errorf("%s = %v, exact %v", q.name, q.got, q.exact)
		}
	}
	if s.Count != 10000 {
		t.Errorf("count %d, want 10000", s.Count)
	}
}

func TestConcurrentRecord(t *testing.T) {
	var h Histogram
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 1000 {
				h.Record(time.Duration(g*1000+i) * time.Microsecond)
			}
		}()
	}
	wg.Wait()
	s := h.Summary()
	if s.Count != 8000 || s.Max != 7999*time.Microsecond {
		t.Errorf("Summary() = %+v, want 8000 samples, max 7.999ms", s)
	}
}

func TestRecordAllocatesNothing(t *testing.T) {
	var h Histogram
	if n := testing.AllocsPerRun(1000, func() { h.Record(3 * time.Millisecond) }); n != 0 {
		t.Errorf("Record allocates %v times", n)
	}
}

func BenchmarkRecord(b *testing.B) {
	var h Histogram
	for i := 0; b.Loop(); i++ {
		h.Record(time.Duration(i) * time.Microsecond)
	}
}
