package ipamd

import (
	"strconv"
	"sync"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/ipamd/datastore"
	"github.com/vpc-cni/vpc-cni/pkg/ipamd/pool"
	"github.com/vpc-cni/vpc-cni/pkg/metrics"
	"github.com/vpc-cni/vpc-cni/pkg/networkutils"
)

// Upstream's fn label values of awscni_ipamd_action_inprogress and
// awscni_ipamd_error_count.
const (
	fnNodeInit  = "nodeInit"
	fnIncrease  = "increaseDatastorePool"
	fnDecrease  = "decreaseDatastorePool"
	fnReconcile = "nodeIPPoolReconcile"
)

// Upstream's fn label values of awscni_reconcile_count.
const (
	reconcileENIAdd = "eniReconcileAdd"
	reconcileENIDel = "eniReconcileDel"
	reconcileIPAdd  = "eniIPPoolReconcileAdd"
	reconcileIPDel  = "eniIPPoolReconcileDel"
)

// actionFn maps a pool action to upstream's function name for it.
func actionFn(k pool.Kind) string {
	if k == pool.ReleaseCIDRs || k == pool.FreeENI {
		return fnDecrease
	}
	return fnIncrease
}

// inProgress raises awscni_ipamd_action_inprogress{fn} until the returned
// func runs.
func (n *IPAM) inProgress(fn string) func() {
	g := n.metrics.ActionInProgress.WithLabelValues(fn)
	g.Inc()
	return g.Dec
}

// observeLimits sets awscni_eni_max and awscni_ip_max: ENIs ipamd may use
// (the limit minus unmanaged ENIs) and the addresses they can carry,
// summed over the managed network cards.
func (n *IPAM) observeLimits() {
	perENI := max(n.node.typ.IPv4PerENI-1, 0)
	if n.node.pd {
		perENI *= 16
	}
	enis := 0
	for _, c := range n.cards {
		enis += max(c.maxENIs-c.unmanagedCount(), 0)
	}
	n.metrics.ENIMax.Set(float64(enis))
	n.metrics.IPMax.Set(float64(enis * perENI))
}

// gauges serialises the pool gauge updates of AddNetwork, DelNetwork,
// pool cycles and reconciles, so that no update overwrites a newer one.
type gauges struct {
	mu sync.Mutex
	m  *metrics.Metrics
}

// observeCounts sets the O(1) pool gauges from every card's counters.
// Upstream overwrites them per card (docs/compatibility.md, "Metrics"); we
// sum over the cards.
func (n *IPAM) observeCounts() {
	n.gauges.mu.Lock()
	defer n.gauges.mu.Unlock()
	n.gauges.counts(n.cards)
}

func (g *gauges) counts(cards []*card) {
	var total, assigned, cooling, prefixes, enis int
	for _, c := range cards {
		st := c.store.Stats()
		total += st.TotalIPs
		assigned += st.AssignedIPs
		cooling += st.CoolingIPs
		enis += st.ENIs
		if st.Mode != datastore.ModeIPv6 {
			prefixes += st.TotalPrefixes
		}
	}
	g.m.TotalIPs.Set(float64(total))
	g.m.AssignedIPs.Set(float64(assigned))
	g.m.CoolingIPs.Set(float64(cooling))
	g.m.TotalIPv4Prefixes.Set(float64(prefixes))
	g.m.ENIAllocated.Set(float64(enis))
}

// observeAssignments refreshes the pool counts and the per-ENI and
// per-CIDR gauges of the ENIs an AddNetwork or DelNetwork touched (O(CIDRs
// of those ENIs), not of the node).
func (n *IPAM) observeAssignments(asgs []datastore.Assignment) {
	g := n.gauges
	g.mu.Lock()
	defer g.mu.Unlock()
	g.counts(n.cards)
	for _, a := range asgs {
		if a.ENIID == "" {
			continue
		}
		for _, c := range n.cards {
			e, ok := c.store.ENI(a.ENIID)
			if !ok {
				continue
			}
			g.m.AssignedIPPerENI.WithLabelValues(e.ID).Set(float64(e.AssignedIPs))
			for _, ci := range e.CIDRs {
				if ci.Prefix == a.CIDR {
					g.m.AssignedIPPerCIDR.WithLabelValues(ci.Prefix.String()).Set(float64(ci.Assigned))
				}
			}
		}
	}
}

// observePool refreshes every pool gauge, including the per-ENI and
// per-CIDR ones (O(CIDRs)); run after pool cycles and reconciles.
func (n *IPAM) observePool() {
	g := n.gauges
	g.mu.Lock()
	defer g.mu.Unlock()
	g.counts(n.cards)
	g.m.AssignedIPPerENI.Reset()
	g.m.AssignedIPPerCIDR.Reset()
	for _, c := range n.cards {
		for _, e := range c.store.ENIs() {
			g.m.AssignedIPPerENI.WithLabelValues(e.ID).Set(float64(e.AssignedIPs))
			for _, ci := range e.CIDRs {
				g.m.AssignedIPPerCIDR.WithLabelValues(ci.Prefix.String()).Set(float64(ci.Assigned))
			}
		}
	}
}

// observeAction counts one executed pool action.
func (n *IPAM) observeAction(a pool.Action, err error) {
	result := "ok"
	if err != nil {
		result = "error"
		n.metrics.IPAMDErrors.WithLabelValues(actionFn(a.Kind)).Inc()
	}
	n.metrics.PoolActions.WithLabelValues(a.Kind.String(), result).Inc()
}

// observeHost records a host-networking reconcile: the connmark backend in
// use and the result.
func (n *IPAM) observeHost(res networkutils.HostResult, err error) {
	if err != nil {
		n.metrics.ConnmarkReconciles.WithLabelValues("error").Inc()
		return
	}
	n.metrics.ConnmarkReconciles.WithLabelValues("success").Inc()
	if res.Backend != "" {
		n.metrics.ConnmarkBackend.Reset()
		n.metrics.ConnmarkBackend.WithLabelValues(string(res.Backend)).Set(1)
	}
}

// observeStartup records the time from process start to serving (or to
// the init failure).
func (n *IPAM) observeStartup(err error) {
	reason := ""
	if err != nil {
		reason = "init_failed"
	}
	n.metrics.StartupDuration.WithLabelValues(strconv.FormatBool(err == nil), strconv.FormatBool(n.kube.present()), reason).
		Observe(time.Since(n.startedAt).Seconds())
}
