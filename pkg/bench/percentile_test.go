package bench

import (
	"errors"
	"math"
	"testing"
	"time"
)

func ms(n ...int) []time.Duration {
	out := make([]time.Duration, len(n))
	for i, v := range n {
		out[i] = time.Duration(v) * time.Millisecond
	}
	return out
}

func TestPercentileNearestRank(t *testing.T) {
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		// Reverse order: Percentile must sort, not trust the input.
		hundred[i] = time.Duration(100-i) * time.Millisecond
	}
	for _, tc := range []struct {
		name    string
		samples []time.Duration
		p       float64
		want    time.Duration
	}{
		{"single sample p50", ms(7), 50, 7 * time.Millisecond},
		{"single sample p99", ms(7), 99, 7 * time.Millisecond},
		{"two samples p50 is the lower", ms(9, 1), 50, 1 * time.Millisecond},
		{"two samples p51 is the upper", ms(9, 1), 51, 9 * time.Millisecond},
		{"p100 is the maximum", ms(3, 1, 2), 100, 3 * time.Millisecond},
		{"tiny p is the minimum", ms(3, 1, 2), 0.0001, 1 * time.Millisecond},
		{"p99 of 100 is the 99th", hundred, 99, 99 * time.Millisecond},
		{"p50 of 100 is the 50th", hundred, 50, 50 * time.Millisecond},
		{"p99 of 20 is the maximum", ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20), 99, 20 * time.Millisecond},
		{"ties", ms(5, 5, 5, 5), 50, 5 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Percentile(tc.samples, tc.p)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("Percentile(%v, %v) = %v, want %v", tc.samples, tc.p, got, tc.want)
			}
		})
	}
}

func TestPercentileDoesNotReorderInput(t *testing.T) {
	in := ms(3, 1, 2)
	if _, err := Percentile(in, 50); err != nil {
		t.Fatal(err)
	}
	if in[0] != 3*time.Millisecond || in[1] != time.Millisecond {
		t.Errorf("input reordered: %v", in)
	}
}

func TestPercentileRejectsBadInput(t *testing.T) {
	if _, err := Percentile(nil, 50); !errors.Is(err, ErrNoSamples) {
		t.Errorf("empty samples: err = %v, want ErrNoSamples", err)
	}
	for _, p := range []float64{0, -1, 100.0001, math.NaN(), math.Inf(1)} {
		if _, err := Percentile(ms(1, 2), p); err == nil {
			t.Errorf("p = %v: no error", p)
		}
	}
}

func TestSummarize(t *testing.T) {
	l, err := Summarize(ms(4, 1, 3, 2))
	if err != nil {
		t.Fatal(err)
	}
	want := Latency{N: 4, P50: 2 * time.Millisecond, P99: 4 * time.Millisecond, Max: 4 * time.Millisecond, Mean: 2500 * time.Microsecond}
	if l != want {
		t.Errorf("Summarize = %+v, want %+v", l, want)
	}
	if _, err := Summarize(nil); !errors.Is(err, ErrNoSamples) {
		t.Errorf("Summarize(nil): err = %v, want ErrNoSamples", err)
	}
}
