package pool

import (
	"strings"
	"testing"
)

// TestReviewCustomNetworkingWithoutASlotSaysWhy: under custom networking
// the primary ENI serves no pod, so with MAX_ENI=1 (or every other slot
// taken by unmanaged ENIs) no pod can ever get an address. The reason
// says that, not that every ENI holds its maximum of addresses (the
// primary holds none).
func TestReviewCustomNetworkingWithoutASlotSaysWhy(t *testing.T) {
	for _, tc := range []struct {
		name      string
		maxENIs   int
		unmanaged int
	}{{"MAX_ENI=1", 1, 0}, {"unmanaged ENIs take the other slots", 3, 2}} {
		p := Params{CustomNetworking: true, MaxENIs: tc.maxENIs, IPv4PerENI: 10, WarmENI: 1, CanAllocate: true, CanRelease: true, CanFreeENI: true}
		a := Plan(Pool{Unmanaged: tc.unmanaged, ENIs: []ENI{{ID: "eni-0", Primary: true}}}, p)
		if a.Kind != None || !a.Starved {
			t.Fatalf("%s: %+v, want starved", tc.name, a)
		}
		if strings.Contains(a.Reason, "holds its maximum") || !strings.Contains(a.Reason, "custom networking") {
			t.Errorf("%s: reason %q, want it to say custom networking leaves no ENI for pods", tc.name, a.Reason)
		}
	}
}
