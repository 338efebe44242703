package ipamd

import (
	"context"
	"net"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// branchWait is what a branch-ENI pod's ADD waits for: the node's trunk
// ENI (learnt at a reconcile, which it may ask for) and the pod's
// annotation. It owns no state beyond the reconcile signal.
type branchWait struct {
	kube       *kubeRef
	node       *nodeState
	cards      *cardSet // the managed cards, built by Init before it serves
	reconciled *reconcileSignal
}

// trunkENI returns the MAC of card 0's trunk ENI.
func (b *branchWait) trunkENI() (net.HardwareAddr, bool) {
	c, ok := b.cards.first()
	if !ok {
		return nil, false
	}
	for _, e := range c.store.ENIs() {
		if e.IsTrunk {
			mac := b.node.mac(e.ID)
			return mac, mac != nil
		}
	}
	return nil, false
}

// reconcileGap spaces the reconciles that waiting branch-pod ADDs ask for,
// so pods that wait for a trunk cost at most one EC2 read per gap.
const reconcileGap = time.Second

// reconcileSignal lets an ADD ask for a reconcile at once and wait for the
// end of the next one: ipamd learns of the trunk ENI the VPC resource
// controller attaches only from EC2, at a reconcile.
type reconcileSignal struct {
	kick chan struct{}

	mu   sync.Mutex
	done chan struct{} // closed at the end of a reconcile, then replaced
}

func newReconcileSignal() *reconcileSignal {
	return &reconcileSignal{kick: make(chan struct{}, 1), done: make(chan struct{})}
}

// request asks for a reconcile (coalesced with pending requests) and
// returns a channel closed when the next reconcile ends.
func (r *reconcileSignal) request() <-chan struct{} {
	r.mu.Lock()
	done := r.done
	r.mu.Unlock()
	select {
	case r.kick <- struct{}{}:
	default:
	}
	return done
}

// finished wakes everyone waiting for the end of a reconcile.
func (r *reconcileSignal) finished() {
	r.mu.Lock()
	close(r.done)
	r.done = make(chan struct{})
	r.mu.Unlock()
}

// waitTrunk waits, within the ADD's deadline (branchAnnotationWait when it
// has none), for ipamd to learn of the node's trunk ENI, asking for a
// reconcile at once rather than waiting for the next periodic one.
func (b *branchWait) waitTrunk(ctx context.Context, namespace, name string) (net.HardwareAddr, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, branchAnnotationWait)
		defer cancel()
	}
	start := time.Now()
	for {
		if mac, ok := b.trunkENI(); ok {
			return mac, nil
		}
		select {
		case <-ctx.Done():
			return nil, status.Errorf(codes.FailedPrecondition,
				"pod %s/%s asks for a branch ENI but this node has no trunk ENI after %s: the VPC resource controller has not attached one "+
					"(is it running? does the instance type support trunking? see the node's TrunkENICreationFailed events)",
				namespace, name, time.Since(start).Round(time.Millisecond))
		case <-b.reconciled.request():
		}
	}
}

// branchAnnotationPoll is how often the node's pod cache is read while an
// ADD waits for the branch annotation; reads are in-memory.
const branchAnnotationPoll = 100 * time.Millisecond

// branchAnnotationWait bounds the wait when the ADD carries no deadline.
const branchAnnotationWait = 30 * time.Second

// liveReadGap spaces the reads from the API server an ADD makes while it
// waits on the pod cache (for its own pod, or for the branch annotation),
// in case the pod watch stalled: none while the cache answers within the
// gap, at most one per gap after, so an ADD costs the API server at most
// its deadline over the gap in GETs.
const liveReadGap = 2 * time.Second

// waitBranchAnnotation waits, within the ADD's deadline, for the VPC
// resource controller to annotate a pod it has just been bound: upstream
// fails the ADD at once and lets the kubelet retry. The error on timeout
// names what may be missing.
func (b *branchWait) waitBranchAnnotation(ctx context.Context, namespace, name, uid string) (PodInfo, error) {
	return b.pollPod(ctx, namespace, name, liveReadGap, func(p PodInfo) bool { return livePod(p, uid) && p.BranchAnnotation != "" },
		func(waited time.Duration) error {
			return status.Errorf(codes.DeadlineExceeded,
				"pod %s/%s asks for a branch ENI but has no %s annotation after %s: the VPC resource controller has not written it "+
					"(is it running? has the node reached its branch ENI limit? see the pod's BranchAllocationFailed events)",
				namespace, name, PodENIAnnotation, waited)
		})
}

// liveReadTimeout bounds the one read of a pod from the API server that an
// ADD makes when the node's pod cache does not show its pod; the ADD then
// waits on the cache.
const liveReadTimeout = 2 * time.Second

// readOwnPod returns the ADD's own pod (livePod) as the API server shows
// it, else waits for the node's pod cache to show it (waitLivePod, which
// reads the API server again every liveReadGap): a cache whose watch
// stalls would otherwise fail every ADD of a pod it has not seen, regular
// pods included.
func (b *branchWait) readOwnPod(ctx context.Context, namespace, name, uid string) (PodInfo, error) {
	lctx, cancel := context.WithTimeout(ctx, liveReadTimeout)
	pod, err := b.kube.get().PodLive(lctx, namespace, name)
	cancel()
	if err == nil && livePod(pod, uid) {
		return pod, nil
	}
	return b.waitLivePod(ctx, namespace, name, uid)
}

// waitLivePod waits, within the ADD's deadline, for the node's pod cache
// to hold the ADD's own pod (livePod): one of this name and of uid when
// the plugin sent one, not being deleted unless it is the pod of uid.
// After a delete and a re-create under the same name (a StatefulSet, a
// force delete) a lagging cache may still show the earlier pod, whose
// branch ENI the resource controller deletes, or not show the new one yet.
func (b *branchWait) waitLivePod(ctx context.Context, namespace, name, uid string) (PodInfo, error) {
	return b.pollPod(ctx, namespace, name, liveReadGap, func(p PodInfo) bool { return livePod(p, uid) },
		func(waited time.Duration) error {
			if uid != "" {
				return status.Errorf(codes.DeadlineExceeded,
					"pod %s/%s: ipamd's pod cache does not show the pod of UID %s after %s (an earlier pod of that name, or none); "+
						"an earlier pod's %s annotation names a branch ENI that is about to be deleted, so the new pod is not wired to it",
					namespace, name, uid, waited, PodENIAnnotation)
			}
			return status.Errorf(codes.DeadlineExceeded,
				"pod %s/%s: ipamd's pod cache still holds an earlier pod of that name being deleted (deletionTimestamp set) after %s; "+
					"its %s annotation names a branch ENI that is about to be deleted, so the new pod is not wired to it",
				namespace, name, waited, PodENIAnnotation)
		})
}

// pollPod reads the pod from the node's pod cache every branchAnnotationPoll
// until it is found and ready says so, within the ADD's deadline (or
// branchAnnotationWait without one); on timeout it returns timedOut's error.
// With liveGap > 0 it also reads the pod from the API server once every
// liveGap, the first after liveGap: a stalled watch hides later writes.
func (b *branchWait) pollPod(ctx context.Context, namespace, name string, liveGap time.Duration, ready func(PodInfo) bool,
	timedOut func(waited time.Duration) error) (PodInfo, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, branchAnnotationWait)
		defer cancel()
	}
	start := time.Now()
	lastLive := start
	t := time.NewTicker(branchAnnotationPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return PodInfo{}, timedOut(time.Since(start).Round(time.Millisecond))
		case <-t.C:
		}
		pod, err := b.kube.get().Pod(ctx, namespace, name)
		if err == nil && pod.Found && ready(pod) {
			return pod, nil
		}
		if liveGap <= 0 || time.Since(lastLive) < liveGap {
			continue
		}
		lctx, cancel := context.WithTimeout(ctx, liveReadTimeout)
		pod, err = b.kube.get().PodLive(lctx, namespace, name)
		cancel()
		lastLive = time.Now() // after the read: a slow API server spaces them further
		if err == nil && pod.Found && ready(pod) {
			return pod, nil
		}
	}
}
