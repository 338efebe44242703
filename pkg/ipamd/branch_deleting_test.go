package ipamd

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc/metadata"

	"github.com/vpc-cni/vpc-cni/pkg/hostcontract"
	"github.com/vpc-cni/vpc-cni/pkg/ipamd/config"
	"github.com/vpc-cni/vpc-cni/rpc"
)

// TestADDOfAPodDeletedWhileItStarts: with ENABLE_POD_ENI, a pod deleted
// while its sandbox starts shows in the cache with a deletionTimestamp
// and the UID the plugin sends: it is the ADD's own pod, not an earlier
// one of the name. A regular pod gets its pool address and a branch pod
// its VLAN at once, as upstream answers; before, both ADDs waited for a
// pod that would never stop being deleted and failed at their deadline
// (the pod's termination waiting on them). Without a UID (upstream's
// plugin), or for a static pod's mirror, a pod being deleted is still
// taken to be an earlier one.
func TestADDOfAPodDeletedWhileItStarts(t *testing.T) {
	k := &fakeKube{schedulable: true, maxPods: 29, pods: map[string]PodInfo{
		"default/job-0": {Found: true, UID: "u-job", Deleting: true},
		"default/sg-0":  {Found: true, UID: "u-sg", Deleting: true, WantsBranchENI: true, BranchAnnotation: branchAnnotation},
	}}
	h := newHarness(t, harnessOpts{scenario: withTrunk, kube: k, cfg: func(c *config.Config) { c.EnablePodENI = true }})
	h.settle()
	add := func(name, uid string) (*rpc.AddNetworkReply, error) {
		ctx := context.Background()
		if uid != "" {
			ctx = metadata.NewIncomingContext(ctx, metadata.Pairs(hostcontract.PodUIDMetadata, uid))
		}
		// A bound, not a timing: the answer is due at once or never.
		ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		return h.srv.AddNetwork(ctx, &rpc.AddNetworkRequest{NetworkName: "aws-cni", ContainerId: "sandbox-" + name, IfName: "eth0",
			K8SPodNamespace: "default", K8SPodName: name})
	}
	if r, err := add("job-0", "u-job"); err != nil || len(r.IpAllocationMetadata) != 1 || r.IpAllocationMetadata[0].Ipv4Addr == "" || r.PodVlanId != 0 {
		t.Errorf("ADD of a regular pod deleted while it starts: reply %v, err %v; want a pool address", r, err)
	}
	if r, err := add("sg-0", "u-sg"); err != nil || r.PodVlanId != 3 {
		t.Errorf("ADD of a branch pod deleted while it starts: reply %v, err %v; want its VLAN 3", r, err)
	}
	if r, err := add("sg-0", ""); err == nil {
		t.Errorf("ADD without a UID while the cache shows a pod of the name being deleted: reply %v; want no wiring", r)
	}
	// A static pod re-added keeps its UID: a mirror being deleted may be
	// an earlier instance's, whose branch ENI is about to go.
	k.mu.Lock()
	k.pods["default/static-0"] = PodInfo{Found: true, UID: "mirror-1", MirrorOf: "u-static", Deleting: true,
		WantsBranchENI: true, BranchAnnotation: branchAnnotation}
	k.mu.Unlock()
	if r, err := add("static-0", "u-static"); err == nil {
		t.Errorf("ADD of a static pod while the cache shows a mirror of its UID being deleted: reply %v; want no wiring", r)
	}
}
