package ipamd

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/vpc-cni/vpc-cni/pkg/ipamd/config"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/simtest"
	"github.com/vpc-cni/vpc-cni/rpc"
)

const branchAnnotation = `[{"eniId":"eni-branch1","ifAddress":"02:00:00:aa:bb:01","privateIp":"10.0.0.77",` +
	`"ipv6Addr":"","vlanID":3,"subnetCidr":"10.0.0.0/20","subnetV6Cidr":""}]`

func TestParseBranchAnnotation(t *testing.T) {
	w, err := ParseBranchAnnotation(branchAnnotation, false)
	if err != nil || w.IP.String() != "10.0.0.77" || w.VlanID != 3 || w.Gateway.String() != "10.0.0.1" || w.MAC.String() != "02:00:00:aa:bb:01" {
		t.Errorf("parse: %+v %v", w, err)
	}
	for _, bad := range []struct{ raw, want string }{
		{`not json`, "not a JSON array"},
		{`[]`, "lists no branch ENI"},
		{`[{"eniId":"eni-x","ifAddress":"zz","privateIp":"10.0.0.1","vlanID":0,"subnetCidr":"10.0.0.0/20"}]`, "ifAddress"},
		{`[{"eniId":"eni-x","ifAddress":"02:00:00:aa:bb:01","privateIp":"nope","vlanID":3,"subnetCidr":"10.0.0.0/20"}]`, `address "nope"`},
		{`[{"eniId":"eni-x","ifAddress":"02:00:00:aa:bb:01","privateIp":"10.0.0.9","vlanID":0,"subnetCidr":"10.0.0.0/20"}]`, "vlanID 0"},
		{`[{"eniId":"eni-x","ifAddress":"02:00:00:aa:bb:01","privateIp":"10.0.0.9","vlanID":4095,"subnetCidr":"10.0.0.0/20"}]`, "vlanID 4095"},
		{`[{"eniId":"eni-x","ifAddress":"02:00:00:aa:bb:01","privateIp":"10.0.0.9","vlanID":153,"subnetCidr":"10.0.0.0/20"}]`, "route table 253"},
		{`[{"eniId":"eni-x","ifAddress":"02:00:00:aa:bb:01","privateIp":"10.0.0.9","vlanID":154,"subnetCidr":"10.0.0.0/20"}]`, "route table 254"},
		{`[{"eniId":"eni-x","ifAddress":"02:00:00:aa:bb:01","privateIp":"10.0.0.9","vlanID":155,"subnetCidr":"10.0.0.0/20"}]`, "route table 255"},
	} {
		if _, err := ParseBranchAnnotation(bad.raw, false); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("ParseBranchAnnotation(%s): %v, want %q", bad.raw, err, bad.want)
		}
	}
}

// A branch annotation whose VLAN id would make the branch's table the
// kernel's main table is refused at ipamd, naming the pod and the
// annotation, with no reply for the plugin to wire.
func TestBranchKernelTableVLANRefused(t *testing.T) {
	bad := strings.Replace(branchAnnotation, `"vlanID":3`, `"vlanID":154`, 1)
	k := &fakeKube{schedulable: true, maxPods: 29, pods: map[string]PodInfo{
		"default/main-table": {Found: true, UID: "u1", WantsBranchENI: true, BranchAnnotation: bad},
	}}
	h := newHarness(t, harnessOpts{scenario: withTrunk, kube: k, cfg: func(c *config.Config) { c.EnablePodENI = true }})
	h.settle()
	r, err := h.srv.AddNetwork(context.Background(), &rpc.AddNetworkRequest{NetworkName: "aws-cni", ContainerId: "c-main",
		IfName: "eth0", K8SPodNamespace: "default", K8SPodName: "main-table"})
	if status.Code(err) != codes.InvalidArgument || r != nil {
		t.Fatalf("ADD with VLAN id 154: reply %v, err %v; want InvalidArgument and no reply", r, err)
	}
	for _, want := range []string{"default/main-table", PodENIAnnotation, "route table 254"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
	// Its DEL succeeds with nothing to tear down: kubelet must not retry it
	// for ever and leave the pod terminating.
	d, err := h.srv.DelNetwork(context.Background(), &rpc.DelNetworkRequest{NetworkName: "aws-cni", ContainerId: "c-main",
		IfName: "eth0", K8SPodNamespace: "default", K8SPodName: "main-table"})
	if err != nil || !d.GetSuccess() || len(d.GetIpAllocationMetadata()) != 0 || d.GetPodVlanId() != 0 {
		t.Fatalf("DEL with VLAN id 154: reply %v, err %v; want success with nothing to tear down", d, err)
	}
}

// withTrunk adds a trunk ENI (as the VPC resource controller attaches it)
// at device 1 of the instance.
func withTrunk(sc *vpcsim.Scenario) {
	sc.NetworkInterfaces = append(sc.NetworkInterfaces, vpcsim.ENISpec{
		ID: "eni-00000000000007e0c", Subnet: simtest.NodeSubnetID, InterfaceType: "trunk",
		AttachTo: simtest.InstanceID, DeviceIndex: 1, DeleteOnTermination: true,
	})
}

func TestBranchENIPods(t *testing.T) {
	k := &fakeKube{schedulable: true, maxPods: 29, pods: map[string]PodInfo{
		"default/sgpp":    {Found: true, UID: "u1", WantsBranchENI: true, BranchAnnotation: branchAnnotation},
		"default/pending": {Found: true, UID: "u2", WantsBranchENI: true},
		"default/plain":   {Found: true, UID: "u3"},
	}}
	h := newHarness(t, harnessOpts{scenario: withTrunk, kube: k, cfg: func(c *config.Config) {
		c.EnablePodENI = true
		c.IPCooldown = 0
	}})
	ctx := context.Background()
	h.settle()
	// The trunk holds no pod address and takes an ENI slot: m5.large, one ENI
	// of secondary addresses plus room for one more.
	if got := h.simCounts(); got != (simCounts{2, 9, 0}) {
		t.Errorf("pool with a trunk: %+v", got)
	}
	if len(k.features) != 0 {
		t.Errorf("feature declared although a trunk exists: %v", k.features)
	}
	add := func(name string) (*rpc.AddNetworkReply, error) {
		return h.srv.AddNetwork(ctx, &rpc.AddNetworkRequest{NetworkName: "aws-cni", ContainerId: "c-" + name, IfName: "eth0",
			K8SPodNamespace: "default", K8SPodName: name})
	}
	r, err := add("sgpp")
	if err != nil {
		t.Fatal(err)
	}
	md := r.IpAllocationMetadata[0]
	if !r.Success || md.Ipv4Addr != "10.0.0.77" || md.DeviceNumber != -1 || r.PodVlanId != 3 || r.PodEniMac != "02:00:00:aa:bb:01" ||
		r.PodEniSubnetGw != "10.0.0.1" || r.ParentIfIndex != 11 {
		t.Errorf("branch reply: %v", r)
	}
	// No annotation within the ADD's deadline: an error naming it.
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	_, err = h.srv.AddNetwork(short, &rpc.AddNetworkRequest{NetworkName: "aws-cni", ContainerId: "c-pending", IfName: "eth0",
		K8SPodNamespace: "default", K8SPodName: "pending"})
	cancel()
	if status.Code(err) != codes.DeadlineExceeded || !strings.Contains(err.Error(), "vpc.amazonaws.com/pod-eni") || !strings.Contains(err.Error(), "branch ENI limit") {
		t.Errorf("branch pod without annotation: %v", err)
	}
	// The annotation arrives while the ADD waits: the ADD succeeds.
	k.mu.Lock()
	k.pods["default/late"] = PodInfo{Found: true, UID: "u4", WantsBranchENI: true}
	k.mu.Unlock()
	done := make(chan *rpc.AddNetworkReply, 1)
	go func() {
		r, err := add("late")
		if err != nil {
			t.Errorf("late annotation: %v", err)
		}
		done <- r
	}()
	time.AfterFunc(200*time.Millisecond, func() {
		k.mu.Lock()
		k.pods["default/late"] = PodInfo{Found: true, UID: "u4", WantsBranchENI: true, BranchAnnotation: branchAnnotation}
		k.mu.Unlock()
	})
	if r := <-done; r == nil || r.PodVlanId != 3 {
		t.Errorf("late annotation reply: %v", r)
	}
	// The annotation of the other family: named as such.
	if _, err := ParseBranchAnnotation(branchAnnotation, true); err == nil || !strings.Contains(err.Error(), "wrong family") {
		t.Errorf("IPv4 annotation on an IPv6 node: %v", err)
	}
	r, err = add("plain")
	if err != nil || r.PodVlanId != 0 || r.IpAllocationMetadata[0].DeviceNumber != 0 {
		t.Errorf("regular pod on an SGPP node: %v %v", r, err)
	}
	d, err := h.srv.DelNetwork(ctx, &rpc.DelNetworkRequest{NetworkName: "aws-cni", ContainerId: "c-sgpp", IfName: "eth0",
		K8SPodNamespace: "default", K8SPodName: "sgpp", K8SPodUid: "u1"})
	if err != nil || d.PodVlanId != 3 || d.IpAllocationMetadata[0].Ipv4Addr != "10.0.0.77" {
		t.Errorf("branch DEL: %v %v", d, err)
	}
	if _, err := h.srv.DelNetwork(ctx, &rpc.DelNetworkRequest{NetworkName: "aws-cni", ContainerId: "c-sgpp", IfName: "eth0",
		K8SPodNamespace: "default", K8SPodName: "sgpp", K8SPodUid: "other"}); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("branch DEL with another UID: %v", err)
	}
	d, err = h.srv.DelNetwork(ctx, &rpc.DelNetworkRequest{NetworkName: "aws-cni", ContainerId: "c-gone", IfName: "eth0",
		K8SPodNamespace: "default", K8SPodName: "gone"})
	if err != nil || !d.Success {
		t.Errorf("DEL of a pod that is gone: %v %v", d, err)
	}
	h.checkConsistent()
}

func TestSGPPDeclaresFeatureWithoutTrunk(t *testing.T) {
	k := &fakeKube{schedulable: true, maxPods: 29}
	h := kubeHarness(t, k, func(c *config.Config) { c.EnablePodENI = true })
	h.settle()
	if _, ok := k.features["SecurityGroupsForPods"]; !ok {
		t.Errorf("features: %v", k.features)
	}
	// One ENI slot stays free for the trunk: m5.large, WARM_ENI_TARGET=1.
	pods := map[int]bool{}
	k.regularPods(12)
	h.setPods(pods, 12)
	if got := h.simCounts(); got.ENIs != 2 {
		t.Errorf("ENIs with a slot reserved for the trunk: %+v", got)
	}
	if starved, _ := h.state(0); !strings.Contains(starved, "reserved for the trunk") {
		t.Errorf("reason %q", starved)
	}
}

func TestUnmanagedENIIsLeftAlone(t *testing.T) {
	h := newHarness(t, harnessOpts{noInit: true, scenario: func(sc *vpcsim.Scenario) {
		sc.NetworkInterfaces = append(sc.NetworkInterfaces, vpcsim.ENISpec{
			ID: "eni-000000000000f0e19", Subnet: simtest.NodeSubnetID, AttachTo: simtest.InstanceID, DeviceIndex: 1,
			SecondaryIPCount: 3, Tags: map[string]string{"node.k8s.amazonaws.com/no_manage": "true"},
		})
	}, cfg: func(c *config.Config) { c.WarmIPTarget = 20 }})
	if err := h.n.Init(context.Background()); err != nil {
		t.Fatal(err)
	}
	h.n.PoolCycle(context.Background())
	inst, err := h.env.Sim.Instance(simtest.InstanceID)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range inst.ENIs {
		if e.ID == "eni-000000000000f0e19" && len(e.SecondaryIPs) != 3 {
			t.Errorf("unmanaged ENI changed: %+v", e)
		}
	}
	if _, ok := h.eni(0, "eni-000000000000f0e19"); ok {
		t.Error("unmanaged ENI in the datastore")
	}
	// m5.large: 3 ENIs, one unmanaged: 2 managed ENIs hold 18 addresses.
	if got := h.simCounts(); got.ENIs != 3 || got.IPs != 3+18 {
		t.Errorf("EC2: %+v", got)
	}
	if starved, _ := h.state(0); !strings.Contains(starved, "(1 unmanaged)") {
		t.Errorf("reason %q", starved)
	}
	h.checkConsistent()
}

// TestSGPPOnNonTrunkingType: ENABLE_POD_ENI on an instance type that
// cannot trunk ENIs (t3.medium) reserves no ENI slot for a trunk, declares
// no SecurityGroupsForPods feature, and says so once, not every cycle.
func TestSGPPOnNonTrunkingType(t *testing.T) {
	k := &fakeKube{schedulable: true, maxPods: 110}
	var logs bytes.Buffer
	h := newHarness(t, harnessOpts{instanceType: "t3.medium", kube: k, cfg: func(c *config.Config) {
		c.EnablePodENI, c.IPCooldown = true, 0
	}, log: slog.New(slog.NewTextHandler(&logs, nil))})
	// t3.medium: 3 ENIs of 5 secondary addresses; 12 pods need all three.
	pods := map[int]bool{}
	k.regularPods(12)
	h.setPods(pods, 12)
	for range 5 {
		h.n.PoolCycle(context.Background())
	}
	if got := h.simCounts(); got.ENIs != 3 {
		t.Errorf("ENIs: %+v, want all 3 (no slot reserved for a trunk)", got)
	}
	k.mu.Lock()
	_, declared := k.features["SecurityGroupsForPods"]
	k.mu.Unlock()
	if declared {
		t.Error("SecurityGroupsForPods declared on a type that cannot trunk ENIs")
	}
	if n := strings.Count(logs.String(), "cannot trunk ENIs"); n != 1 {
		t.Errorf("the non-trunking warning was logged %d times, want once:\n%s", n, logs.String())
	}
}
