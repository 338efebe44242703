package ipamd

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/vpc-cni/vpc-cni/pkg/ipamd/config"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/simtest"
	"github.com/vpc-cni/vpc-cni/rpc"
)

// fakeKube is the node as ipamd's Kubernetes interface shows it (the real
// client is tested against a kube-apiserver in its own package).
type fakeKube struct {
	mu          sync.Mutex
	schedulable bool
	maxPods     int
	eniConfig   ENIConfig
	eniErr      error
	events      []string
	pods        map[string]PodInfo // "ns/name"
	live        map[string]PodInfo // "ns/name": the API server's, where the cache (pods) lags
	features    map[string]string
	podIPs      map[string]string // "ns/name": the pod's vpc.amazonaws.com/pod-ips annotation
}

func (f *fakeKube) NodeSchedulable(context.Context) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.schedulable, nil
}
func (f *fakeKube) MaxPods(context.Context) (int, error) { return f.maxPods, nil }
func (f *fakeKube) ENIConfig(context.Context) (ENIConfig, error) {
	return f.eniConfig, f.eniErr
}
func (f *fakeKube) Eventf(_ context.Context, typ, reason, format string, _ ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.events = append(f.events, typ+" "+reason)
}

func (f *fakeKube) Pod(_ context.Context, ns, name string) (PodInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.pods[ns+"/"+name], nil
}

// PodLive is the API server's view: live when the test set one (the
// cache, pods, then lags), else the cache's.
func (f *fakeKube) PodLive(_ context.Context, ns, name string) (PodInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if p, ok := f.live[ns+"/"+name]; ok {
		return p, nil
	}
	return f.pods[ns+"/"+name], nil
}

// regularPods makes the harness's pods 0..n-1 (setPods) known as pods
// that want no branch ENI.
func (f *fakeKube) regularPods(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.pods == nil {
		f.pods = map[string]PodInfo{}
	}
	for i := range n {
		f.pods[fmt.Sprint("default/pod-", i)] = PodInfo{Found: true}
	}
}

func (f *fakeKube) AnnotatePodIP(_ context.Context, ns, name, ip string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.podIPs == nil {
		f.podIPs = map[string]string{}
	}
	f.podIPs[ns+"/"+name] = ip
	return nil
}

// ClearPodIP removes the annotation only while it still names ip, as the
// real client's conditional patch does.
func (f *fakeKube) ClearPodIP(_ context.Context, ns, name, ip string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.podIPs[ns+"/"+name] == ip {
		delete(f.podIPs, ns+"/"+name)
	}
	return nil
}

// podIP is the pod's vpc.amazonaws.com/pod-ips annotation ("" when unset).
func (f *fakeKube) podIP(ns, name string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.podIPs[ns+"/"+name]
}

func (f *fakeKube) DeclareFeature(_ context.Context, name, value string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.features == nil {
		f.features = map[string]string{}
	}
	f.features[name] = value
	return nil
}

func kubeHarness(t *testing.T, k *fakeKube, cfg func(*config.Config)) *harness {
	return newHarness(t, harnessOpts{cfg: cfg, kube: k})
}

func TestCustomNetworkingUsesENIConfig(t *testing.T) {
	k := &fakeKube{schedulable: true, maxPods: 110,
		eniConfig: ENIConfig{Name: "pods-a", Subnet: simtest.CustomSubnetAID, SecurityGroups: []string{simtest.SecurityGroup2ID}}}
	h := kubeHarness(t, k, func(c *config.Config) { c.CustomNetworking = true; c.WarmIPTarget = 3 })
	h.n.PoolCycle(context.Background())
	inst, err := h.env.Sim.Instance(simtest.InstanceID)
	if err != nil {
		t.Fatal(err)
	}
	if len(inst.ENIs) != 2 {
		t.Fatalf("ENIs: %+v", inst.ENIs)
	}
	if n := len(inst.ENIs[0].SecondaryIPs); n != 0 {
		t.Errorf("primary ENI got %d addresses under custom networking", n)
	}
	e := inst.ENIs[1]
	if e.SubnetID != simtest.CustomSubnetAID || !slices.Equal(e.Groups, []string{simtest.SecurityGroup2ID}) || len(e.SecondaryIPs) != 3 {
		t.Errorf("custom-networking ENI: subnet %s groups %v addresses %d", e.SubnetID, e.Groups, len(e.SecondaryIPs))
	}
	if mp := h.n.Introspection().Pool().Targets.MaxPods; mp != 110 {
		t.Errorf("max pods %d in /v1/pool, want the node's capacity 110", mp)
	}
	h.checkConsistent()
}

func TestCustomNetworkingMissingENIConfigNamesIt(t *testing.T) {
	k := &fakeKube{schedulable: true, maxPods: 110, eniErr: errors.New(`ENIConfig "pods-z" of node "n1" not found`)}
	h := kubeHarness(t, k, func(c *config.Config) { c.CustomNetworking = true; c.WarmIPTarget = 3 })
	h.n.PoolCycle(context.Background())
	_, err := h.state(0)
	if err == nil || !strings.Contains(err.Error(), "pods-z") {
		t.Errorf("recorded cause %v, want the missing ENIConfig named", err)
	}
	if got := h.simCounts(); got != (simCounts{1, 0, 0}) {
		t.Errorf("EC2 after a missing ENIConfig: %+v", got)
	}
}

func TestUnschedulableNodeNeitherAttachesNorFrees(t *testing.T) {
	k := &fakeKube{schedulable: false, maxPods: 29}
	h := kubeHarness(t, k, nil)
	before := h.calls()
	h.n.PoolCycle(context.Background())
	if d := callDelta(before, h.calls()); len(d) != 0 {
		t.Errorf("EC2 calls on an unschedulable node: %v", d)
	}
	starved, _ := h.state(0)
	if !strings.Contains(starved, "unschedulable") {
		t.Errorf("reason %q", starved)
	}
	k.mu.Lock()
	k.schedulable = true
	k.mu.Unlock()
	h.n.PoolCycle(context.Background())
	if got := h.simCounts(); got != (simCounts{1, 9, 0}) {
		t.Errorf("after the taint is gone: %+v", got)
	}
}

func TestMissingIAMPermissionRecordsEvent(t *testing.T) {
	k := &fakeKube{schedulable: true, maxPods: 29}
	h := kubeHarness(t, k, nil)
	if err := h.env.Sim.SetFaults(vpcsimFaults("AssignPrivateIpAddresses", "UnauthorizedOperation")); err != nil {
		t.Fatal(err)
	}
	h.n.PoolCycle(context.Background())
	k.mu.Lock()
	defer k.mu.Unlock()
	if !slices.Contains(k.events, "Warning MissingIAMPermissions") {
		t.Errorf("events: %v", k.events)
	}
}

func TestAnnotatePodIP(t *testing.T) {
	k := &fakeKube{schedulable: true, maxPods: 29}
	h := kubeHarness(t, k, func(c *config.Config) { c.AnnotatePodIP = true })
	ctx := context.Background()
	h.n.PoolCycle(ctx)
	r, err := h.srv.AddNetwork(ctx, &rpc.AddNetworkRequest{NetworkName: "aws-cni", ContainerId: "c", IfName: "eth0", K8SPodNamespace: "ns", K8SPodName: "p"})
	if err != nil {
		t.Fatal(err)
	}
	ip := r.IpAllocationMetadata[0].Ipv4Addr
	if got := k.podIP("ns", "p"); got != ip {
		t.Errorf("pod-ips after ADD %q, want %q", got, ip)
	}
	if _, err := h.srv.DelNetwork(ctx, &rpc.DelNetworkRequest{NetworkName: "aws-cni", ContainerId: "c", IfName: "eth0", K8SPodNamespace: "ns", K8SPodName: "p"}); err != nil {
		t.Fatal(err)
	}
	if got := k.podIP("ns", "p"); got != "" {
		t.Errorf("pod-ips after DEL %q, want it cleared", got)
	}
}
