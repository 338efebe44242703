package ipamd

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	dto "github.com/prometheus/client_model/go"

	"github.com/vpc-cni/vpc-cni/pkg/ipamd/config"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/simtest"
)

// gauges reads the pool gauges from a gather of reg, as a scrape sees them:
// name → summed value, and the per-ENI assigned series.
func gathered(t *testing.T, h *harness) (map[string]float64, map[string]float64) {
	t.Helper()
	mfs, err := h.n.metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	plain, perENI := map[string]float64{}, map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			v := value(m)
			if mf.GetName() == "awscni_assigned_ip_per_eni" {
				perENI[m.GetLabel()[0].GetValue()] = v
				continue
			}
			plain[mf.GetName()] += v
		}
	}
	return plain, perENI
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Counter != nil:
		return m.Counter.GetValue()
	}
	return 0
}

// TestMetricsCountRestoredPods: right after a restart, before any pool
// cycle or ADD, the pool gauges count the pods restored from the
// checkpoint and the addresses EC2 lists, and the per-ENI series name
// exactly the ENIs attached.
func TestMetricsCountRestoredPods(t *testing.T) {
	h := newHarness(t, harnessOpts{cfg: func(c *config.Config) { c.IPCooldown = 0 }})
	pods := map[int]bool{}
	h.setPods(pods, 12) // m5.large: the primary's 9 and 3 on a second ENI
	want := h.simCounts()

	h.connect(fastTimes) // restart
	if err := h.n.Init(context.Background()); err != nil {
		t.Fatal(err)
	}
	plain, perENI := gathered(t, h)
	if got := plain["awscni_assigned_ip_addresses"]; got != 12 {
		t.Errorf("awscni_assigned_ip_addresses = %v after the restart, want the 12 restored pods", got)
	}
	if got := plain["awscni_total_ip_addresses"]; got != float64(want.IPs) {
		t.Errorf("awscni_total_ip_addresses = %v, EC2 lists %d", got, want.IPs)
	}
	if got := plain["awscni_eni_allocated"]; got != float64(want.ENIs) {
		t.Errorf("awscni_eni_allocated = %v, EC2 attaches %d", got, want.ENIs)
	}
	if got := plain["awscni_eni_max"]; got != 3 {
		t.Errorf("awscni_eni_max = %v, want m5.large's 3", got)
	}
	sum := 0.0
	for _, v := range perENI {
		sum += v
	}
	if len(perENI) != want.ENIs || sum != 12 {
		t.Errorf("awscni_assigned_ip_per_eni = %v, want %d ENIs holding 12", perENI, want.ENIs)
	}
}

// TestMetricsScrapedDuringChurn: scrapes and introspection reads running
// beside ADDs, DELs, pool cycles and a reconcile (run with -race) see
// consistent figures, and the
// per-ENI and per-CIDR series end up naming only what the node holds:
// no series is left behind for a released CIDR or a freed ENI.
func TestMetricsScrapedDuringChurn(t *testing.T) {
	h := newHarness(t, harnessOpts{instanceType: "m5.xlarge", cfg: func(c *config.Config) { c.IPCooldown = 0; c.WarmIPTarget = 2 }})
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				plain, _ := gathered(t, h)
				if a, tot := plain["awscni_assigned_ip_addresses"], plain["awscni_total_ip_addresses"]; a > tot {
					t.Errorf("scrape: %v assigned of %v total", a, tot)
				}
				// Introspection reads the same state beside the churn.
				for _, c := range h.n.Introspection().ENIs() {
					if c.AssignedIPs > c.TotalIPs {
						t.Errorf("/v1/enis: %d assigned of %d", c.AssignedIPs, c.TotalIPs)
					}
				}
				for _, c := range h.n.Introspection().Pool().Cards {
					if c.Used < 0 || c.Free < 0 || c.Cooling < 0 {
						t.Errorf("/v1/pool card: %+v", c)
					}
				}
			}
		}()
	}
	pods := map[int]bool{}
	for _, n := range []int{20, 3, 30, 0, 15, 1} {
		h.setPods(pods, n)
		if err := h.n.Reconcile(context.Background()); err != nil {
			t.Error(err)
		}
	}
	close(stop)
	wg.Wait()
	h.settle()

	mfs, err := h.n.metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	snap := h.n.Snapshot()
	enis, cidrs := map[string]bool{}, map[string]bool{}
	for _, c := range snap.Cards {
		for _, e := range c.ENIs {
			enis[e.ID] = true
			for _, ci := range e.CIDRs {
				cidrs[ci.Prefix.String()] = true
			}
		}
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			switch mf.GetName() {
			case "awscni_assigned_ip_per_eni":
				if id := m.GetLabel()[0].GetValue(); !enis[id] {
					t.Errorf("series for ENI %s, which the node no longer holds", id)
				}
			case "awscni_assigned_ip_per_cidr":
				if p := m.GetLabel()[0].GetValue(); !cidrs[p] {
					t.Errorf("series for CIDR %s, which the node no longer holds", p)
				}
			}
		}
	}
}

// TestENIMaxFollowsUnmanagedENIs: awscni_eni_max and awscni_ip_max count
// the ENIs ipamd may use, the limit minus unmanaged ENIs. When the
// unmanaged ENI's owner takes it away, the reconcile gives its slot back
// to the pool, and the gauges say so too.
func TestENIMaxFollowsUnmanagedENIs(t *testing.T) {
	const foreign = "eni-000000000000f0e19"
	h := newHarness(t, harnessOpts{noInit: true, scenario: func(sc *vpcsim.Scenario) {
		sc.NetworkInterfaces = append(sc.NetworkInterfaces, vpcsim.ENISpec{
			ID: foreign, Subnet: simtest.NodeSubnetID, AttachTo: simtest.InstanceID, DeviceIndex: 1,
			SecondaryIPCount: 3, Tags: map[string]string{"node.k8s.amazonaws.com/no_manage": "true"},
		})
	}})
	ctx := context.Background()
	if err := h.n.Init(ctx); err != nil {
		t.Fatal(err)
	}
	plain, _ := gathered(t, h)
	if plain["awscni_eni_max"] != 2 || plain["awscni_ip_max"] != 18 {
		t.Fatalf("with one unmanaged ENI: eni_max %v ip_max %v, want 2 and 18", plain["awscni_eni_max"], plain["awscni_ip_max"])
	}
	if err := h.ec2.FreeENI(ctx, foreign, ""); err != nil {
		t.Fatal(err)
	}
	if err := h.n.Reconcile(ctx); err != nil {
		t.Fatalf("Reconcile: %v", err)
	}
	plain, _ = gathered(t, h)
	if plain["awscni_eni_max"] != 3 || plain["awscni_ip_max"] != 27 {
		t.Errorf("after the unmanaged ENI left: eni_max %v ip_max %v, want 3 and 27", plain["awscni_eni_max"], plain["awscni_ip_max"])
	}
}

// TestScrapeSeesOneRefresh: a pool refresh of the gauges (after every pool
// cycle and reconcile) rebuilds the per-ENI and per-CIDR series. A scrape
// beside it sees the series and values of one refresh: on a node whose
// pool does not change, every scrape equals the first, never a series
// missing or at 0 halfway through a refresh (Prometheus would record the
// gap as a stale series). Before the fix 1910 of 2000 scrapes were torn.
func TestScrapeSeesOneRefresh(t *testing.T) {
	h := newHarness(t, harnessOpts{cfg: func(c *config.Config) { c.IPCooldown = 0 }})
	pods := map[int]bool{}
	h.setPods(pods, 12)
	want := scrapeText(t, h)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
				h.n.observe.pool()
			}
		}
	}()
	torn := 0
	for range 500 {
		if got := scrapeText(t, h); got != want {
			if torn == 0 {
				t.Errorf("a scrape during a refresh:\n%s\nwant\n%s", got, want)
			}
			torn++
		}
	}
	close(stop)
	<-done
	if torn > 0 {
		t.Errorf("%d of 500 scrapes saw a refresh half done", torn)
	}
}

// scrapeText renders the pool gauges of one scrape.
func scrapeText(t *testing.T, h *harness) string {
	t.Helper()
	mfs, err := h.n.metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, mf := range mfs {
		switch mf.GetName() {
		case "awscni_assigned_ip_per_eni", "awscni_assigned_ip_per_cidr", "awscni_total_ip_addresses",
			"awscni_assigned_ip_addresses", "awscni_eni_allocated", "awscni_eni_max", "awscni_ip_max":
		default:
			continue
		}
		for _, m := range mf.GetMetric() {
			fmt.Fprintf(&b, "%s%v %v\n", mf.GetName(), m.GetLabel(), value(m))
		}
	}
	return b.String()
}
