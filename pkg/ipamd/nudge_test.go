package ipamd

import (
	"math"
	"testing"

	"github.com/vpc-cni/vpc-cni/pkg/ipamd/config"
	"github.com/vpc-cni/vpc-cni/pkg/ipamd/pool"
)

// A huge warm target wants at least what pool.MaxTarget wants: the
// product must not wrap around to "nothing wanted", which would leave a
// burst's later pods to wait for the next tick.
func TestNudgeWantHugeTargets(t *testing.T) {
	const perENI = 10 // m5.large
	for _, huge := range []int{pool.MaxTarget + 1, math.MaxInt/9 + 1, 1 << 62, math.MaxInt} {
		eni := nudgeWant(&config.Config{WarmENITarget: huge}, perENI, false)
		if floor := nudgeWant(&config.Config{WarmENITarget: pool.MaxTarget}, perENI, false); eni < floor {
			t.Errorf("WARM_ENI_TARGET=%d wants %d addresses, below WARM_ENI_TARGET=%d's %d", huge, eni, pool.MaxTarget, floor)
		}
		pfx := nudgeWant(&config.Config{WarmPrefixTarget: huge}, perENI, true)
		if floor := nudgeWant(&config.Config{WarmPrefixTarget: pool.MaxTarget}, perENI, true); pfx < floor {
			t.Errorf("WARM_PREFIX_TARGET=%d wants %d addresses, below WARM_PREFIX_TARGET=%d's %d", huge, pfx, pool.MaxTarget, floor)
		}
	}
	if got := nudgeWant(&config.Config{WarmENITarget: 1}, perENI, false); got != 9 {
		t.Errorf("WARM_ENI_TARGET=1 on m5.large wants %d addresses, want 9", got)
	}
	if got := nudgeWant(&config.Config{WarmENITarget: 1, WarmIPTarget: 5}, perENI, false); got != 5 {
		t.Errorf("WARM_IP_TARGET=5 wants %d addresses, want 5", got)
	}
}
