package ipamd

import (
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/vpc-cni/vpc-cni/pkg/introspect"
	"github.com/vpc-cni/vpc-cni/pkg/metrics"
)

// TestReservedAddressIsCountedOnce: card 1 keeps 10.0.1.5 of its busy
// prefix from new pods for the pod "multi" quarantined on card 0. That
// address is on card 1's ENI: /v1/pool and the gauges count it there as
// used (assigned), and not again as quarantined, whose meaning is an
// address on no ENI of the node. Every figure agrees with /v1/enis' rows:
// card 1's used addresses are its listed pod rows, total = assigned +
// cooling + available. Before, vpccni_quarantined_ip_addresses and card
// 0's Quarantined showed 1 beside card 1's assigned count: the one
// address counted twice.
func TestReservedAddressIsCountedOnce(t *testing.T) {
	cs, _, _ := restoreBusyPrefixQuarantine(t, 30*time.Second)
	n := &IPAM{cards: cs, ready: newLatch(), node: &nodeState{}, track: introspect.NewTracker(nil),
		handout: &handout{}, last: &lastAction{}}
	n.ready.set()
	o := &observer{m: metrics.New("test"), cards: cs}
	o.counts()
	gauge := func(g interface{ Write(*dto.Metric) error }) int {
		t.Helper()
		var m dto.Metric
		if err := g.Write(&m); err != nil {
			t.Fatal(err)
		}
		return int(m.GetGauge().GetValue())
	}
	total, assigned, cooling, quarantined := gauge(o.m.TotalIPs), gauge(o.m.AssignedIPs), gauge(o.m.CoolingIPs), gauge(o.m.QuarantinedIPs)
	pool := introspection{n}.Pool()
	enis := introspection{n}.ENIs()
	rows, poolUsed, poolFree, poolCooling, poolQuarantined := 0, 0, 0, 0, 0
	for _, c := range enis {
		for _, e := range c.ENIs {
			for _, ci := range e.AvailableIPv4Cidrs {
				for _, a := range ci.IPAddresses {
					if a.IPAMKey.NetworkName != "" {
						rows++
					}
				}
			}
		}
	}
	for _, c := range pool.Cards {
		poolUsed += c.Used
		poolFree += c.Free
		poolCooling += c.Cooling
		poolQuarantined += c.Quarantined
	}
	t.Logf("gauges: total %d assigned %d cooling %d quarantined %d; /v1/pool: used %d free %d cooling %d quarantined %d; /v1/enis: %d pod rows",
		total, assigned, cooling, quarantined, poolUsed, poolFree, poolCooling, poolQuarantined, rows)
	if assigned != rows || poolUsed != rows {
		t.Errorf("assigned gauge %d, /v1/pool used %d, want /v1/enis' %d pod rows", assigned, poolUsed, rows)
	}
	if total != assigned+cooling+poolFree {
		t.Errorf("total gauge %d != assigned %d + cooling %d + free %d", total, assigned, cooling, poolFree)
	}
	if quarantined != 0 || poolQuarantined != 0 {
		t.Errorf("quarantined gauge %d, /v1/pool quarantined %d: want 0, the pod's address is on card 1's ENI and counted there as assigned",
			quarantined, poolQuarantined)
	}
}
