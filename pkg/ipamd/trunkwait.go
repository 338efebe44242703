package ipamd

import (
	"context"
	"net"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

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
func (n *IPAM) waitTrunk(ctx context.Context, namespace, name string) (net.HardwareAddr, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, branchAnnotationWait)
		defer cancel()
	}
	start := time.Now()
	for {
		if mac, ok := n.trunkENI(); ok {
			return mac, nil
		}
		select {
		case <-ctx.Done():
			return nil, status.Errorf(codes.FailedPrecondition,
				"pod %s/%s asks for a branch ENI but this node has no trunk ENI after %s: the VPC resource controller has not attached one "+
					"(is it running? does the instance type support trunking? see the node's TrunkENICreationFailed events)",
				namespace, name, time.Since(start).Round(time.Millisecond))
		case <-n.reconciled.request():
		}
	}
}
