package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/localvpc"
	"github.com/vpc-cni/vpc-cni/pkg/testutil"
	"github.com/vpc-cni/vpc-cni/pkg/testutil/agentbin"
	"github.com/vpc-cni/vpc-cni/pkg/testutil/vpctest"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/dataplane"
)

var internetV6 = dataplane.DefaultInternetV6Addrs[0]

// newIPv6Cluster is newCluster for an IPv6 cluster: the two-node scenario
// with IPv6 subnets and node addresses, IPv6 routed in the data plane, and
// the agents in IPv6 mode (prefix delegation, egress-cni for IPv4).
func newIPv6Cluster(t *testing.T, env ...string) *cluster {
	t.Helper()
	v := startIPv6VPC(t, true)
	c := &cluster{t: t, v: v, env: append(append([]string(nil), localvpc.IPv6AgentEnv...), env...)}
	if err := v.StartAgents(c.ctx(60*time.Second), c.env, nil); err != nil {
		t.Fatalf("start agents: %v", err)
	}
	nodes := v.Nodes()
	c.n1, c.n2 = nodes[0], nodes[1]
	return c
}

// startIPv6VPC starts the two-node scenario with IPv6 subnets and node
// addresses (IPv6Scenario) and IPv6 routed in the data plane; without
// v6Subnets the VPC has no IPv6 at all.
func startIPv6VPC(t *testing.T, v6Subnets bool) *localvpc.VPC {
	t.Helper()
	testutil.Privileged(t)
	if _, err := os.Stat(filepath.Join(localvpc.DefaultRefPluginDir, "portmap")); err != nil {
		t.Skipf("reference CNI plugins missing (%v): install containernetworking-plugins (make deps)", err)
	}
	sc, err := vpcsim.LoadScenario(filepath.Join(agentbin.RepoRoot(), "misc", "scenarios", "two-node.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if v6Subnets {
		if sc, err = localvpc.IPv6Scenario(sc); err != nil {
			t.Fatal(err)
		}
	} else {
		sc.VPCs[0].IPv6CIDR = "" // no IPv6 anywhere: subnets derive none
	}
	agentbin.Dir(t) // a cold build must not eat the start-up deadline
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	return vpctest.StartConfig(t, ctx, localvpc.Config{Scenario: sc, IPv6: v6Subnets}, "vpccni-e2e-logs")
}

// expectOnPrefix asserts each pod has an IPv6 address of a /80 EC2
// delegated to its node's primary ENI.
func (c *cluster) expectOnPrefix(ps ...*localvpc.Pod) {
	c.t.Helper()
	for _, p := range ps {
		if !p.IP.Is6() {
			c.t.Errorf("%s has %s, want an IPv6 address", p.Name, p.IP)
			continue
		}
		found := false
		for _, e := range c.v.Sim.NetworkInterfaces() {
			for _, pre := range e.IPv6Prefixes {
				if pre.Contains(p.IP) && pre.Bits() == 80 && e.Attachment != nil && e.Attachment.InstanceID == p.Node.ID {
					found = true
				}
			}
		}
		if !found {
			c.t.Errorf("%s's %s is in no /80 of %s's ENIs", p.Name, p.IP, p.Node.Name)
		}
	}
}

// assertIPv6Routed checks that every IPv6 prefix EC2 holds for an ENI is
// routed by the VPC to that ENI, and nothing else of IPv6 is.
func (c *cluster) assertIPv6Routed() {
	c.t.Helper()
	for _, e := range c.v.Sim.NetworkInterfaces() {
		want := map[netip.Prefix]bool{}
		for _, p := range e.IPv6Prefixes {
			want[p] = true
		}
		for _, a := range e.IPv6 {
			want[netip.PrefixFrom(a, 128)] = true
		}
		got := map[netip.Prefix]bool{}
		for _, p := range c.v.DP.RoutedAddresses(e.ID) {
			if p.Addr().Is6() {
				got[p] = true
			}
		}
		if fmt.Sprint(want) != fmt.Sprint(got) {
			c.t.Errorf("ENI %s: EC2 holds IPv6 %v, the VPC routes %v", e.ID, want, got)
		}
	}
}

// assertNoEgressLeft checks that no node holds an egress address.
func (c *cluster) assertNoEgressLeft() {
	c.t.Helper()
	for _, n := range []*localvpc.Node{c.n1, c.n2} {
		es, _ := os.ReadDir(n.HostPath("/run/cni/v6pd/egress-v4-ipam/aws-cni"))
		for _, e := range es {
			if e.Name() != "lock" && !strings.HasPrefix(e.Name(), "last_reserved_ip") {
				c.t.Errorf("%s still holds egress address %s", n.Name, e.Name())
			}
		}
	}
}

// IPv6 pods talk to each other on one node and across nodes, to the VPC
// and to the IPv6 internet with their own addresses, and to the IPv4
// internet through egress-cni as their node (its public IP, after the
// internet gateway's NAT of the node's primary address).
func TestE2EIPv6TrafficMatrix(t *testing.T) {
	t.Parallel()
	c := newIPv6Cluster(t, "WARM_PREFIX_TARGET=1")
	all := append(c.pods(c.n1, "a", 2), c.pods(c.n2, "b", 2)...)
	c.expectOnPrefix(all...)
	c.assertIPv6Routed()
	c.serve(all...)
	for _, from := range all {
		for _, to := range all {
			if from != to {
				c.expectSeen(from, to.IP, from.IP)
			}
		}
		c.expectSeen(from, c.v.EchoAddrV6, from.IP)
		c.expectSeen(from, internetV6, from.IP)
		c.expectSeen(from, internet, from.Node.PublicIP)
	}
	c.delAll(all)
	c.assertCheckpoint(c.n1, nil)
	c.assertCheckpoint(c.n2, nil)
	c.assertNoEgressLeft()
	c.assertIPv6Routed()
	c.assertNoLeaks()
}

// ipamd is SIGKILLed in the middle of a burst of IPv6 pod ADDs and started
// again: every pod whose ADD succeeded has a /128 no other pod has, held
// by ipamd and routed by the VPC, and an egress address of its own; failed
// ADDs left nothing behind and their retries succeed.
func TestE2EIPv6IpamdKilledDuringPodBurst(t *testing.T) {
	t.Parallel()
	c := newIPv6Cluster(t, "WARM_PREFIX_TARGET=1")
	const burst = 12
	var (
		mu     sync.Mutex
		ok     []*localvpc.Pod
		failed []string
		wg     sync.WaitGroup
	)
	for i := range burst {
		wg.Go(func() {
			name := fmt.Sprintf("burst6-%d", i)
			ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
			defer cancel()
			p, err := c.v.AddPod(ctx, c.n1, "default", name)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failed = append(failed, name)
				return
			}
			ok = append(ok, p)
		})
		time.Sleep(150 * time.Millisecond) // a burst, not a single instant
		if i == burst/2 {
			if err := c.v.StopAgent(c.n1, syscall.SIGKILL, time.Second); err != nil {
				t.Fatal(err)
			}
			if err := c.v.StartAgent(context.Background(), c.n1, c.env); err != nil {
				t.Fatal(err)
			}
		}
	}
	wg.Wait()
	if err := c.v.WaitReady(c.ctx(30*time.Second), c.n1, nil); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d ADDs succeeded, %d failed around the kill", len(ok), len(failed))
	for _, name := range failed {
		p, err := c.v.AddPod(c.ctx(40*time.Second), c.n1, "default", name+"-retry")
		if err != nil {
			t.Errorf("retry of %s after the restart: %v", name, err)
			continue
		}
		ok = append(ok, p)
	}
	seen := map[netip.Addr]string{}
	for _, p := range ok {
		if other, dup := seen[p.IP]; dup {
			t.Errorf("address %s given to both %s and %s", p.IP, other, p.Name)
		}
		seen[p.IP] = p.Name
	}
	c.expectOnPrefix(ok...)
	c.assertIPv6Routed()
	c.assertCheckpoint(c.n1, ok)
	es, _ := os.ReadDir(c.n1.HostPath("/run/cni/v6pd/egress-v4-ipam/aws-cni"))
	if held := len(es) - 2; held != len(ok) { // lock, last_reserved_ip.0
		t.Errorf("%d egress addresses held for %d pods", held, len(ok))
	}
	c.serve(ok...)
	for _, p := range ok {
		c.expectSeen(p, c.v.EchoAddrV6, p.IP)
		c.expectSeen(p, internet, c.n1.PublicIP)
	}
	if left, _ := dataplane.ListNamespaces(dataplane.RunPrefix(c.v.RunID) + "pod-"); len(left) != len(ok) {
		t.Errorf("%d pod namespaces exist for %d pods: failed ADDs left some behind", len(left), len(ok))
	}
	c.delAll(ok)
	c.assertCheckpoint(c.n1, nil)
	c.assertNoEgressLeft()
	c.assertNoLeaks()
}

// Bad input on an IPv6 cluster gives a clear error naming the cause and
// wires nothing. ENABLE_IPv6 without prefix delegation: ipamd refuses to
// start, so the node never becomes ready.
func TestE2EIPv6WithoutPrefixDelegation(t *testing.T) {
	t.Parallel()
	v := startIPv6VPC(t, true)
	n := v.Nodes()[0]
	env := append(append([]string(nil), localvpc.IPv6AgentEnv...), "ENABLE_PREFIX_DELEGATION=false")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := v.StartAgent(ctx, n, env); err != nil {
		t.Fatal(err)
	}
	err := v.WaitReady(ctx, n, nil)
	if err == nil {
		t.Fatal("node ready with ENABLE_IPv6 and prefix delegation off")
	}
	agent, _ := os.ReadFile(filepath.Join(n.Dir, "agent.log"))
	ipamd, _ := os.ReadFile(n.HostPath(localvpc.NodeLogDir + "/ipamd.log"))
	if want := "requires ENABLE_PREFIX_DELEGATION=true"; !strings.Contains(string(agent)+string(ipamd), want) {
		t.Errorf("failure does not say %q: %v\nagent log:\n%s\nipamd log:\n%s", want, err, agent, ipamd)
	}
	if _, statErr := os.Stat(n.HostPath(localvpc.NodeCNIConfDir + "/" + localvpc.ConflistName)); statErr == nil {
		t.Error("conflist written: the node looks network-ready")
	}
}

// A node whose subnet has no IPv6 CIDR (and so no IPv6 address) cannot
// give IPv6 pods addresses: a pod ADD fails with an error saying so and
// leaves nothing behind.
func TestE2EIPv6SubnetWithoutIPv6(t *testing.T) {
	t.Parallel()
	v := startIPv6VPC(t, false)
	n := v.Nodes()[0]
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	if err := v.StartAgent(ctx, n, localvpc.IPv6AgentEnv); err != nil {
		t.Fatal(err)
	}
	if err := v.WaitReady(ctx, n, nil); err != nil {
		// Refusing to start is a clear answer too, if it names the cause.
		agent, _ := os.ReadFile(filepath.Join(n.Dir, "agent.log"))
		ipamd, _ := os.ReadFile(n.HostPath(localvpc.NodeLogDir + "/ipamd.log"))
		var errLines []string
		for _, l := range strings.Split(string(agent)+string(ipamd), "\n") {
			if strings.Contains(l, `"level":"ERROR"`) {
				errLines = append(errLines, l)
			}
		}
		if !strings.Contains(strings.Join(errLines, "\n"), "IPv6") {
			t.Errorf("node refused to start (%v) without naming IPv6:\n%s", err, strings.Join(errLines, "\n"))
		}
		t.Logf("node refused: %s", strings.Join(errLines, "\n"))
		return
	}
	p, err := v.AddPod(ctx, n, "default", "no-v6")
	if err == nil {
		t.Fatalf("pod got %s on a node without IPv6", p.IP)
	}
	t.Logf("ADD refused: %v", err)
	if !strings.Contains(strings.ToLower(err.Error()), "ipv6") {
		t.Errorf("ADD error does not name IPv6: %v", err)
	}
	if left, _ := dataplane.ListNamespaces(dataplane.RunPrefix(v.RunID) + "pod-"); len(left) != 0 {
		t.Errorf("failed ADD left pod namespaces %v", left)
	}
}

// An IPv4 cluster with ENABLE_V6_EGRESS on dual-stack nodes: IPv4 pods
// reach the IPv6 internet through egress-cni as their node's IPv6 address
// (a ULA from fd00::ac:00/118 SNATed), and keep their IPv4 paths.
func TestE2EIPv6EgressForIPv4Pods(t *testing.T) {
	t.Parallel()
	v := startIPv6VPC(t, true)
	c := &cluster{t: t, v: v, env: []string{"ENABLE_V6_EGRESS=true", "WARM_IP_TARGET=2", "MINIMUM_IP_TARGET=2"}}
	if err := v.StartAgents(c.ctx(60*time.Second), c.env, nil); err != nil {
		t.Fatalf("start agents: %v", err)
	}
	nodes := v.Nodes()
	c.n1, c.n2 = nodes[0], nodes[1]
	pods := append(c.pods(c.n1, "v4", 1), c.pods(c.n2, "v4", 1)...)
	c.serve(pods...)
	for _, p := range pods {
		if !p.IP.Is4() {
			t.Fatalf("%s has %s, want an IPv4 pod", p.Name, p.IP)
		}
		var nodeV6 netip.Addr
		for _, e := range c.v.ENIs(p.Node) {
			if e.Attachment.DeviceIndex == 0 && len(e.IPv6) > 0 {
				nodeV6 = e.IPv6[0]
			}
		}
		c.expectSeen(p, internetV6, nodeV6)
		c.expectSeen(p, internet, p.Node.PublicIP)
	}
	c.expectSeen(pods[0], pods[1].IP, pods[0].IP)
	c.delAll(pods)
	for _, n := range []*localvpc.Node{c.n1, c.n2} {
		es, _ := os.ReadDir(n.HostPath("/run/cni/v4pd/egress-v6-ipam/aws-cni"))
		if len(es) > 2 { // lock, last_reserved_ip.0
			t.Errorf("%s still holds IPv6 egress addresses: %d entries", n.Name, len(es))
		}
	}
	c.assertCheckpoint(c.n1, nil)
	c.assertNoLeaks()
}
