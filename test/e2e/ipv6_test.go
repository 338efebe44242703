package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/localvpc"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/dataplane"
)

var internetV6 = dataplane.DefaultInternetV6Addrs[0]

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

// Where egress-cni's host-local keeps the addresses it hands out, inside a
// node: IPv4 egress of IPv6 pods, and IPv6 egress of IPv4 pods.
const (
	egressV4Dir = "/run/cni/v6pd/egress-v4-ipam/aws-cni"
	egressV6Dir = "/run/cni/v4pd/egress-v6-ipam/aws-cni"
)

// egressHeld counts the addresses egress-cni holds in dir on n.
func egressHeld(n *localvpc.Node, dir string) int {
	es, _ := os.ReadDir(n.HostPath(dir))
	held := 0
	for _, e := range es {
		if e.Name() != "lock" && !strings.HasPrefix(e.Name(), "last_reserved_ip") {
			held++
		}
	}
	return held
}

// Bad input on an IPv6 cluster gives a clear error naming the cause and
// wires nothing. ENABLE_IPv6 without prefix delegation: ipamd refuses to
// start, so the node never becomes ready.
func TestE2EIPv6WithoutPrefixDelegation(t *testing.T) {
	t.Parallel()
	v := startVPC(t, true, nil)
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
	v := startVPC(t, false, func(sc *vpcsim.Scenario) {
		sc.VPCs[0].IPv6CIDR = "" // no IPv6 anywhere: subnets derive none
	})
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
	c := startAgents(t, startVPC(t, true, nil), "ENABLE_V6_EGRESS=true", "WARM_IP_TARGET=2", "MINIMUM_IP_TARGET=2")
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
		if held := egressHeld(n, egressV6Dir); held > 0 {
			t.Errorf("%s still holds %d IPv6 egress addresses", n.Name, held)
		}
	}
	c.assertCheckpoint(c.n1, nil)
	c.assertNoLeaks()
}
