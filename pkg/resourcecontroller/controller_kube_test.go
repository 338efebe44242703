package resourcecontroller

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/vpc-cni/vpc-cni/pkg/apis/vpcresources/v1beta1"
	"github.com/vpc-cni/vpc-cni/pkg/awsutils"
	"github.com/vpc-cni/vpc-cni/pkg/eniconfig"
	"github.com/vpc-cni/vpc-cni/pkg/k8s"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/simtest"
)

func (h *harness) addPolicy(name string, podLabels map[string]string, groups ...string) {
	h.t.Helper()
	p := &v1beta1.SecurityGroupPolicy{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: h.ns},
		Spec: v1beta1.SecurityGroupPolicySpec{PodSelector: &metav1.LabelSelector{MatchLabels: podLabels}, SecurityGroups: v1beta1.GroupIDs{Groups: groups}}}
	if err := h.admin.Create(context.Background(), p); err != nil {
		h.t.Fatal(err)
	}
}

func fastConfig() Config {
	return Config{Cooldown: 2 * time.Second, CooldownTick: 100 * time.Millisecond, GCInterval: 200 * time.Millisecond, RetryDelay: 100 * time.Millisecond, DeinitDelay: 300 * time.Millisecond}
}

// The trunk is made once per SGP node (at the highest free device index),
// capacity is the type's branch limit, and a restarted controller adopts
// the trunk instead of making another.
func TestKubeTrunkOncePerNodeAndCapacity(t *testing.T) {
	w := newWorld(t)
	h := newHarness(t, w.ec2, fastConfig())
	n1 := h.addNode("rc-trunk-1", inst1, nil)
	h.addNode("rc-trunk-2", inst2, map[string]string{LabelHasTrunk: "false"})
	h.addNode("rc-trunk-plain", inst3, nil)
	h.declareSGP(n1.Name)
	h.waitCapacity("rc-trunk-1", 9)
	h.waitCapacity("rc-trunk-2", 9)
	// Node updates must not make more trunks.
	for i := range 3 {
		var n corev1.Node
		if err := h.admin.Get(context.Background(), client.ObjectKey{Name: n1.Name}, &n); err != nil {
			t.Fatal(err)
		}
		n.Labels["touch"] = fmt.Sprint(i)
		if err := h.admin.Update(context.Background(), &n); err != nil {
			t.Fatal(err)
		}
	}
	first := h.waitNodeEvents("rc-trunk-1", ReasonNodeTrunkInitiated, 1)
	h.stop()
	startController(t, h)
	again := h.waitNodeEvents("rc-trunk-1", ReasonNodeTrunkInitiated, 2)
	if first[0] != again[1] {
		t.Fatalf("the restarted controller initialised %q, before %q: want the same trunk adopted", again[1], first[0])
	}
	trunks := w.trunks()
	if len(trunks) != 2 {
		t.Fatalf("%d trunks, want 2 (one per SGP node, none for the plain node): %+v", len(trunks), trunks)
	}
	for _, tr := range trunks {
		if tr.Attachment.DeviceIndex != 2 || tr.Tags[awsutils.TagENIOwner] != awsutils.ENIOwnerController || tr.Tags["kubernetes.io/cluster/test"] != "owned" {
			t.Errorf("trunk %s: device %d tags %v", tr.ID, tr.Attachment.DeviceIndex, tr.Tags)
		}
	}
	var plain corev1.Node
	if err := h.admin.Get(context.Background(), client.ObjectKey{Name: "rc-trunk-plain"}, &plain); err != nil {
		t.Fatal(err)
	}
	if _, ok := plain.Status.Capacity[PodENIResource]; ok {
		t.Fatalf("a node that did not ask for SGP advertises %s", PodENIResource)
	}
}

// The webhook (called by the API server over TLS) gives only matching pods
// the pod-eni request and limit, and refuses bad input with a clear reason.
func TestKubeWebhookMutatesOnlyMatchingPods(t *testing.T) {
	h := newHarness(t, newWorld(t).ec2, fastConfig())
	h.addPolicy("db", map[string]string{"role": "db-client"}, sgDB)
	match, err := h.createPod("client", "", map[string]string{"role": "db-client"})
	if err != nil {
		t.Fatal(err)
	}
	other, err := h.createPod("web", "", map[string]string{"role": "web"})
	if err != nil {
		t.Fatal(err)
	}
	r := match.Spec.Containers[0].Resources
	if q, l := r.Requests[PodENIResource], r.Limits[PodENIResource]; q.Value() != 1 || l.Value() != 1 {
		t.Fatalf("matching pod resources %v, want pod-eni request and limit 1", r)
	}
	if _, ok := other.Spec.Containers[0].Resources.Requests[PodENIResource]; ok {
		t.Fatalf("non-matching pod was mutated: %v", other.Spec.Containers[0].Resources)
	}
	// A pod may not bring its own branch annotation.
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "forged", Namespace: h.ns, Annotations: map[string]string{PodENIAnnotation: "[]"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "none"}}}}
	if err := h.admin.Create(context.Background(), p); err == nil || !strings.Contains(err.Error(), PodENIAnnotation) {
		t.Fatalf("pod created with the annotation: %v", err)
	}
	// More groups than an ENI takes: refused, naming the policies.
	h.addPolicy("many", map[string]string{"role": "many"}, "sg-1", "sg-2", "sg-3", "sg-4", "sg-5", "sg-6")
	_, err = h.createPod("many", "", map[string]string{"role": "many"})
	if err == nil || !strings.Contains(err.Error(), "many") || !strings.Contains(err.Error(), "at most 5") {
		t.Fatalf("pod of a 6-group policy: %v, want a denial naming the policy and the limit", err)
	}
}

// One branch per pod, with the policy's groups, in the node's subnet (or
// the ENIConfig's under custom networking), annotated for ipamd; deleted
// only after the cool-down once the pod is gone.
func TestKubeBranchPerPodAndCooldown(t *testing.T) {
	w := newWorld(t)
	h := newHarness(t, w.ec2, fastConfig())
	ec := &eniconfig.ENIConfig{ObjectMeta: metav1.ObjectMeta{Name: "rc-custom-" + h.ns}, Spec: eniconfig.Spec{Subnet: simtest.CustomSubnetAID, SecurityGroups: []string{sgCustom}}}
	if err := h.admin.Create(context.Background(), ec); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.admin.Delete(context.Background(), ec) })
	h.addPolicy("db", map[string]string{"role": "db-client"}, sgDB)
	h.addNode("rc-branch-1", inst1, nil)
	h.addNode("rc-branch-2", inst2, nil)
	h.declareSGP("rc-branch-1")
	h.declareSGP("rc-branch-2", k8s.CNINodeFeature{Name: k8s.FeatureCustomNetworking, Value: ec.Name})
	h.waitCapacity("rc-branch-1", 9)
	h.waitCapacity("rc-branch-2", 9)

	if _, err := h.createPod("a", "rc-branch-1", map[string]string{"role": "db-client"}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.createPod("b", "rc-branch-2", map[string]string{"role": "db-client"}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.createPod("plain", "rc-branch-1", map[string]string{"role": "web"}); err != nil {
		t.Fatal(err)
	}
	a, b := h.waitAnnotation("a"), h.waitAnnotation("b")
	if len(a) != 1 || a[0].VlanID != 1 || a[0].SubnetCIDR != "10.0.0.0/20" || a[0].AssociationID == "" || !strings.HasPrefix(a[0].PrivateIP, "10.0.") {
		t.Fatalf("pod a annotation %+v, want VLAN 1 in the node subnet with an association", a)
	}
	if len(b) != 1 || b[0].SubnetCIDR != "100.64.0.0/19" || !strings.HasPrefix(b[0].PrivateIP, "100.64.") {
		t.Fatalf("pod b annotation %+v, want the ENIConfig's 100.64 subnet", b)
	}
	branches := w.branches()
	if len(branches) != 2 {
		t.Fatalf("%d branches, want 2 (none for the non-matching pod)", len(branches))
	}
	for _, br := range branches {
		if !slices.Equal(br.Groups, []string{sgDB}) || br.InterfaceType != "branch" {
			t.Fatalf("branch %s type %s groups %v, want an associated branch with [%s]", br.ID, br.InterfaceType, br.Groups, sgDB)
		}
	}
	h.waitEvent("a", ReasonResourceAllocated, a[0].ENIID)

	deleted := time.Now()
	h.deletePod("a")
	waitFor(t, 30*time.Second, "branch of pod a deleted", func() (bool, string) {
		for _, br := range w.branches() {
			if br.ID == a[0].ENIID {
				return false, "still there"
			}
		}
		return true, ""
	})
	if d := time.Since(deleted); d < h.cfg.Cooldown {
		t.Fatalf("branch deleted %s after the pod, before the %s cool-down", d, h.cfg.Cooldown)
	}
	if len(w.branches()) != 1 {
		t.Fatalf("pod b's branch must stay: %v", w.branches())
	}
}

// A controller that died after making a branch but before annotating the
// pod leaves a tagged branch no pod claims, and one that was down while a
// pod went misses its delete: the next controller deletes both branches
// and gives the waiting pod a branch of its own.
func TestKubeRestartAfterCrashLeavesNoLeak(t *testing.T) {
	w := newWorld(t)
	h := newHarness(t, w.ec2, fastConfig())
	h.addPolicy("db", map[string]string{"role": "db-client"}, sgDB)
	h.addSGPNode("rc-crash", inst1, 9)
	// A pod whose delete event the controller will miss.
	if _, err := h.createPod("gone", "rc-crash", map[string]string{"role": "db-client"}); err != nil {
		t.Fatal(err)
	}
	gone := h.waitAnnotation("gone")
	h.stop()
	h.deletePod("gone")
	// The state a crash between CreateNetworkInterface and the annotation
	// leaves: a branch tagged with the trunk and VLAN 1, and a pod without
	// an annotation.
	trunkID := w.trunks()[0].ID
	orphan, err := w.ec2.CreateBranchENI(context.Background(), awsutils.BranchRequest{InstanceID: inst1, TrunkID: trunkID, VLAN: 1, SubnetID: simtest.NodeSubnetID, SecurityGroups: []string{sgDB}, ClusterName: "test"})
	if err != nil {
		t.Fatal(err)
	}
	// The webhook is down with the controller: the pod asks by hand.
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "victim", Namespace: h.ns, Labels: map[string]string{"role": "db-client"}},
		Spec: corev1.PodSpec{NodeName: "rc-crash", Containers: []corev1.Container{{Name: "c", Image: "none",
			Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{PodENIResource: resourceOne()}, Limits: corev1.ResourceList{PodENIResource: resourceOne()}}}}}}
	_ = h.admin.Delete(context.Background(), &admissionregistrationv1.MutatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "rc-" + h.ns}})
	// The apiserver learns of the deletion through its own watch: until
	// then it still calls the stopped webhook.
	waitFor(t, 30*time.Second, "the apiserver to stop calling the deleted webhook", func() (bool, string) {
		err := h.admin.Create(context.Background(), p.DeepCopy(), client.DryRunAll)
		return err == nil, fmt.Sprint(err)
	})
	if err := h.admin.Create(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	startController(t, h)
	got := h.waitAnnotation("victim")
	waitFor(t, 30*time.Second, "the orphan and the deleted pod's branch deleted", func() (bool, string) {
		ids := branchIDs(w.branches())
		return slices.Equal(ids, []string{got[0].ENIID}) && got[0].ENIID != orphan.ID && got[0].ENIID != gone[0].ENIID, fmt.Sprint(ids)
	})
}

// 20 SGP pods on an m5.xlarge (18 branches): 18 get branches, the others a
// clear event; when a pod goes, a waiting one gets its branch after the
// cool-down.
func TestKubeBranchLimit(t *testing.T) {
	w := newWorld(t)
	h := newHarness(t, w.ec2, fastConfig())
	h.addPolicy("db", map[string]string{"role": "db-client"}, sgDB)
	h.addSGPNode("rc-full", inst3, 18)
	for i := range 20 {
		if _, err := h.createPod(fmt.Sprintf("p%02d", i), "rc-full", map[string]string{"role": "db-client"}); err != nil {
			t.Fatal(err)
		}
	}
	var waiting []string
	waitFor(t, 60*time.Second, "18 annotated pods", func() (bool, string) {
		var l corev1.PodList
		if err := h.admin.List(context.Background(), &l, client.InNamespace(h.ns)); err != nil {
			return false, err.Error()
		}
		n := 0
		waiting = waiting[:0]
		for _, p := range l.Items {
			if p.Annotations[PodENIAnnotation] != "" {
				n++
			} else {
				waiting = append(waiting, p.Name)
			}
		}
		return n == 18, fmt.Sprintf("%d annotated", n)
	})
	if len(w.branches()) != 18 || len(waiting) != 2 {
		t.Fatalf("%d branches, waiting %v", len(w.branches()), waiting)
	}
	for _, w := range waiting {
		h.waitEvent(w, ReasonBranchAllocationFailed, "branch ENI limit reached on node rc-full: 18 of 18")
	}
	h.deletePod("p00")
	waitFor(t, 30*time.Second, "a waiting pod annotated after the cool-down", func() (bool, string) {
		n := 0
		for _, w := range waiting {
			var p corev1.Pod
			if h.admin.Get(context.Background(), client.ObjectKey{Namespace: h.ns, Name: w}, &p) == nil && p.Annotations[PodENIAnnotation] != "" {
				n++
			}
		}
		return n == 1, fmt.Sprintf("%d of %v annotated", n, waiting)
	})
}

// An unknown group id gives an event with EC2's code and leaves no branch;
// a malformed annotation found at start is reported and ignored.
func TestKubeBadInput(t *testing.T) {
	w := newWorld(t)
	h := newHarness(t, w.ec2, fastConfig())
	h.addPolicy("ghost", map[string]string{"role": "ghost"}, sgUnknown)
	// Nodes are cluster-scoped and outlive the test's namespace: a name of
	// this run's own lets -count repeat the test in the same API server.
	node := "rc-bad-" + h.ns
	h.addSGPNode(node, inst1, 9)
	if _, err := h.createPod("ghost", node, map[string]string{"role": "ghost"}); err != nil {
		t.Fatal(err)
	}
	h.waitEvent("ghost", ReasonBranchAllocationFailed, "InvalidGroup.NotFound")
	if bs := w.branches(); len(bs) != 0 {
		t.Fatalf("branches left behind: %v", bs)
	}

	// A policy giving more than 5 groups: the webhook refuses the pod,
	// naming the policy and the limit, before any EC2 call.
	wide := []string{sgDB, "sg-00000000000000a01", "sg-00000000000000a02", "sg-00000000000000a03", "sg-00000000000000a04", "sg-00000000000000a05"}
	h.addPolicy("wide", map[string]string{"role": "wide"}, wide...)
	_, err := h.createPod("wide", node, map[string]string{"role": "wide"})
	if err == nil || !strings.Contains(err.Error(), "wide") || !strings.Contains(err.Error(), "6 security groups") || !strings.Contains(err.Error(), "at most 5") {
		t.Fatalf("pod under a 6-group policy: %v, want the webhook's refusal naming the policy and the limit of 5", err)
	}
	var gone corev1.Pod
	if err := h.admin.Get(context.Background(), client.ObjectKey{Namespace: h.ns, Name: "wide"}, &gone); !apierrors.IsNotFound(err) {
		t.Fatalf("refused pod exists: %v", err)
	}
	if bs := w.branches(); len(bs) != 0 {
		t.Fatalf("branches left behind: %v", bs)
	}

	// A malformed annotation (written by someone else) is named at start.
	h.addPolicy("db", map[string]string{"role": "db-client"}, sgDB)
	p, err := h.createPod("garbled", node, map[string]string{"role": "x"})
	if err != nil {
		t.Fatal(err)
	}
	orig := p.DeepCopy()
	p.Annotations = map[string]string{PodENIAnnotation: `[{"eniId":"eni-1","ifAddress":"02:00:00:00:00:01","privateIp":"10.0.0.9","vlanId":400}]`}
	if err := h.admin.Patch(context.Background(), p, client.MergeFrom(orig)); err != nil {
		t.Fatal(err)
	}
	h.stop()
	startController(t, h)
	h.waitEvent("garbled", ReasonInvalidAnnotation, "vlanId 400 is out of range")
	if bs := w.branches(); len(bs) != 0 {
		t.Fatalf("branches left behind: %v", bs)
	}
}

func resourceOne() resource.Quantity { return resource.MustParse("1") }

// EC2 failing a branch call (an association refused once) gives the pod an
// event naming EC2's code, leaves no half-made branch, and the retry
// succeeds; a node whose type cannot trunk gets an Unsupported event and
// no trunk.
func TestKubeEC2Failures(t *testing.T) {
	w := newWorld(t)
	h := newHarness(t, w.ec2, fastConfig())
	h.addPolicy("db", map[string]string{"role": "db-client"}, sgDB)
	h.addNode("rc-fail", inst1, nil)
	h.addNode("rc-t3", inst5, nil)
	h.declareSGP("rc-fail")
	h.declareSGP("rc-t3")
	h.waitCapacity("rc-fail", 9)
	h.waitNodeEvents("rc-t3", ReasonUnsupported, 1)
	for _, tr := range w.trunks() {
		if tr.Attachment != nil && tr.Attachment.InstanceID == inst5 {
			t.Fatalf("a trunk on the t3.medium: %s", tr.ID)
		}
	}
	if err := w.env.Sim.SetFaults(vpcsim.Faults{Errors: []vpcsim.ErrorRule{{Action: "AssociateTrunkInterface", Code: "InternalError", Count: 4}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.createPod("retry", "rc-fail", map[string]string{"role": "db-client"}); err != nil {
		t.Fatal(err)
	}
	h.waitEvent("retry", ReasonBranchAllocationFailed, "InternalError")
	got := h.waitAnnotation("retry")
	waitFor(t, 30*time.Second, "only the annotated branch left", func() (bool, string) {
		ids := branchIDs(w.branches())
		return slices.Equal(ids, []string{got[0].ENIID}), fmt.Sprint(ids)
	})
}

// The amazon-vpc-cni ConfigMap's branch-eni-cooldown overrides the
// configured cool-down (here an hour): a value under the floor (EKS: 30 s;
// here 2 s to keep the test short) is read as the floor, announced on
// every node, and a released branch is deleted after it, not an hour. The
// controller's metrics count the trunk, branch, annotation, capacity and
// delete under EKS's names.
func TestKubeCooldownFromConfigMap(t *testing.T) {
	metricsBefore := readSeries(t)
	w := newWorld(t)
	cfg := fastConfig()
	cfg.Cooldown = time.Hour
	cfg.CooldownFloor = 2 * time.Second
	h := newHarness(t, w.ec2, cfg)
	h.addPolicy("db", map[string]string{"role": "db-client"}, sgDB)
	h.addSGPNode("rc-cool", inst1, 9)

	ctx := context.Background()
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ConfigMapNamespace, Name: ConfigMapName}, Data: map[string]string{CooldownKey: "1"}}
	if err := h.admin.Create(ctx, cm); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.admin.Delete(context.Background(), cm) })
	if msgs := h.waitNodeEvents("rc-cool", ReasonCooldownUpdated, 1); !strings.HasSuffix(msgs[0], "updated to 2s") {
		t.Fatalf("%s events %q, want the cool-down set to the 2s floor", ReasonCooldownUpdated, msgs)
	}

	if _, err := h.createPod("a", "rc-cool", map[string]string{"role": "db-client"}); err != nil {
		t.Fatal(err)
	}
	a := h.waitAnnotation("a")
	deleted := time.Now()
	h.deletePod("a")
	waitFor(t, 30*time.Second, "branch of pod a deleted after the ConfigMap's cool-down", func() (bool, string) {
		for _, br := range w.branches() {
			if br.ID == a[0].ENIID {
				return false, "still there"
			}
		}
		return true, ""
	})
	if d := time.Since(deleted); d < cfg.CooldownFloor {
		t.Fatalf("branch deleted %s after its pod, before the ConfigMap's %s cool-down", d, cfg.CooldownFloor)
	}
	checkSeriesGrew(t, metricsBefore)
}

// Every CNINode the controller makes carries EKS's finalizer; a CNINode
// deleted while its Node exists is made again (a new object, finalizer
// back); once the Node is gone the finalizer is removed, so the CNINode
// can go.
func TestKubeCNINodeFinalizer(t *testing.T) {
	w := newWorld(t)
	h := newHarness(t, w.ec2, fastConfig())
	ctx := context.Background()
	h.addNode("rc-fin", inst1, nil)
	var first k8s.CNINode
	waitFor(t, 30*time.Second, "CNINode rc-fin with the finalizer", func() (bool, string) {
		if err := h.admin.Get(ctx, client.ObjectKey{Name: "rc-fin"}, &first); err != nil {
			return false, err.Error()
		}
		return slices.Contains(first.Finalizers, CNINodeFinalizer), fmt.Sprint(first.Finalizers)
	})

	if err := h.admin.Delete(ctx, &first); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "CNINode rc-fin made again", func() (bool, string) {
		var cn k8s.CNINode
		if err := h.admin.Get(ctx, client.ObjectKey{Name: "rc-fin"}, &cn); err != nil {
			return false, err.Error()
		}
		ok := cn.UID != first.UID && cn.DeletionTimestamp == nil && slices.Contains(cn.Finalizers, CNINodeFinalizer)
		return ok, fmt.Sprintf("uid %s (first %s), deleting %v, finalizers %v", cn.UID, first.UID, cn.DeletionTimestamp, cn.Finalizers)
	})

	if err := h.admin.Delete(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "rc-fin"}}); err != nil {
		t.Fatal(err)
	}
	// No garbage collector runs beside this API server: delete the CNINode
	// as it would once its owner is gone.
	waitFor(t, 30*time.Second, "CNINode rc-fin released and gone", func() (bool, string) {
		var cn k8s.CNINode
		err := h.admin.Get(ctx, client.ObjectKey{Name: "rc-fin"}, &cn)
		if apierrors.IsNotFound(err) {
			return true, ""
		}
		if err != nil {
			return false, err.Error()
		}
		if cn.DeletionTimestamp == nil {
			if err := h.admin.Delete(ctx, &cn); err != nil && !apierrors.IsNotFound(err) {
				return false, err.Error()
			}
		}
		return false, fmt.Sprintf("still there, finalizers %v", cn.Finalizers)
	})
}

// TestKubeFailedPodLeavesNoNote: a pod that never got a branch (EC2
// refused its group) and is then deleted leaves nothing in the controller.
// The note that keeps its failure to one event per cause must go with it,
// or a CronJob under a broken policy grows the controller's memory by one
// note per run for as long as it runs.
func TestKubeFailedPodLeavesNoNote(t *testing.T) {
	w := newWorld(t)
	h := newHarness(t, w.ec2, fastConfig())
	h.addPolicy("ghost", map[string]string{"role": "ghost"}, sgUnknown)
	node := "rc-note-" + h.ns
	h.addSGPNode(node, inst1, 9)
	for _, name := range []string{"ghost-1", "ghost-2"} {
		if _, err := h.createPod(name, node, map[string]string{"role": "ghost"}); err != nil {
			t.Fatal(err)
		}
		h.waitEvent(name, ReasonBranchAllocationFailed, "InvalidGroup.NotFound")
		h.deletePod(name)
	}
	waitFor(t, 30*time.Second, "the failed pods' notes gone", func() (bool, string) {
		h.ctrl.warned.mu.Lock()
		defer h.ctrl.warned.mu.Unlock()
		h.ctrl.toldGroups.mu.Lock()
		defer h.ctrl.toldGroups.mu.Unlock()
		return len(h.ctrl.warned.m)+len(h.ctrl.toldGroups.m) == 0, fmt.Sprint(h.ctrl.warned.m, h.ctrl.toldGroups.m)
	})
}
