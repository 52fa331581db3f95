// Package latency keeps a histogram of durations the daemon measures on
// itself, such as knock-to-command latency (a knock's capture timestamp to
// the start of its command), so an operator sees p50, p99 and the maximum
// in the log without an outside clock.
//
// A Histogram is a fixed array of counters on a log scale: recording is a
// few atomic adds, allocates nothing, and is safe from any goroutine (the
// engine starts commands on worker goroutines); memory does not grow with
// the number of samples, so an attacker who completes knocks by the
// thousand costs it nothing. The price is resolution: each power of two is
// cut into subBuckets steps, so a quantile is exact to within 1/subBuckets
// (12.5 %) of its value, which is plenty to tell 1 ms from 20 ms.
package latency

import (
	"math/bits"
	"sync/atomic"
	"time"
)

const (
	// minShift: durations below 2^minShift ns (1.024 µs) share bucket 0.
	minShift = 10
	// maxShift: durations of 2^maxShift ns (68.7 s) and more share the
	// last bucket; the maximum is kept exactly anyway.
	maxShift = 36
	subBits  = 3
	// subBuckets steps per power of two.
	subBuckets = 1 << subBits
	// NumBuckets is the histogram's fixed size.
	NumBuckets = 1 + (maxShift-minShift)*subBuckets + 1
)

// Histogram counts durations. The zero value is empty and ready to use.
type Histogram struct {
	buckets [NumBuckets]atomic.Uint64
	count   atomic.Uint64
	max     atomic.Int64 // ns
}

// Record adds one duration. A negative one (the wall clock stepped back
// between the two readings) counts as 0.
func (h *Histogram) Record(d time.Duration) {
	d = max(d, 0)
	h.buckets[index(d)].Add(1)
	h.count.Add(1)
	for {
		m := h.max.Load()
		if int64(d) <= m || h.max.CompareAndSwap(m, int64(d)) {
			return
		}
	}
}

// index is the bucket d falls in.
func index(d time.Duration) int {
	ns := uint64(d)
	if ns < 1<<minShift {
		return 0
	}
	e := bits.Len64(ns) - 1 // 2^e <= ns < 2^(e+1)
	if e >= maxShift {
		return NumBuckets - 1
	}
	s := int(ns>>(e-subBits)) & (subBuckets - 1)
	return 1 + (e-minShift)*subBuckets + s
}

// upper is the first duration above bucket i (i < NumBuckets-1).
func upper(i int) time.Duration {
	if i == 0 {
		return 1 << minShift
	}
	i-- // the bucket's step counted from 2^minShift
	e, s := minShift+i/subBuckets, i%subBuckets
	return time.Duration(uint64(subBuckets+s+1) << (e - subBits))
}

// Summary is a histogram's figures at one moment.
type Summary struct {
	Count         uint64
	P50, P99, Max time.Duration
}

// Summary reads the histogram. Quantiles are the upper bound of the bucket
// the sample of that rank is in (nearest rank), never above Max: a figure
// to compare with a target is rounded up, not down. Records that race with
// it may be counted in some figures and not in others.
func (h *Histogram) Summary() Summary {
	var counts [NumBuckets]uint64
	var n uint64
	for i := range h.buckets {
		counts[i] = h.buckets[i].Load()
		n += counts[i]
	}
	s := Summary{Count: n, Max: time.Duration(h.max.Load())}
	s.P50 = quantile(&counts, n, 0.50, s.Max)
	s.P99 = quantile(&counts, n, 0.99, s.Max)
	return s
}

func quantile(counts *[NumBuckets]uint64, n uint64, q float64, most time.Duration) time.Duration {
	if n == 0 {
		return 0
	}
	rank := uint64(q * float64(n))
	if float64(rank) < q*float64(n) {
		rank++
	}
	rank = max(rank, 1)
	var seen uint64
	for i, c := range counts {
		if seen += c; seen >= rank {
			if i == NumBuckets-1 {
				return most
			}
			return min(upper(i), most)
		}
	}
	return most
}
