package metrics

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// The pool gauges (totals, per ENI, per CIDR, limits) are refreshed
// together after every pool cycle: the per-ENI and per-CIDR series are
// reset and rebuilt. A scrape must see one refresh or the next, never the
// middle of one (series missing, or at 0, which Prometheus records as
// stale series and dips). So they are collected as one group, under the
// lock an update holds (LockPool), and as copies of their values at that moment.

// group collects its collectors under mu, each metric frozen at its value
// then.
type group struct {
	mu *sync.Mutex
	cs []prometheus.Collector
}

func (g group) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range g.cs {
		c.Describe(ch)
	}
}

func (g group) Collect(ch chan<- prometheus.Metric) {
	g.mu.Lock()
	defer g.mu.Unlock()
	buf := make(chan prometheus.Metric)
	go func() {
		defer close(buf)
		for _, c := range g.cs {
			c.Collect(buf)
		}
	}()
	for m := range buf {
		var v dto.Metric
		if err := m.Write(&v); err != nil {
			ch <- prometheus.NewInvalidMetric(m.Desc(), err)
			continue
		}
		ch <- frozen{desc: m.Desc(), v: &v}
	}
}

// frozen is a metric's value as it was collected.
type frozen struct {
	desc *prometheus.Desc
	v    *dto.Metric
}

func (f frozen) Desc() *prometheus.Desc { return f.desc }

func (f frozen) Write(out *dto.Metric) error {
	out.Label, out.Gauge, out.Counter = f.v.Label, f.v.Gauge, f.v.Counter
	out.Untyped, out.Histogram, out.Summary = f.v.Untyped, f.v.Histogram, f.v.Summary
	out.TimestampMs = f.v.TimestampMs
	return nil
}

// LockPool starts an update of the pool gauges: until UnlockPool no
// scrape collects them, so none sees the update half done, and updates
// are serialised (none overwrites a newer one).
func (m *Metrics) LockPool() { m.poolMu.Lock() }

// UnlockPool ends the update LockPool started.
func (m *Metrics) UnlockPool() { m.poolMu.Unlock() }
