// Package e2e runs the demo topology as tests: vpcsim, its data plane, two
// nodes running the real agent binaries in their own namespaces, and pods
// wired through libcni. Gated on VPC_CNI_PRIVILEGED=1 (root, namespaces).
package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/vpc-cni/vpc-cni/pkg/localvpc"
	"github.com/vpc-cni/vpc-cni/pkg/testutil"
	"github.com/vpc-cni/vpc-cni/pkg/testutil/agentbin"
	"github.com/vpc-cni/vpc-cni/pkg/testutil/vpctest"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
)

// cluster is one local VPC for one test.
type cluster struct {
	t   *testing.T
	v   *localvpc.VPC
	env []string
	n1  *localvpc.Node
	n2  *localvpc.Node
}

// startVPC starts the two-node scenario, changed by edit if not nil, with
// no agent yet. With ipv6 the scenario is made IPv6-ready (IPv6Scenario)
// and IPv6 is routed in the data plane. Everything is removed when the test
// ends, and the test fails if anything is left behind.
func startVPC(t *testing.T, ipv6 bool, edit func(*vpcsim.Scenario)) *localvpc.VPC {
	t.Helper()
	testutil.Privileged(t)
	if _, err := os.Stat(filepath.Join(localvpc.DefaultRefPluginDir, "portmap")); err != nil {
		t.Skipf("reference CNI plugins missing (%v): install containernetworking-plugins (make deps)", err)
	}
	sc, err := vpcsim.LoadScenario(filepath.Join(agentbin.RepoRoot(), "misc", "scenarios", "two-node.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(&sc)
	}
	if ipv6 {
		if sc, err = localvpc.IPv6Scenario(sc); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := vpctest.StartContext(t, 60*time.Second) // clock starts after the build
	defer cancel()
	return vpctest.StartConfig(t, ctx, localvpc.Config{Scenario: sc, IPv6: ipv6}, "vpccni-e2e-logs")
}

// startAgents starts env's agent on both nodes of v and waits until they
// are network-ready.
func startAgents(t *testing.T, v *localvpc.VPC, env ...string) *cluster {
	t.Helper()
	c := &cluster{t: t, v: v, env: env}
	if err := v.StartAgents(c.ctx(90*time.Second), env, nil); err != nil {
		t.Fatalf("start agents: %v", err)
	}
	nodes := v.Nodes()
	c.n1, c.n2 = nodes[0], nodes[1]
	return c
}

// newCluster is the IPv4 two-node cluster with env for every agent.
func newCluster(t *testing.T, env ...string) *cluster {
	t.Helper()
	return startAgents(t, startVPC(t, false, nil), env...)
}

func (c *cluster) ctx(d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	c.t.Cleanup(cancel)
	return ctx
}

// pods creates count pods named prefix-i on n, in order.
func (c *cluster) pods(n *localvpc.Node, prefix string, count int) []*localvpc.Pod {
	c.t.Helper()
	var out []*localvpc.Pod
	for i := 0; i < count; i++ {
		p, err := c.v.AddPod(c.ctx(60*time.Second), n, "default", fmt.Sprintf("%s-%d", prefix, i))
		if err != nil {
			c.t.Fatalf("add pod %s-%d on %s: %v", prefix, i, n.Name, err)
		}
		out = append(out, p)
	}
	return out
}

func (c *cluster) serve(ps ...*localvpc.Pod) {
	c.t.Helper()
	for _, p := range ps {
		s, err := p.Serve()
		if err != nil {
			c.t.Fatalf("serve in pod %s: %v", p.Name, err)
		}
		c.t.Cleanup(func() { _ = s.Close() })
	}
}

// expectSeen asserts that a connection from p to dst arrives from want.
// It waits up to seenWait: the path works, and a loaded CI machine can
// take seconds to connect; a wrong path still fails at once or by then.
func (c *cluster) expectSeen(p *localvpc.Pod, dst, want netip.Addr) {
	c.t.Helper()
	got, err := p.WhoamiWithin(context.Background(), dst, seenWait)
	if err != nil {
		c.t.Errorf("%s (%s) → %s: %v", p.Name, p.IP, dst, err)
		return
	}
	if got != want {
		c.t.Errorf("%s (%s) → %s: far end saw %s, want %s", p.Name, p.IP, dst, got, want)
	}
}

// seenWait bounds expectSeen's connection; expectBlocked keeps Whoami's
// short bound, as it waits for the failure it expects.
const seenWait = 30 * time.Second

// expectBlocked asserts that p cannot reach dst.
func (c *cluster) expectBlocked(p *localvpc.Pod, dst netip.Addr) {
	c.t.Helper()
	if got, err := p.Whoami(context.Background(), dst); err == nil {
		c.t.Errorf("%s (%s) → %s: reached it (seen as %s), want it blocked", p.Name, p.IP, dst, got)
	}
}

// assertNoLeaks checks vpcsim's view: no ENI is left detached (created and
// forgotten), every attached ENI belongs to a running node, and every
// address EC2 assigned is routed by the VPC to the ENI that holds it. It
// waits for that view: an ENI ipamd is freeing is detached until ipamd
// deletes it, and a leak stays.
func (c *cluster) assertNoLeaks() {
	c.t.Helper()
	var problems []string
	_ = testutil.Eventually(context.Background(), 30*time.Second, func() error {
		problems = c.leaks()
		if len(problems) > 0 {
			return errors.New(strings.Join(problems, "; "))
		}
		return nil
	})
	for _, p := range problems {
		c.t.Errorf("%s (still after 30 s)", p)
	}
}

// leaks lists what assertNoLeaks finds wrong in vpcsim's view now.
func (c *cluster) leaks() []string {
	var problems []string
	for _, e := range c.v.Sim.NetworkInterfaces() {
		if e.Attachment == nil {
			problems = append(problems, fmt.Sprintf("leaked ENI %s (%s): not attached to any instance", e.ID, e.Status))
			continue
		}
		routed := map[netip.Prefix]bool{}
		for _, p := range c.v.DP.RoutedAddresses(e.ID) {
			routed[p] = true
		}
		for _, a := range e.SecondaryIPs {
			if !routed[netip.PrefixFrom(a, 32)] {
				problems = append(problems, fmt.Sprintf("ENI %s holds %s in EC2 but the VPC does not route it", e.ID, a))
			}
		}
		for _, p := range e.Prefixes {
			if !routed[p] {
				problems = append(problems, fmt.Sprintf("ENI %s holds prefix %s in EC2 but the VPC does not route it", e.ID, p))
			}
		}
	}
	return problems
}

// assertCheckpoint asserts that n's ipamd holds exactly the given pods.
func (c *cluster) assertCheckpoint(n *localvpc.Node, pods []*localvpc.Pod) {
	c.t.Helper()
	cp, err := n.Checkpoint()
	if err != nil {
		c.t.Fatalf("%v", err)
	}
	want := map[string]netip.Addr{}
	for _, p := range pods {
		if p.Node == n {
			want[p.ContainerID] = p.IP
		}
	}
	for id, ip := range want {
		if cp[id] != ip {
			c.t.Errorf("%s checkpoint: pod %s… has %v, want %s", n.Name, id[:12], cp[id], ip)
		}
	}
	for id, ip := range cp {
		if _, ok := want[id]; !ok {
			c.t.Errorf("%s checkpoint: allocation %s… (%s) belongs to no pod", n.Name, id[:min(12, len(id))], ip)
		}
	}
}

// nodeNetlink opens a netlink handle inside n's network namespace; the
// caller closes it.
func nodeNetlink(t *testing.T, n *localvpc.Node) *netlink.Handle {
	t.Helper()
	nsh, err := netns.GetFromPath(n.NetNS)
	if err != nil {
		t.Fatal(err)
	}
	defer nsh.Close()
	h, err := netlink.NewHandleAt(nsh)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// podRoutes returns the /32 routes to pods in the node's main table.
func podRoutes(t *testing.T, n *localvpc.Node) map[netip.Addr]bool {
	t.Helper()
	h := nodeNetlink(t, n)
	defer h.Close()
	routes, err := h.RouteList(nil, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	out := map[netip.Addr]bool{}
	for _, r := range routes {
		if r.Dst == nil {
			continue
		}
		ones, _ := r.Dst.Mask.Size()
		l, err := h.LinkByIndex(r.LinkIndex)
		if ones == 32 && err == nil && strings.HasPrefix(l.Attrs().Name, "eni") {
			a, _ := netip.AddrFromSlice(r.Dst.IP.To4())
			out[a] = true
		}
	}
	return out
}

// linkMAC returns the MAC of a link in the node, or "" when absent.
func linkMAC(t *testing.T, n *localvpc.Node, name string) string {
	t.Helper()
	h := nodeNetlink(t, n)
	defer h.Close()
	l, err := h.LinkByName(name)
	if err != nil {
		return ""
	}
	return l.Attrs().HardwareAddr.String()
}

// delAll deletes pods as the runtime does (DEL, then the namespace).
func (c *cluster) delAll(pods []*localvpc.Pod) {
	c.t.Helper()
	var errs []error
	for _, p := range pods {
		_, err := c.v.DelPod(c.ctx(30*time.Second), p)
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		c.t.Errorf("delete pods: %v", err)
	}
}

// routedTo says whether the VPC delivers ip to the ENI.
func routedTo(c *cluster, eniID string, ip netip.Addr) bool {
	for _, p := range c.v.DP.RoutedAddresses(eniID) {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}
