package sgp

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/vpc-cni/vpc-cni/pkg/localvpc"
	"github.com/vpc-cni/vpc-cni/pkg/resourcecontroller"
	"github.com/vpc-cni/vpc-cni/pkg/testutil/kubefwd"
)

// A pod that asks for a branch ENI but carries a hostile
// vpc.amazonaws.com/pod-eni annotation (not JSON; a VLAN id outside
// 1-4094; an address that is not one) fails its ADD with an error naming
// the annotation and what is wrong with it, and leaves nothing in the
// node: no link, rule, route or neighbour, nothing in ipamd's checkpoint.
// The controller leaves a pod that already has the annotation alone, so
// the values reach the node as written.
func TestPrivilegedSGPBadAnnotation(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	c := newCluster(t, ctx, "sgp.yaml")
	n := c.v.Nodes()[0]
	c.register(ctx, n)
	if err := c.v.StartAgent(ctx, n, c.agentEnv(n, "VPC_CNI_TEST_FAST_INTERVALS=true")); err != nil {
		t.Fatal(err)
	}
	if err := c.v.WaitReady(ctx, n, nil); err != nil {
		t.Fatalf("%v\nipamd log tail:\n%s", err, tail(ipamdLog(n), 20))
	}
	trunk := c.waitTrunk(ctx, n)
	// ipamd wires the trunk like any ENI of the node once it learns it
	// from EC2 (its route table is the device index + 1): wait for that so
	// that the node is at rest before the hostile ADDs. At rest also means
	// the trunk link's IPv6 duplicate address detection has finished: the
	// kernel adds the link-local address's local route only then, which
	// would otherwise show up as a change made by the ADD.
	table := fmt.Sprint(trunk.Attachment.DeviceIndex + 1)
	path := []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	err := kubefwd.Eventually(ctx, 30*time.Second, func() error {
		out, _, err := n.Exec(ctx, path, nil, "ip", "route", "show", "table", table)
		if err != nil || !strings.HasPrefix(string(out), "default ") {
			return fmt.Errorf("no default route in table %s of %s: ipamd has not wired trunk %s", table, n.Name, trunk.ID)
		}
		out, _, err = n.Exec(ctx, path, nil, "ip", "-6", "addr", "show", "tentative")
		if err != nil || len(strings.TrimSpace(string(out))) > 0 {
			return fmt.Errorf("IPv6 duplicate address detection still running on %s: %s (%v)", n.Name, out, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	branchesBefore := branchIDs(c)

	for _, bad := range []struct{ name, raw, want string }{
		{"not-json", `{eni: yes}`, "not a JSON array"},
		{"vlan-5000", `[{"eniId":"eni-00000000000000bad","ifAddress":"02:00:00:00:0b:ad","privateIp":"10.0.0.99","vlanId":5000,"subnetCidr":"10.0.0.0/20"}]`, "5000"},
		{"bad-address", `[{"eniId":"eni-00000000000000bad","ifAddress":"02:00:00:00:0b:ad","privateIp":"10.0.0.999","vlanId":7,"subnetCidr":"10.0.0.0/20"}]`, "10.0.0.999"},
	} {
		// Nobody may create a pod with the annotation: the webhook refuses it.
		p := badPod(n, bad.name, map[string]string{resourcecontroller.PodENIAnnotation: bad.raw})
		if err := c.admin.Create(ctx, p); err == nil || !strings.Contains(err.Error(), resourcecontroller.PodENIAnnotation) {
			t.Fatalf("create pod %s with the annotation: %v; want the webhook's refusal naming it", bad.name, err)
		}
		// Written later (by someone else) and bound to the node afterwards,
		// so that the controller never saw it bound without one.
		p = badPod(nil, bad.name, nil)
		if err := c.admin.Create(ctx, p); err != nil {
			t.Fatalf("create pod %s: %v", bad.name, err)
		}
		orig := p.DeepCopy()
		p.Annotations = map[string]string{resourcecontroller.PodENIAnnotation: bad.raw}
		if err := c.admin.Patch(ctx, p, client.MergeFrom(orig)); err != nil {
			t.Fatalf("annotate pod %s: %v", bad.name, err)
		}
		binding := &corev1.Binding{ObjectMeta: metav1.ObjectMeta{Name: bad.name, Namespace: podNS}, Target: corev1.ObjectReference{Kind: "Node", Name: n.Name}}
		if err := c.admin.SubResource("binding").Create(ctx, p, binding); err != nil {
			t.Fatalf("bind pod %s to %s: %v", bad.name, n.Name, err)
		}
		before := wiring(t, ctx, n)
		_, err := c.v.AddPod(ctx, n, podNS, bad.name)
		switch {
		case err == nil:
			t.Errorf("ADD %s with annotation %s succeeded", bad.name, bad.raw)
		case !strings.Contains(err.Error(), resourcecontroller.PodENIAnnotation) || !strings.Contains(err.Error(), bad.want):
			t.Errorf("ADD %s: %v; want an error naming %s and %q", bad.name, err, resourcecontroller.PodENIAnnotation, bad.want)
		default:
			t.Logf("ADD %s: %v", bad.name, err)
		}
		if after := wiring(t, ctx, n); !slices.Equal(before, after) {
			t.Errorf("ADD %s changed %s:\n%s\n→\n%s", bad.name, n.Name, strings.Join(before, "\n"), strings.Join(after, "\n"))
		}
		if cpt, err := n.Checkpoint(); (err != nil && !errors.Is(err, fs.ErrNotExist)) || len(cpt) != 0 {
			t.Errorf("after the failed ADD of %s ipamd holds %v (%v)", bad.name, cpt, err)
		}
	}
	if after := branchIDs(c); !slices.Equal(branchesBefore, after) {
		t.Errorf("branch ENIs changed from %v to %v for pods the controller must leave alone (trunk %s)", branchesBefore, after, trunk.ID)
	}
}

// badPod is a pod that asks for a branch ENI, bound to n unless n is nil.
func badPod(n *localvpc.Node, name string, annotations map[string]string) *corev1.Pod {
	one := resource.MustParse("1")
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: podNS, Annotations: annotations},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "none",
			Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{resourcecontroller.PodENIResource: one}, Limits: corev1.ResourceList{resourcecontroller.PodENIResource: one}}}}},
	}
	if n != nil {
		p.Spec.NodeName = n.Name
	}
	return p
}

// wiring is n's links, rules and routes (not neighbours, which come and go
// with any traffic).
func wiring(t *testing.T, ctx context.Context, n *localvpc.Node) []string {
	out := nodeState(t, ctx, n).links
	out = append(out, ipLines(t, ctx, n, "rule", "show")...)
	return append(out, ipLines(t, ctx, n, "route", "show", "table", "all")...)
}

// branchIDs lists the branch ENIs vpcsim holds.
func branchIDs(c *cluster) []string {
	var out []string
	for _, e := range c.v.Sim.NetworkInterfaces() {
		if e.InterfaceType == "branch" {
			out = append(out, e.ID)
		}
	}
	slices.Sort(out)
	return out
}
