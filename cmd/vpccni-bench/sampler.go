package main

import (
	"sync"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/bench"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
)

// sampler records the node's pool every tick.
type sampler struct {
	sim    *vpcsim.Sim
	nodeID string
	every  time.Duration
	inUse  func() int
	start  time.Time

	mu       sync.Mutex
	series   bench.PoolSeries
	err      error
	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
}

func startSampler(sim *vpcsim.Sim, nodeID, title string, every time.Duration, inUse func() int) *sampler {
	s := &sampler{sim: sim, nodeID: nodeID, every: every, inUse: inUse, start: time.Now(),
		series: bench.PoolSeries{Title: title}, stop: make(chan struct{}), done: make(chan struct{})}
	s.sample()
	go func() {
		defer close(s.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-s.stop:
				s.sample()
				return
			case <-t.C:
				s.sample()
			}
		}
	}()
	return s
}

func (s *sampler) sample() {
	p, err := observePool(s.sim, s.nodeID)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.err = err
		return
	}
	s.series.Samples = append(s.series.Samples, bench.PoolSample{
		T: time.Since(s.start).Seconds(), Held: p.Held, InUse: s.inUse(), ENIs: p.ENIs,
	})
}

func (s *sampler) mark(label string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.series.Marks = append(s.series.Marks, bench.Mark{T: time.Since(s.start).Seconds(), Label: label})
}

// between returns the samples taken from one time to another.
func (s *sampler) between(t0, t1 time.Time) []bench.PoolSample {
	s.mu.Lock()
	defer s.mu.Unlock()
	from, to := t0.Sub(s.start).Seconds(), t1.Sub(s.start).Seconds()
	var out []bench.PoolSample
	for _, p := range s.series.Samples {
		if p.T >= from && p.T <= to {
			out = append(out, p)
		}
	}
	return out
}

// finish stops sampling (after one last sample) and returns the series;
// it may be called more than once.
func (s *sampler) finish() (bench.PoolSeries, error) {
	s.stopOnce.Do(func() { close(s.stop) })
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.series, s.err
}

// clock puts times on the samples' clock (seconds since the sampler started).
func (s *sampler) clock(ts []time.Time) []float64 {
	out := make([]float64, len(ts))
	for i, t := range ts {
		out[i] = t.Sub(s.start).Seconds()
	}
	return out
}
