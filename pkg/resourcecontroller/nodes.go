package resourcecontroller

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/vpc-cni/vpc-cni/pkg/awsutils"
	"github.com/vpc-cni/vpc-cni/pkg/eniconfig"
	"github.com/vpc-cni/vpc-cni/pkg/k8s"
)

// Node labels the controller reads.
const (
	// LabelHasTrunk: the key's presence (any value) asks for a trunk, as
	// old aws-node versions did before the CNINode feature.
	LabelHasTrunk   = "vpc.amazonaws.com/has-trunk-attached"
	LabelENIConfig  = "vpc.amazonaws.com/eniConfig"
	labelOS         = "kubernetes.io/os"
	labelComputeAut = "eks.amazonaws.com/compute-type"
)

// EC2 ids have 8 or 17 hex digits; the local VPC uses 16, so any length in
// between is accepted.
var instanceIDPattern = regexp.MustCompile(`^i-[a-f0-9]{8,17}$`)

// InstanceIDFromProviderID returns the instance id, the last path element
// of aws:///<az>/<id>, or "" when it is not an instance id.
func InstanceIDFromProviderID(providerID string) string {
	id := providerID[strings.LastIndex(providerID, "/")+1:]
	if !instanceIDPattern.MatchString(id) {
		return ""
	}
	return id
}

// reconcileNode makes the node's CNINode, and for SGP nodes its trunk ENI
// and the pod-eni capacity.
func (c *Controller) reconcileNode(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	var node corev1.Node
	if err := c.c.Get(ctx, req.NamespacedName, &node); err != nil {
		if apierrors.IsNotFound(err) {
			c.unsupported.clear(req.Name)
			c.features.done(req.Name)
			c.remaking.done(req.Name)
			c.warned.clear("cninode|" + req.Name)
			c.clearTrunkNotes(req.Name)
			return c.nodeGone(ctx, req.Name)
		}
		return reconcile.Result{}, fmt.Errorf("reading node %s: %w", req.Name, err)
	}
	c.deinitOver.clear(node.Name) // a Node again: a later deletion waits anew
	if c.gone.running(node.Name) {
		// Back while its gone state's branches are being deleted: the
		// job stops at its next delete and reconciles the node; a trunk
		// rebuilt now could adopt a branch being deleted. Back for
		// another instance: those branches are not this node's, and the
		// job stops now, its delete in flight handed to the background
		// deletes with the rest, so the new trunk does not wait for EC2.
		if c.gone.cutFor(node.Name, InstanceIDFromProviderID(node.Spec.ProviderID)) {
			c.cfg.Log.Info("node name registered again by another instance; cutting its old branch deletes short", "node", node.Name)
		}
		return reconcile.Result{RequeueAfter: c.cfg.RetryDelay}, nil
	}
	if node.Labels[labelComputeAut] == "auto" {
		return reconcile.Result{}, nil
	}
	instanceID := InstanceIDFromProviderID(node.Spec.ProviderID)
	if instanceID == "" {
		c.cfg.Log.Debug("node has no EC2 instance id in its providerID; not managed", "node", node.Name, "providerID", node.Spec.ProviderID)
		return reconcile.Result{}, nil
	}
	if info, ok := c.reg.info(node.Name); ok && info.InstanceID != instanceID {
		// The Node was deleted and registered again for another instance
		// before a reconcile saw it gone: the old instance's trunk and
		// branches are not this node's.
		c.cfg.Log.Info("node name now belongs to another instance; dropping the old instance's trunk state",
			"node", node.Name, "old", info.InstanceID, "new", instanceID)
		c.deinitNode(ctx, node.Name)
	} else if ok && info.Gone {
		c.cfg.Log.Info("deleted node registered again for its instance; keeping its trunk state", "node", node.Name, "instance", instanceID)
		c.reg.setGone(node.Name, false)
		c.unmanaging.clear(node.Name)
	}
	cn, err := c.ensureCNINode(ctx, &node, instanceID)
	if errors.Is(err, errCNINodeDeleting) {
		return reconcile.Result{RequeueAfter: cninodeRecreateDelay}, nil
	}
	if errors.Is(err, errOldInstanceCleanup) {
		return reconcile.Result{}, nil
	}
	if err != nil {
		return reconcile.Result{}, err
	}
	if !sgpNode(&node, cn) {
		return c.unmanageNode(ctx, &node, instanceID)
	}
	c.unmanaging.clear(node.Name)
	info, ok := c.reg.info(node.Name)
	if !ok {
		if c.unsupported.is(node.Name, instanceID) {
			return reconcile.Result{}, nil // its type cannot trunk; told once
		}
		start := time.Now()
		err := c.initTrunk(ctx, &node, cn, instanceID)
		if !errors.Is(err, errUnsupported) {
			observeOp(opInitTrunk, 1, start, err)
		}
		if err != nil {
			if errors.Is(err, errUnsupported) {
				c.unsupported.first(node.Name, instanceID)
				return reconcile.Result{}, nil
			}
			if ctx.Err() == nil { // not the controller stopping
				c.tellTrunkFailed(ctx, &node, err)
			}
			return reconcile.Result{}, err
		}
		info, _ = c.reg.info(node.Name)
	}
	return reconcile.Result{}, c.publishCapacity(ctx, &node, info.Limit)
}

// sgpNode: the legacy label's key, or the CNINode feature ipamd declares.
func sgpNode(node *corev1.Node, cn *k8s.CNINode) bool {
	if _, ok := node.Labels[LabelHasTrunk]; ok {
		return true
	}
	for _, f := range cn.Spec.Features {
		if f.Name == k8s.FeatureSecurityGroupsForPods {
			return true
		}
	}
	return false
}

// ensureCNINode creates the node's CNINode (owned by the Node, so it goes
// with it; with the finalizer, cninode.go) when it does not exist yet.
func (c *Controller) ensureCNINode(ctx context.Context, node *corev1.Node, instanceID string) (*k8s.CNINode, error) {
	cn := &k8s.CNINode{}
	err := c.c.Get(ctx, ctrl.ObjectKey{Name: node.Name}, cn)
	if err == nil {
		return cn, c.keepCNINode(ctx, cn, instanceID)
	}
	if !apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("reading CNINode %s: %w", node.Name, err)
	}
	yes := true
	cn = &k8s.CNINode{
		ObjectMeta: metav1.ObjectMeta{
			Name:       node.Name,
			Labels:     map[string]string{labelOS: node.Labels[labelOS]},
			Finalizers: []string{CNINodeFinalizer},
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: "v1", Kind: "Node", Name: node.Name, UID: node.UID,
				Controller: &yes, BlockOwnerDeletion: &yes,
			}},
		},
		Spec: k8s.CNINodeSpec{Tags: map[string]string{
			awsutils.TagClusterName: c.cfg.ClusterName,
			awsutils.TagInstanceID:  instanceID,
		}, Features: c.remadeFeatures(node)},
	}
	if err := c.c.Create(ctx, cn); err != nil && !apierrors.IsAlreadyExists(err) {
		err = fmt.Errorf("creating CNINode %s: %w", node.Name, err)
		if c.remaking.has(node.Name) && c.warned.first("cninode|"+node.Name, err.Error()) {
			c.rec.event(ctx, node, "Node", corev1.EventTypeWarning, ReasonCNINodeCreationFailed,
				"Failed to recreate the node's CNINode (retrying): %v", err)
		}
		return nil, err
	}
	c.remaking.done(node.Name)
	c.warned.clear("cninode|" + node.Name)
	c.features.done(node.Name)
	return cn, nil
}

// remadeFeatures are the features of a CNINode made for node: those of
// the CNINode it replaces, when this process saw that one go. A node that
// advertises pod-eni was an SGP node whose CNINode went unseen (a restart
// between its finalizer's removal and the new one, or a finalizer removed
// by hand): ipamd declares SecurityGroupsForPods only until its trunk is
// attached, so without it here the node would be unmanaged and its
// running pods' branches deleted.
func (c *Controller) remadeFeatures(node *corev1.Node) []k8s.CNINodeFeature {
	fs := c.features.get(node.Name)
	if _, ok := node.Status.Capacity[PodENIResource]; ok && !slices.ContainsFunc(fs, func(f k8s.CNINodeFeature) bool {
		return f.Name == k8s.FeatureSecurityGroupsForPods
	}) {
		c.cfg.Log.Info("CNINode made again for a node advertising pod-eni; keeping it an SGP node", "node", node.Name)
		fs = append(fs, k8s.CNINodeFeature{Name: k8s.FeatureSecurityGroupsForPods})
	}
	return fs
}

var errUnsupported = errors.New("instance type cannot trunk ENIs")

// initTrunk finds or makes the node's trunk ENI and rebuilds its branch
// state from EC2 and the pods' annotations.
func (c *Controller) initTrunk(ctx context.Context, node *corev1.Node, cn *k8s.CNINode, instanceID string) error {
	inst, err := c.ec2.Instance(ctx, instanceID)
	if err != nil {
		return fmt.Errorf("trunk for node %s: %w", node.Name, err)
	}
	limit, ok := BranchLimit(inst.Type)
	if !ok {
		c.rec.event(ctx, node, "Node", corev1.EventTypeWarning, ReasonUnsupported,
			"The instance type %s is not supported for trunk interface (Security Group for Pods)", inst.Type)
		return errUnsupported
	}
	subnetID, groups, err := c.nodeSubnet(ctx, node, cn, inst)
	if err != nil {
		return err
	}
	sn, err := c.ec2.Subnet(ctx, subnetID)
	if err != nil {
		return fmt.Errorf("trunk for node %s: %w", node.Name, err)
	}
	ids := make([]string, 0, len(inst.ENIs))
	for _, e := range inst.ENIs {
		ids = append(ids, e.ID)
	}
	enis, _, err := c.ec2.DescribeENIs(ctx, ids)
	if err != nil {
		return fmt.Errorf("trunk for node %s: %w", node.Name, err)
	}
	trunkID := ""
	for _, e := range enis {
		if e.InterfaceType == "trunk" {
			trunkID = e.ID
		}
	}
	if trunkID == "" {
		if err := c.deleteStrayTrunks(ctx, node, instanceID); err != nil {
			return err
		}
		trunkID, err = c.createTrunk(ctx, node, inst, subnetID, groups)
		if err != nil {
			return err
		}
	}
	// One describe of the instance's branches serves both the trunk's
	// rebuild (those of trunkID) and the deletion of those of a trunk it
	// no longer has (droppedbranches.go).
	found, err := c.ec2.TaggedInstanceENIs(ctx, instanceID, awsutils.BranchDescription)
	if err != nil {
		return fmt.Errorf("trunk for node %s: %w", node.Name, err)
	}
	c.sweepOldTrunkBranches(ctx, node.Name, instanceID, trunkID, found)
	t := newTrunk()
	t.node, t.instanceID, t.trunkID = node.Name, instanceID, trunkID
	t.subnetID, t.subnetCIDR, t.groups, t.limit = subnetID, sn.CIDR.String(), groups, limit
	if err := c.rebuild(ctx, t, onTrunk(found, trunkID)); err != nil {
		return err
	}
	c.reg.put(t)
	c.clearTrunkNotes(node.Name) // a later failure is told again
	c.rec.event(ctx, node, "Node", corev1.EventTypeNormal, ReasonNodeTrunkInitiated,
		"The node has trunk interface %s initialized successfully (%d branch ENIs)", trunkID, limit)
	return nil
}

// createTrunk attaches a new trunk ENI at the highest free device index
// (ipamd fills them from the lowest).
func (c *Controller) createTrunk(ctx context.Context, node *corev1.Node, inst awsutils.InstanceInfo, subnetID string, groups []string) (string, error) {
	typ, err := c.ec2.InstanceType(ctx, inst.Type)
	if err != nil {
		return "", fmt.Errorf("trunk for node %s: %w", node.Name, err)
	}
	dev := -1
	used := map[int]bool{}
	for _, e := range inst.ENIs {
		if e.NetworkCard == 0 {
			used[e.DeviceIndex] = true
		}
	}
	for i := typ.MaxENIs - 1; i > 0; i-- {
		if !used[i] {
			dev = i
			break
		}
	}
	if dev < 0 {
		err := fmt.Errorf("no free device index for a trunk ENI on %s (%d of %d ENIs attached)", inst.ID, len(used), typ.MaxENIs)
		metricTrunkErrors.WithLabelValues("find_free_index").Inc()
		return "", err
	}
	eni, err := c.ec2.CreateTrunkENI(ctx, awsutils.TrunkRequest{
		InstanceID: inst.ID, SubnetID: subnetID, SecurityGroups: groups, ClusterName: c.cfg.ClusterName, DeviceIndex: dev,
	})
	if err != nil {
		metricTrunkErrors.WithLabelValues("create_trunk_eni").Inc()
		return "", err
	}
	return eni.ID, nil
}

// tellTrunkFailed sends the node's trunk failure events for any failure
// of its trunk's init, before the create too (describing the instance,
// its subnet or ENIs; its ENIConfig), as EKS does: TrunkENICreationFailed
// naming EC2's code, then NodeTrunkFailedInit, of type Normal as there.
// Once per distinct cause (trunkCause) until the trunk is made: the node
// is retried with backoff, and an event per retry buried the node's other
// events. Messages carry request ids, ports and counts, so the cause's
// class is what is compared, not the text.
func (c *Controller) tellTrunkFailed(ctx context.Context, node *corev1.Node, err error) {
	code := awsutils.Code(err)
	note := trunkCause(err)
	// One note per cause, not only the last: a throttle between the
	// refusals of a lasting cause would otherwise tell that cause again on
	// every switch.
	if !c.warned.first(trunkNoteKey(node.Name)+"|"+note, "told") {
		return
	}
	if code != "" {
		hint := ""
		if code == awsutils.CodeUnauthorized {
			hint = "; check that the controller's IAM role has the actions of misc/iam-policy.json"
		}
		c.rec.event(ctx, node, "Node", corev1.EventTypeWarning, ReasonTrunkCreationFailed,
			"Failed to create trunk interface: Error Code: %s%s", code, hint)
	}
	c.rec.event(ctx, node, "Node", corev1.EventTypeNormal, ReasonNodeTrunkFailedInit, "The node failed initializing trunk interface: %v", err)
}

// trunkNoteKey prefixes the node's trunk failure notes (c.warned), one
// per cause.
func trunkNoteKey(node string) string { return "trunk|" + node }

// clearTrunkNotes forgets the node's trunk failure notes, so a later
// failure is told again.
func (c *Controller) clearTrunkNotes(node string) {
	prefix := trunkNoteKey(node) + "|"
	c.warned.clearWhere(func(k string) bool { return strings.HasPrefix(k, prefix) })
}

// nodeSubnet is where the node's branches go: its ENIConfig's subnet and
// groups under custom networking, else the instance's subnet and primary
// ENI groups.
func (c *Controller) nodeSubnet(ctx context.Context, node *corev1.Node, cn *k8s.CNINode, inst awsutils.InstanceInfo) (string, []string, error) {
	name := node.Labels[LabelENIConfig]
	if name == "" {
		for _, f := range cn.Spec.Features {
			if f.Name == k8s.FeatureCustomNetworking {
				name = f.Value
			}
		}
	}
	if name == "" {
		return inst.SubnetID, inst.SecurityGroups, nil
	}
	var ec eniconfig.ENIConfig
	if err := c.c.Get(ctx, ctrl.ObjectKey{Name: name}, &ec); err != nil {
		return "", nil, fmt.Errorf("node %s uses ENIConfig %q: %w", node.Name, name, err)
	}
	if ec.Spec.Subnet == "" {
		return inst.SubnetID, inst.SecurityGroups, nil
	}
	groups := ec.Spec.SecurityGroups
	if len(groups) == 0 {
		groups = inst.SecurityGroups
	}
	return ec.Spec.Subnet, groups, nil
}

// rebuild fills a trunk's state from EC2's branch ENIs of the trunk,
// found: branches claimed by a running pod's annotation are that pod's
// (their VLANs too when the branch is no longer in EC2); every other
// branch tagged with the trunk (a crash between create and annotate, a
// completed pod) is deleted at once.
func (c *Controller) rebuild(ctx context.Context, t *trunk, found []awsutils.ENI) error {
	byID := make(map[string]awsutils.ENI, len(found))
	for _, e := range found {
		byID[e.ID] = e
	}
	var pods corev1.PodList
	if err := c.c.List(ctx, &pods, ctrl.MatchingFields{podNodeField: t.node}); err != nil {
		return fmt.Errorf("listing the pods of node %s: %w", t.node, err)
	}
	for i := range pods.Items {
		p := &pods.Items[i]
		raw := p.Annotations[PodENIAnnotation]
		if raw == "" || podDone(p) {
			continue
		}
		enis, err := DecodeAnnotation(raw)
		if err != nil {
			c.rec.event(ctx, p, "Pod", corev1.EventTypeWarning, ReasonInvalidAnnotation, "ignoring the pod's branch ENIs: %v", err)
			continue
		}
		for _, e := range enis {
			_, found := byID[e.ENIID]
			if err := t.vlans.mark(e.VlanID); err != nil {
				c.rec.event(ctx, p, "Pod", corev1.EventTypeWarning, ReasonInvalidAnnotation, "branch ENI %s: %v", e.ENIID, err)
				continue
			}
			if !found {
				// Deleted outside the controller (or its trunk was). The pod's sandbox still
				// uses the VLAN's link and route table on the node, so the
				// VLAN stays the pod's until it ends (its release deletes a
				// branch EC2 answers NotFound for: the VLAN is freed then);
				// given to another pod, the two would collide there.
				c.cfg.Log.Warn("annotated branch ENI not found on the trunk; keeping its VLAN for the pod", "pod", p.Namespace+"/"+p.Name, "eni", e.ENIID, "vlan", e.VlanID, "trunk", t.trunkID)
				c.rec.event(ctx, p, "Pod", corev1.EventTypeWarning, ReasonInvalidAnnotation,
					"branch ENI %s named by the pod's annotation is not on the node's trunk ENI %s (deleted outside the controller?): the pod has no branch network; delete the pod to get a new branch ENI", e.ENIID, t.trunkID)
				e.AssociationID = "" // gone with the ENI
			}
			delete(byID, e.ENIID)
			t.pods[p.UID] = append(t.pods[p.UID], branch{BranchENI: e})
			t.keys[p.UID] = p.Namespace + "/" + p.Name
		}
	}
	// An orphan may carry a VLAN a claimed branch holds (a create whose
	// answer was lost, so its VLAN was handed on): deleting it must not
	// free that VLAN. Orphans sharing a VLAN free it with the last of them
	// (the queue deletes in order).
	holder := map[int]int{} // VLAN → index in t.cooling of the orphan that frees it
	for _, e := range found {
		if _, orphan := byID[e.ID]; !orphan {
			continue
		}
		vlan, _ := strconv.Atoi(e.Tags[awsutils.TagVLANID])
		if i, ok := holder[vlan]; ok {
			t.cooling[i].VlanID = 0
		} else if t.vlans.has(vlan) || t.vlans.mark(vlan) != nil {
			vlan = 0 // the VLAN id is not ours to free
		}
		if vlan != 0 {
			holder[vlan] = len(t.cooling)
		}
		c.cfg.Log.Info("deleting a branch ENI no pod claims", "eni", e.ID, "trunk", t.trunkID, "vlan", vlan)
		t.cooling = append(t.cooling, branch{BranchENI: BranchENI{ENIID: e.ID, VlanID: vlan}})
	}
	return nil
}

// publishCapacity advertises the branch limit as the node's pod-eni
// capacity (a status patch, only when it differs).
func (c *Controller) publishCapacity(ctx context.Context, node *corev1.Node, limit int) error {
	want := *resource.NewQuantity(int64(limit), resource.DecimalSI)
	if q, ok := node.Status.Capacity[PodENIResource]; ok && q.Cmp(want) == 0 {
		return nil
	}
	orig := node.DeepCopy()
	if node.Status.Capacity == nil {
		node.Status.Capacity = corev1.ResourceList{}
	}
	node.Status.Capacity[PodENIResource] = want
	metricAdvertise.WithLabelValues(PodENIResource).Inc()
	if err := c.c.Status().Patch(ctx, node, ctrl.MergeFrom(orig)); err != nil {
		metricAdvertiseErrors.WithLabelValues(PodENIResource).Inc()
		return fmt.Errorf("advertising %s=%d on node %s: %w", PodENIResource, limit, node.Name, err)
	}
	return nil
}

// deinitNode drops the trunk state of a node whose name now belongs to
// another instance and deletes its branches in the background (the new
// instance's trunk does not wait for them): its pods went with the old
// instance.
func (c *Controller) deinitNode(ctx context.Context, name string) {
	if t := c.reg.drop(name); t != nil {
		c.startBranchDeletes(ctx, name, trunkBranches(t))
	}
}

// deleteTrunkBranchesUnless deletes every branch of a dropped trunk state,
// asking stop (if not nil) before each delete: once it says so, the
// branches left are not deleted (a trunk rebuild adopts or deletes them),
// nor are they once ctx ends (the delete it cut short is left too); it
// returns those left and those whose delete failed. Nothing else knows
// them once the state is dropped: a failed delete is retried with the GC
// (deleteLoose). each, if not nil, is called after each delete (err nil:
// deleted).
func (c *Controller) deleteTrunkBranchesUnless(ctx context.Context, t *trunk, stop func() bool, each func(BranchENI, error)) (left, failed []BranchENI) {
	name := t.node
	all := trunkBranches(t)
	for i, b := range all {
		if stop != nil && stop() {
			c.cfg.Log.Info("leaving the branch ENIs of a dropped trunk state", "node", name, "left", len(all)-i)
			left = all[i:]
			break
		}
		err := c.deleteBranch(ctx, b)
		if err != nil && ctx.Err() != nil {
			// Given up, not refused: EC2 may or may not have applied it,
			// and a second delete of a deleted ENI succeeds.
			c.cfg.Log.Info("leaving the branch ENIs of a dropped trunk state", "node", name, "left", len(all)-i, "why", context.Cause(ctx))
			left = all[i:]
			break
		}
		if err != nil {
			c.cfg.Log.Warn("deleting a branch ENI of a dropped trunk; retrying at the next GC pass", "node", name, "eni", b.ENIID, "err", err)
			failed = append(failed, b)
		}
		if each != nil {
			each(b, err)
		}
	}
	c.reg.addLoose(failed)
	return left, failed
}
