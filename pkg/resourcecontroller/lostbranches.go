package resourcecontroller

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	ctrl "sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/vpc-cni/vpc-cni/pkg/awsutils"
	"github.com/vpc-cni/vpc-cni/pkg/k8s"
)

// Branch deletes the controller only holds in memory (a dropped trunk
// state's background job, droppedbranches.go; a failed delete retried at
// each GC pass) are lost with a restart. Those of an instance that still
// has a Node are found again at its trunk init (sweepOldTrunkBranches) or
// by its GC; those of an instance whose CNINode is being deleted are its
// cleanup's (nodecleaner.go). What is left is an instance that neither
// names any more: a name taken by another instance, whose old CNINode's
// cleanup left the branches in flight to the background job and let the
// CNINode go. A sweep at start deletes those.
//
// So are those of a Node that lost SGP once its pod-eni capacity was
// dropped (unmanage.go): their deletes, failed, were only in the GC retry
// list, and nothing finds them again: the node holds no trunk state and
// advertises no pod-eni, so its reconcile does nothing, and its trunk
// stays attached, so they stay in use and the cluster cleaner skips them.

// lostBranches picks, by instance, of the cluster's branch ENIs found,
// those of a trunk no node state holds whose instance is not kept.
// The describe runs before the Nodes and CNINodes are listed, from the API
// server (a cache synced before the describe could miss a Node made
// since): a branch is made only once its Node and CNINode exist and ask
// for SGP, so one found by the describe whose instance is not kept was
// left by a node that is gone or has since lost SGP.
func lostBranches(found []awsutils.ENI, cluster string, trunkHeld func(string) bool, kept map[string]bool) map[string][]BranchENI {
	out := map[string][]BranchENI{}
	for _, e := range found {
		trunk, ok := e.Tags[awsutils.TagTrunkENIID]
		if !ok || !clusterTagged(e.Tags, cluster) || e.Tags[awsutils.TagENIOwner] != awsutils.ENIOwnerController {
			continue
		}
		inst := e.Tags[awsutils.TagInstanceID]
		if inst == "" || kept[inst] || trunkHeld(trunk) {
			continue
		}
		out[inst] = append(out[inst], BranchENI{ENIID: e.ID})
	}
	return out
}

// keptInstances are the instances whose branches the sweep keeps: those a
// Node's providerID or a CNINode's tag names, but for a Node unmanaged
// for good (unmanagedForGood) and its own CNINode; errNodeIdentityUnknown
// when a Node has no providerID yet (its instance may be one whose
// branches its pods hold). A Node that looks unmanaged for good but that,
// or its CNINode, is not settled (by uid) is kept and named in recent.
func keptInstances(nodes []corev1.Node, cns []k8s.CNINode, settled func(types.UID) bool) (kept map[string]bool, recent []string, err error) {
	cnOf := make(map[string]*k8s.CNINode, len(cns))
	for i := range cns {
		cnOf[cns[i].Name] = &cns[i]
	}
	kept = map[string]bool{}
	unmanaged := map[string]bool{} // CNINode names whose instance is not kept for them
	for i := range nodes {
		n := &nodes[i]
		if n.Spec.ProviderID == "" {
			return nil, nil, fmt.Errorf("node %s: %w", n.Name, errNodeIdentityUnknown)
		}
		id := InstanceIDFromProviderID(n.Spec.ProviderID)
		if id == "" {
			continue
		}
		if cn := cnOf[n.Name]; unmanagedForGood(n, id, cn) {
			if settled(n.UID) && settled(cn.UID) {
				unmanaged[n.Name] = true
				continue
			}
			recent = append(recent, n.Name)
		}
		kept[id] = true
	}
	for _, cn := range cns {
		if id := cn.Spec.Tags[awsutils.TagInstanceID]; id != "" && !unmanaged[cn.Name] {
			kept[id] = true
		}
	}
	return kept, recent, nil
}

// unmanagedForGood: the Node of instance id asks for no SGP (neither the
// label's key nor its CNINode's feature) and its pod-eni capacity is gone,
// which unmanaging a node does only after DeinitDelay: a feature that
// flaps, or a CNINode being made again, leaves the capacity, hence the
// branches. Its CNINode must be there, live and of the same instance:
// else the node's state is not known, or is its cleanup's.
func unmanagedForGood(n *corev1.Node, id string, cn *k8s.CNINode) bool {
	if cn == nil || cn.DeletionTimestamp != nil || n.Labels[labelComputeAut] == "auto" {
		return false
	}
	if tag := cn.Spec.Tags[awsutils.TagInstanceID]; tag != "" && tag != id {
		return false
	}
	_, inCap := n.Status.Capacity[PodENIResource]
	_, inAlloc := n.Status.Allocatable[PodENIResource]
	return !inCap && !inAlloc && !sgpNode(n, cn)
}

// errUnmanagedTooRecent: a Node looks unmanaged for good, but it or its
// CNINode was first seen less than DeinitDelay ago. A Node registered again for its
// live instance advertises no pod-eni until its trunk is back, and a
// CNINode made again lacks SecurityGroupsForPods until ipamd declares it:
// seen at that moment, its running pods' branches were swept. Its
// instance is kept and the sweep looks again at the next GC pass, as the
// node's own unmanaging waits DeinitDelay (unmanage.go).
var errUnmanagedTooRecent = errors.New("lost security groups for pods too recently to tell from a node registered again")

// sweepLostBranches runs at start, then at each GC pass until it has
// succeeded once: one paged describe of the VPC's branch ENIs, then the
// deletes of those of instances it does not keep, in the background; a
// failed delete is retried at each GC pass.
func (c *Controller) sweepLostBranches(ctx context.Context) error {
	// A Node without a providerID holds the sweep back: checked before
	// the describe as well, so that each pass it holds back costs the VPC
	// no paged describe of its branch ENIs.
	var before corev1.NodeList
	if err := c.api.List(ctx, &before); err != nil {
		return fmt.Errorf("branch ENIs of gone instances: listing nodes: %w", err)
	}
	if _, _, err := keptInstances(before.Items, nil, func(types.UID) bool { return true }); err != nil {
		return fmt.Errorf("branch ENIs of gone instances: %w", err)
	}
	found, err := c.ec2.OwnedENIs(ctx, awsutils.OwnedENIsQuery{VPCID: c.cfg.VPCID, AnyTagKey: []string{awsutils.TagTrunkENIID}})
	if err != nil {
		return fmt.Errorf("branch ENIs of gone instances: %w", err)
	}
	var nodes corev1.NodeList
	if err := c.api.List(ctx, &nodes); err != nil {
		return fmt.Errorf("branch ENIs of gone instances: listing nodes: %w", err)
	}
	var cns k8s.CNINodeList
	if err := c.api.List(ctx, &cns); err != nil {
		return fmt.Errorf("branch ENIs of gone instances: listing CNINodes: %w", err)
	}
	// Ages by the controller's clock, from when it first saw each object
	// (firstseen.go): after a restart, a Node that lost SGP for good is
	// swept DeinitDelay after the start, as its unmanaging waits.
	uids := make([]types.UID, 0, len(nodes.Items)+len(cns.Items))
	for i := range nodes.Items {
		uids = append(uids, nodes.Items[i].UID)
	}
	for i := range cns.Items {
		uids = append(uids, cns.Items[i].UID)
	}
	now := c.cfg.clock()
	seen := c.sweepSeen.see(uids, now)
	settled := func(uid types.UID) bool { return now.Sub(seen[uid]) >= c.cfg.DeinitDelay }
	kept, recent, err := keptInstances(nodes.Items, cns.Items, settled)
	if err != nil {
		return fmt.Errorf("branch ENIs of gone instances: %w", err)
	}
	lost := lostBranches(found, c.cfg.ClusterName, c.reg.trunkHeld, kept)
	// Listed after the describe, from the API server: a pod annotated
	// since names a branch made by a trunk state this process holds.
	var claims []podClaim
	for i := range nodes.Items {
		n := &nodes.Items[i]
		if id := InstanceIDFromProviderID(n.Spec.ProviderID); id == "" || len(lost[id]) == 0 {
			continue
		}
		var pods corev1.PodList
		if err := c.api.List(ctx, &pods, ctrl.MatchingFields{podNodeField: n.Name}); err != nil {
			return fmt.Errorf("branch ENIs of gone instances: listing the pods of node %s: %w", n.Name, err)
		}
		claims = append(claims, runningClaims(pods.Items)...)
	}
	spared := spare(lost, claims)
	c.spared.set(spared)
	if len(spared) > 0 {
		c.cfg.Log.Info("keeping the branch ENIs running pods use on nodes without SGP until the pods end", "count", len(spared))
	}
	for inst, bs := range lost {
		if n := c.startBranchDeletes(ctx, inst, bs); n > 0 {
			c.cfg.Log.Info("deleting the branch ENIs of an instance no SGP node names", "instance", inst, "count", n)
		}
	}
	if len(recent) > 0 {
		return fmt.Errorf("branch ENIs of gone instances: nodes %v: %w", recent, errUnmanagedTooRecent)
	}
	return nil
}
