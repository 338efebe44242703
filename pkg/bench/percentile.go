package bench

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"time"
)

// ErrNoSamples is returned when a statistic is asked of an empty sample set.
var ErrNoSamples = errors.New("no samples")

// Percentile returns the p-th percentile (0 < p <= 100) of samples by the
// nearest-rank method: the smallest sample such that at least p% of all
// samples are at or below it. Nearest rank always returns a value that was
// observed, so a p99 over 20 samples is honestly the maximum.
func Percentile(samples []time.Duration, p float64) (time.Duration, error) {
	if len(samples) == 0 {
		return 0, ErrNoSamples
	}
	if math.IsNaN(p) || p <= 0 || p > 100 {
		return 0, fmt.Errorf("percentile %v: want 0 < p <= 100", p)
	}
	s := slices.Clone(samples)
	slices.Sort(s)
	return s[rank(len(s), p)], nil
}

// rank is the 0-based nearest-rank index of the p-th percentile of n
// sorted samples.
func rank(n int, p float64) int {
	// The epsilon keeps 0.99*100 from landing on 99.00000000000001 and
	// skipping a rank.
	r := int(math.Ceil(p/100*float64(n) - 1e-9))
	return min(max(r, 1), n) - 1
}

// Latency summarises a set of durations.
type Latency struct {
	N    int
	P50  time.Duration
	P99  time.Duration
	Max  time.Duration
	Mean time.Duration
}

// Summarize computes the count, p50, p99, maximum and mean of samples.
func Summarize(samples []time.Duration) (Latency, error) {
	if len(samples) == 0 {
		return Latency{}, ErrNoSamples
	}
	s := slices.Clone(samples)
	slices.Sort(s)
	var sum time.Duration
	for _, d := range s {
		sum += d
	}
	return Latency{
		N:    len(s),
		P50:  s[rank(len(s), 50)],
		P99:  s[rank(len(s), 99)],
		Max:  s[len(s)-1],
		Mean: sum / time.Duration(len(s)),
	}, nil
}
