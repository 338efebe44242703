package ipamd

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/vpc-cni/vpc-cni/pkg/ipamd/config"
	"github.com/vpc-cni/vpc-cni/rpc"
)

// The annotation of the pod that replaces a deleted one of the same name
// (a StatefulSet): another branch ENI, VLAN and address.
const branchAnnotationNew = `[{"eniId":"eni-branch2","ifAddress":"02:00:00:aa:bb:02","privateIp":"10.0.0.78",` +
	`"ipv6Addr":"","vlanID":4,"subnetCidr":"10.0.0.0/20","subnetV6Cidr":""}]`

// TestBranchAddSkipsDeletingPod: the node's pod cache still holds the
// earlier pod of that name, being deleted, with its branch annotation. The
// ADD (which carries no pod UID) must not wire the new sandbox to that
// branch, which the resource controller deletes once the pod is gone: it
// waits for the new pod and its own annotation, and names the stale pod
// when the deadline passes first.
func TestBranchAddSkipsDeletingPod(t *testing.T) {
	old := PodInfo{Found: true, UID: "old", WantsBranchENI: true, BranchAnnotation: branchAnnotation, Deleting: true}
	k := &fakeKube{schedulable: true, maxPods: 29, pods: map[string]PodInfo{"default/web-0": old}}
	h := newHarness(t, harnessOpts{scenario: withTrunk, kube: k, cfg: func(c *config.Config) {
		c.EnablePodENI = true
		c.IPCooldown = 0
	}})
	h.settle()
	add := func(ctx context.Context) (*rpc.AddNetworkReply, error) {
		return h.srv.AddNetwork(ctx, &rpc.AddNetworkRequest{NetworkName: "aws-cni", ContainerId: "c-web-0", IfName: "eth0",
			K8SPodNamespace: "default", K8SPodName: "web-0"})
	}

	short, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	r, err := add(short)
	cancel()
	if err == nil {
		t.Fatalf("ADD wired the new sandbox to the deleting pod's branch (VLAN %d, %s)", r.PodVlanId, r.PodEniMac)
	}
	if status.Code(err) != codes.DeadlineExceeded || !strings.Contains(err.Error(), "being deleted") {
		t.Errorf("ADD while only the deleting pod is cached: %v", err)
	}

	// The new pod reaches the cache, first without its annotation, then
	// with it: the waiting ADD answers with the new branch.
	done := make(chan *rpc.AddNetworkReply, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		r, err := add(ctx)
		if err != nil {
			t.Errorf("ADD once the new pod is annotated: %v", err)
		}
		done <- r
	}()
	time.AfterFunc(200*time.Millisecond, func() {
		k.mu.Lock()
		k.pods["default/web-0"] = PodInfo{Found: true, UID: "new", WantsBranchENI: true}
		k.mu.Unlock()
		time.AfterFunc(200*time.Millisecond, func() {
			k.mu.Lock()
			k.pods["default/web-0"] = PodInfo{Found: true, UID: "new", WantsBranchENI: true, BranchAnnotation: branchAnnotationNew}
			k.mu.Unlock()
		})
	})
	if r := <-done; r == nil || r.PodVlanId != 4 || r.PodEniMac != "02:00:00:aa:bb:02" || r.IpAllocationMetadata[0].Ipv4Addr != "10.0.0.78" {
		t.Errorf("ADD reply for the new pod: %v", r)
	}
	h.checkConsistent()
}
