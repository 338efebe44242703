package bench

import (
	"errors"
	"sort"
)

// StaticPool models the static warm-pool algorithm (the pool before
// issue 15's demand-driven sizing, and upstream's with WARM_ENI_TARGET):
// it attaches ENIs until the addresses neither used by a pod nor cooling
// after a DEL leave WarmENIs whole ENIs' worth free, up to the instance's
// ENI limit. The model shrinks the moment demand falls, which the real
// algorithm does only after its cooldowns and release spacing, so it
// understates what the static algorithm holds: a goal set from it is
// stricter than one set from the real thing.
type StaticPool struct {
	PerENI   int     // pod addresses per ENI (the ENI's primary excluded)
	MaxENIs  int     // the instance's ENI limit
	WarmENIs int     // WARM_ENI_TARGET
	Cooldown float64 // seconds a deleted pod's address cools before reuse
}

// Held is how many addresses the static algorithm holds with inUse pod
// addresses and cooling addresses in cooldown.
func (m StaticPool) Held(inUse, cooling int) int {
	need := inUse + cooling
	enis := (need+m.PerENI-1)/m.PerENI + m.WarmENIs
	return m.PerENI * max(1, min(enis, m.MaxENIs))
}

// HeldAt is Held at each sample, where the cooling addresses at a sample
// are the DELs (at times dels, on the samples' clock) within Cooldown
// before it.
func (m StaticPool) HeldAt(samples []PoolSample, dels []float64) ([]int, error) {
	if m.PerENI <= 0 || m.MaxENIs <= 0 {
		return nil, errors.New("static pool model: PerENI and MaxENIs must be positive")
	}
	d := append([]float64(nil), dels...)
	sort.Float64s(d)
	out := make([]int, len(samples))
	for i, s := range samples {
		// cooling: DELs in (T-Cooldown, T]
		lo := sort.Search(len(d), func(i int) bool { return d[i] > s.T-m.Cooldown })
		hi := sort.Search(len(d), func(i int) bool { return d[i] > s.T })
		out[i] = m.Held(s.InUse, hi-lo)
	}
	return out, nil
}

// MeanIdle is the mean over samples of HeldAt minus the pods in use.
func (m StaticPool) MeanIdle(samples []PoolSample, dels []float64) (float64, error) {
	if len(samples) == 0 {
		return 0, ErrNoSamples
	}
	held, err := m.HeldAt(samples, dels)
	if err != nil {
		return 0, err
	}
	var sum float64
	for i, s := range samples {
		sum += float64(held[i] - s.InUse)
	}
	return sum / float64(len(samples)), nil
}
