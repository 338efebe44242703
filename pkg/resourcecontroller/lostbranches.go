package resourcecontroller

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"

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

// lostBranches picks, by instance, of the cluster's branch ENIs found,
// those of a trunk no node state holds whose instance no Node and no
// CNINode names.
// The describe runs before the Nodes and CNINodes are listed, from the API
// server (a cache synced before the describe could miss a Node made
// since): a branch is made only once its Node and CNINode exist, so one
// found by the describe whose instance is named by neither was left by a
// node that is gone.
func lostBranches(found []awsutils.ENI, cluster string, trunkHeld func(string) bool, named map[string]bool) map[string][]BranchENI {
	out := map[string][]BranchENI{}
	for _, e := range found {
		trunk, ok := e.Tags[awsutils.TagTrunkENIID]
		if !ok || !clusterTagged(e.Tags, cluster) || e.Tags[awsutils.TagENIOwner] != awsutils.ENIOwnerController {
			continue
		}
		inst := e.Tags[awsutils.TagInstanceID]
		if inst == "" || named[inst] || trunkHeld(trunk) {
			continue
		}
		out[inst] = append(out[inst], BranchENI{ENIID: e.ID})
	}
	return out
}

// namedInstances are the instances a Node's providerID or a CNINode's tag
// names; errNodeIdentityUnknown when a Node has no providerID yet (its
// instance may be one whose branches its pods hold).
func namedInstances(nodes []corev1.Node, cns []k8s.CNINode) (map[string]bool, error) {
	named := map[string]bool{}
	for _, n := range nodes {
		if n.Spec.ProviderID == "" {
			return nil, fmt.Errorf("node %s: %w", n.Name, errNodeIdentityUnknown)
		}
		if id := InstanceIDFromProviderID(n.Spec.ProviderID); id != "" {
			named[id] = true
		}
	}
	for _, cn := range cns {
		if id := cn.Spec.Tags[awsutils.TagInstanceID]; id != "" {
			named[id] = true
		}
	}
	return named, nil
}

// sweepLostBranches runs at start, then at each GC pass until it has
// succeeded once: one paged describe of the VPC's branch ENIs, then their
// deletes in the background; a failed delete is retried at each GC pass.
func (c *Controller) sweepLostBranches(ctx context.Context) error {
	// A Node without a providerID holds the sweep back: checked before
	// the describe as well, so that each pass it holds back costs the VPC
	// no paged describe of its branch ENIs.
	var before corev1.NodeList
	if err := c.api.List(ctx, &before); err != nil {
		return fmt.Errorf("branch ENIs of gone instances: listing nodes: %w", err)
	}
	if _, err := namedInstances(before.Items, nil); err != nil {
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
	named, err := namedInstances(nodes.Items, cns.Items)
	if err != nil {
		return fmt.Errorf("branch ENIs of gone instances: %w", err)
	}
	for inst, bs := range lostBranches(found, c.cfg.ClusterName, c.reg.trunkHeld, named) {
		if n := c.startBranchDeletes(ctx, inst, bs); n > 0 {
			c.cfg.Log.Info("deleting the branch ENIs of an instance no node names", "instance", inst, "count", n)
		}
	}
	return nil
}
