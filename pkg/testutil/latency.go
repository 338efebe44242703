package testutil

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/bench"
)

// ConcurrentLatency runs b.N iterations spread over workers goroutines:
// iteration i (1-based) calls op(worker, i), which returns the duration of
// the part to measure (an ADD without the DEL that follows it). It reports
// the nearest-rank p50 and p99 of those durations as <name>-p50-µs and
// <name>-p99-µs. An error from op fails the benchmark and stops its worker.
func ConcurrentLatency(b *testing.B, workers int, name string, op func(worker int, i int64) (time.Duration, error)) {
	b.Helper()
	var (
		next atomic.Int64
		mu   sync.Mutex
		all  []time.Duration
		wg   sync.WaitGroup
	)
	b.ResetTimer()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			defer func() { mu.Lock(); all = append(all, mine...); mu.Unlock() }()
			for i := next.Add(1); i <= int64(b.N); i = next.Add(1) {
				d, err := op(w, i)
				if err != nil {
					b.Error(err)
					return
				}
				mine = append(mine, d)
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	for _, q := range []float64{50, 99} {
		if d, err := bench.Percentile(all, q); err == nil {
			b.ReportMetric(float64(d.Microseconds()), fmt.Sprintf("%s-p%.0f-µs", name, q))
		}
	}
}
