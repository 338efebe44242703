package pool

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// TestReviewRandomDemandNeverFlaps drives random demand (pods up and down,
// with and without cooldown) over random targets, instance limits,
// unmanaged ENIs and a reserved trunk slot, and checks on every action:
// the ENI, per-ENI and address limits hold (sim.apply), the pool settles,
// and within one settling no ENI is freed and another created (or the
// reverse): that is an attach/free/attach flap.
func TestReviewRandomDemandNeverFlaps(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 11))
	type inst struct{ maxENIs, ipv4 int }
	insts := []inst{{3, 10}, {4, 15}, {3, 6}, {8, 30}, {2, 4}}
	for c := range 400 {
		it := insts[r.IntN(len(insts))]
		pd := r.IntN(2) == 0
		p := Params{
			WarmENI: r.IntN(3), PrefixDelegation: pd, MaxENIs: it.maxENIs, IPv4PerENI: it.ipv4,
			MaxPods: []int{0, 17, 29, 58, 110}[r.IntN(5)], ReserveTrunk: r.IntN(4) == 0,
			CanAllocate: true, CanRelease: true, CanFreeENI: true,
		}
		if r.IntN(2) == 0 {
			p.WarmENI, p.WarmIP, p.MinimumIP = 0, r.IntN(12), r.IntN(25)
		}
		if pd {
			p.WarmPrefix = r.IntN(3)
			if p.WarmIP == 0 && p.MinimumIP == 0 && p.WarmPrefix == 0 {
				p.WarmPrefix = 1
			}
		}
		unmanaged := r.IntN(2)
		name := fmt.Sprintf("case %d: %+v unmanaged=%d", c, p, unmanaged)
		s := newSim(t, p, unmanaged)
		for step := range 30 {
			want := r.IntN(capacity(p) + 5)
			if want < s.placed() {
				s.remove(s.placed()-want, r.IntN(2) == 0)
			}
			if r.IntN(3) == 0 {
				s.cool()
			}
			s.pods = want
			created, freed := false, false
			for i := 0; ; i++ {
				if i == 200 {
					t.Fatalf("%s, step %d: no convergence: %+v", name, step, s.counts())
				}
				q := s.p
				q.Pending = s.place()
				a := Plan(s.pool, q)
				if a.Kind == None {
					break
				}
				switch a.Kind {
				case CreateENI:
					created = true
				case FreeENI:
					freed = true
				}
				if created && freed {
					t.Fatalf("%s, step %d (%d pods): an ENI was freed and another created while settling: %+v", name, step, want, s.counts())
				}
				s.apply(a)
			}
		}
	}
}
