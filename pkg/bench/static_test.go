package bench

import (
	"math"
	"testing"
)

func TestStaticPool(t *testing.T) {
	m := StaticPool{PerENI: 29, MaxENIs: 8, WarmENIs: 1, Cooldown: 30}
	for _, c := range []struct{ inUse, cooling, want int }{
		{0, 0, 29},       // the warm ENI alone
		{1, 0, 58},       // one ENI in use, one warm
		{29, 0, 58},      // exactly one ENI full
		{20, 10, 87},     // cooling addresses count as needed
		{40, 190, 232},   // capped at the instance's 8 ENIs
		{300, 1000, 232}, // never over the cap
	} {
		if got := m.Held(c.inUse, c.cooling); got != c.want {
			t.Errorf("Held(%d, %d) = %d, want %d", c.inUse, c.cooling, got, c.want)
		}
	}
	// DELs at 1..10 s. At t=5 with 40 pods: 5 cooling (1..5) -> 45 -> 2+1
	// ENIs = 87, idle 47. At t=40 with 20 pods: the DEL at 10 s has just
	// cooled, none is cooling -> 1+1 ENIs = 58, idle 38.
	samples := []PoolSample{{T: 5, InUse: 40}, {T: 40, InUse: 20}}
	var dels []float64
	for i := 10; i >= 1; i-- {
		dels = append(dels, float64(i))
	}
	got, err := m.MeanIdle(samples, dels)
	if err != nil {
		t.Fatal(err)
	}
	if want := (47.0 + 38.0) / 2; math.Abs(got-want) > 1e-9 {
		t.Errorf("MeanIdle = %v, want %v", got, want)
	}
	if _, err := m.MeanIdle(nil, dels); err == nil {
		t.Error("MeanIdle of no samples: no error")
	}
}
