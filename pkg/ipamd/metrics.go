package ipamd

import (
	"net/netip"
	"strconv"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/awsutils"
	"github.com/vpc-cni/vpc-cni/pkg/ipamd/datastore"
	"github.com/vpc-cni/vpc-cni/pkg/ipamd/pool"
	"github.com/vpc-cni/vpc-cni/pkg/metrics"
	"github.com/vpc-cni/vpc-cni/pkg/networkutils"
)

// Upstream's fn label values of awscni_ipamd_action_inprogress.
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

// Upstream's fn label values of awscni_ipamd_error_count: the step that
// failed.
const (
	errAllocENI   = "increaseIPPoolAllocENI"
	errAllocIPs   = "increaseIPPoolAllocIPAddressesFailed"
	errFreeENI    = "decreaseIPPoolFreeENIFailed"
	errReleaseIPs = "decreaseIPPool"
)

// Upstream's fn label values of awscni_ipamd_error_count for reconcile
// steps that failed; an ENI it could not adopt or drop counts under the
// same names as awscni_reconcile_count's.
const (
	errReconcileRead      = "reconcileFailedGetENIs"
	reconcileIPAddErr     = "ipReconcileAdd"
	reconcilePrefixAddErr = "prefixReconcileAdd"
	reconcileIPDelErr     = "ipReconcileDel"
)

// cidrReconcileAddFn is upstream's fn for a CIDR reconcile could not add:
// a /28 prefix has its own.
func cidrReconcileAddFn(p netip.Prefix) string {
	if p.Bits() < p.Addr().BitLen() && p.Addr().Is4() {
		return reconcilePrefixAddErr
	}
	return reconcileIPAddErr
}

// errorFns are upstream's awscni_ipamd_error_count fn values for a failed
// pool action: a new ENI that failed for want of subnet room counts under
// both, as upstream does.
func errorFns(k pool.Kind, err error) []string {
	switch k {
	case pool.CreateENI:
		if awsutils.IsInsufficientCapacity(err) {
			return []string{errAllocENI, errAllocIPs}
		}
		return []string{errAllocENI}
	case pool.AssignIPs, pool.AssignPrefixes:
		return []string{errAllocIPs}
	case pool.FreeENI:
		return []string{errFreeENI}
	case pool.ReleaseCIDRs:
		return []string{errReleaseIPs}
	}
	return nil
}

// actionFn maps a pool action to upstream's function name for it.
func actionFn(k pool.Kind) string {
	if k == pool.ReleaseCIDRs || k == pool.FreeENI {
		return fnDecrease
	}
	return fnIncrease
}

// observer turns what ipamd does into metrics. The pool gauge updates of
// AddNetwork, DelNetwork, pool cycles and reconciles run under
// metrics.LockPool, which serialises them (no update overwrites a newer
// one) and keeps scrapes from seeing one half done; the other metrics are
// counters and histograms that need no lock.
type observer struct {
	m         *metrics.Metrics
	cards     *cardSet // the managed cards, built by Init
	node      *nodeState
	kube      *kubeRef
	startedAt time.Time
}

// inProgress raises awscni_ipamd_action_inprogress{fn} until the returned
// func runs.
func (o *observer) inProgress(fn string) func() {
	g := o.m.ActionInProgress.WithLabelValues(fn)
	g.Inc()
	return g.Dec
}

// limits sets awscni_eni_max and awscni_ip_max: ENIs ipamd may use
// (the limit minus unmanaged ENIs) and the addresses they can carry in
// each card's mode now, summed over the managed network cards. Both
// change at run time: a reconcile finds an unmanaged ENI gone (or a new
// one), a card falls back from prefixes to /32s and back. pool() calls it.
func (o *observer) limits() {
	slots := max(o.node.typ.IPv4PerENI-1, 0)
	enis, ips := 0, 0
	for _, c := range o.cards.all() {
		n := max(c.maxENIs-c.unmanagedCount(), 0)
		perENI := slots
		if c.pd.get() {
			perENI *= 16
		}
		enis += n
		ips += n * perENI
	}
	o.m.ENIMax.Set(float64(enis))
	o.m.IPMax.Set(float64(ips))
}

// counts sets the O(1) pool gauges from every card's counters. Upstream
// overwrites them per card (docs/compatibility.md, "Metrics"); we sum over
// the cards. Run under LockPool.
func (o *observer) counts() {
	var total, assigned, cooling, quarantined, prefixes, enis int
	for _, c := range o.cards.all() {
		st := c.store.Stats()
		total += st.TotalIPs
		assigned += st.AssignedIPs
		cooling += st.CoolingIPs
		quarantined += o.cards.quarantined(c, st)
		enis += st.ENIs
		if st.Mode != datastore.ModeIPv6 {
			prefixes += st.TotalPrefixes
		}
	}
	o.m.TotalIPs.Set(float64(total))
	o.m.AssignedIPs.Set(float64(assigned))
	o.m.CoolingIPs.Set(float64(cooling))
	o.m.QuarantinedIPs.Set(float64(quarantined))
	o.m.TotalIPv4Prefixes.Set(float64(prefixes))
	o.m.ENIAllocated.Set(float64(enis))
}

// assignments refreshes the pool counts and the per-ENI and
// per-CIDR gauges of the ENIs an AddNetwork or DelNetwork touched (O(CIDRs
// of those ENIs), not of the node).
func (o *observer) assignments(asgs []datastore.Assignment) {
	o.m.LockPool()
	defer o.m.UnlockPool()
	o.counts()
	for _, a := range asgs {
		if a.ENIID == "" {
			continue
		}
		for _, c := range o.cards.all() {
			eni, cidr, ok := c.store.AssignedIn(a.ENIID, a.CIDR)
			if !ok {
				continue
			}
			o.m.AssignedIPPerENI.WithLabelValues(a.ENIID).Set(float64(eni))
			if cidr >= 0 {
				o.m.AssignedIPPerCIDR.WithLabelValues(a.CIDR.String()).Set(float64(cidr))
			}
		}
	}
}

// pool refreshes every pool gauge, including the per-ENI and
// per-CIDR ones (O(CIDRs)); run after pool cycles and reconciles.
func (o *observer) pool() {
	o.m.LockPool()
	defer o.m.UnlockPool()
	o.limits()
	o.counts()
	o.m.AssignedIPPerENI.Reset()
	o.m.AssignedIPPerCIDR.Reset()
	for _, c := range o.cards.all() {
		for _, e := range c.store.ENIs() {
			o.m.AssignedIPPerENI.WithLabelValues(e.ID).Set(float64(e.AssignedIPs))
			for _, ci := range e.CIDRs {
				o.m.AssignedIPPerCIDR.WithLabelValues(ci.Prefix.String()).Set(float64(ci.Assigned))
			}
		}
	}
}

// awsUtilsError counts an EC2 error ipamd could not act on in
// awscni_aws_utils_error_count, as upstream does only for errors EC2
// answered (metrics.ObserveUnhandled).
func (o *observer) awsUtilsError(fn string, err error) {
	code := awsutils.Code(err)
	if o == nil || code == "" {
		return
	}
	o.m.ObserveUnhandled(fn, code)
}

// action counts one executed pool action.
func (o *observer) action(a pool.Action, err error) {
	result := "ok"
	if err != nil {
		result = "error"
		for _, fn := range errorFns(a.Kind, err) {
			o.m.IPAMDErrors.WithLabelValues(fn).Inc()
		}
	}
	o.m.PoolActions.WithLabelValues(a.Kind.String(), result).Inc()
}

// host records a host-networking reconcile: the connmark backend in
// use and the result.
func (o *observer) host(res networkutils.HostResult, err error) {
	if err != nil {
		o.m.ConnmarkReconciles.WithLabelValues("error").Inc()
		return
	}
	o.m.ConnmarkReconciles.WithLabelValues("success").Inc()
	if res.Backend != "" {
		o.m.ConnmarkBackend.Reset()
		o.m.ConnmarkBackend.WithLabelValues(string(res.Backend)).Set(1)
	}
}

// startup records the time from process start to serving (or to
// the init failure, upstream's failure_reason "node_initialization").
func (o *observer) startup(err error) {
	reason := ""
	if err != nil {
		reason = "node_initialization"
	}
	o.m.StartupDuration.WithLabelValues(strconv.FormatBool(err == nil), strconv.FormatBool(o.kube.present()), reason).
		Observe(time.Since(o.startedAt).Seconds())
}
