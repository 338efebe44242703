package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/localvpc"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/dataplane"
)

// family is an IPv4 or an IPv6 cluster: the tests below run the same body
// on each and differ only in what this table says.
type family struct {
	name string
	ipv6 bool
	env  []string // the agents' environment
}

var families = []family{
	{name: "IPv4", env: []string{"WARM_IP_TARGET=3", "MINIMUM_IP_TARGET=3"}},
	// IPv6 pods get /128s of /80 prefixes; IPv4 egress goes through
	// egress-cni (localvpc.IPv6AgentEnv).
	{name: "IPv6", ipv6: true, env: append(append([]string(nil), localvpc.IPv6AgentEnv...), "WARM_PREFIX_TARGET=1")},
}

// eachFamily runs body as a parallel subtest per family, on a fresh cluster.
func eachFamily(t *testing.T, body func(t *testing.T, f family, c *cluster)) {
	for _, f := range families {
		t.Run(f.name, func(t *testing.T) {
			t.Parallel()
			body(t, f, startAgents(t, startVPC(t, f.ipv6, nil), f.env...))
		})
	}
}

// echo is the in-VPC whoami service of the family.
func (f family) echo(c *cluster) netip.Addr {
	if f.ipv6 {
		return c.v.EchoAddrV6
	}
	return c.v.EchoAddr
}

// expectOutside asserts how p reaches what is outside its pod network: the
// VPC with its own address, the IPv4 internet as its node's public IP (SNAT
// to the node's primary address, or egress-cni in an IPv6 cluster, then
// the internet gateway), and the IPv6 internet with its own address.
func (f family) expectOutside(c *cluster, p *localvpc.Pod) {
	c.t.Helper()
	c.expectSeen(p, f.echo(c), p.IP)
	c.expectSeen(p, internet, p.Node.PublicIP)
	if f.ipv6 {
		c.expectSeen(p, internetV6, p.IP)
	}
}

// expectHeld asserts that EC2 holds every pod's address on an ENI of its
// node (in an IPv6 cluster inside a /80 prefix), that the VPC routes it
// there, and that no two pods share one; in an IPv6 cluster also that the
// VPC routes exactly the IPv6 EC2 holds.
func (f family) expectHeld(c *cluster, pods []*localvpc.Pod) {
	c.t.Helper()
	enis := map[string]string{} // ENI → instance
	for _, e := range c.v.Sim.NetworkInterfaces() {
		if e.Attachment != nil {
			enis[e.ID] = e.Attachment.InstanceID
		}
	}
	seen := map[netip.Addr]string{}
	for _, p := range pods {
		if other, dup := seen[p.IP]; dup {
			c.t.Errorf("address %s given to both %s and %s", p.IP, other, p.Name)
		}
		seen[p.IP] = p.Name
		if p.IP.Is6() != f.ipv6 {
			c.t.Errorf("%s has %s, want an %s address", p.Name, p.IP, f.name)
		}
		h, err := c.v.Locate(p.IP)
		switch {
		case err != nil:
			c.t.Errorf("%s's address %s is not assigned in EC2: %v", p.Name, p.IP, err)
		case enis[h.ENIID] != p.Node.ID:
			c.t.Errorf("%s's address %s is on ENI %s, not attached to %s", p.Name, p.IP, h.ENIID, p.Node.Name)
		case f.ipv6 && h.Prefix.Bits() != 80:
			c.t.Errorf("%s's %s is in no /80 of %s's ENIs (held in %v)", p.Name, p.IP, p.Node.Name, h.Prefix)
		case !routedTo(c, h.ENIID, p.IP):
			c.t.Errorf("%s's address %s is not routed to %s", p.Name, p.IP, h.ENIID)
		}
	}
	if f.ipv6 {
		c.assertIPv6Routed()
	}
}

// expectEgress asserts that n holds one egress-cni address per pod of an
// IPv6 cluster (none for an IPv4 one, which has no egress-cni).
func (f family) expectEgress(c *cluster, n *localvpc.Node, pods int) {
	c.t.Helper()
	if !f.ipv6 {
		return
	}
	if held := egressHeld(n, egressV4Dir); held != pods {
		c.t.Errorf("%s holds %d egress addresses for %d pods", n.Name, held, pods)
	}
}

// Every pod reaches every other pod, on its node and across nodes, with
// its own address, and the outside as expectOutside says. Deleting them
// leaves no allocation, no egress address and nothing in EC2.
func TestE2ETrafficMatrix(t *testing.T) {
	t.Parallel()
	eachFamily(t, func(t *testing.T, f family, c *cluster) {
		all := append(c.pods(c.n1, "a", 2), c.pods(c.n2, "b", 2)...)
		f.expectHeld(c, all)
		c.serve(all...)
		for _, from := range all {
			for _, to := range all {
				if from != to {
					c.expectSeen(from, to.IP, from.IP)
				}
			}
			f.expectOutside(c, from)
		}
		c.delAll(all)
		for _, n := range []*localvpc.Node{c.n1, c.n2} {
			c.assertCheckpoint(n, nil)
			f.expectEgress(c, n, 0)
		}
		f.expectHeld(c, nil)
		c.assertNoLeaks()
	})
}

// ipamd is SIGKILLed in the middle of a burst of ADDs and started again.
// Afterwards every pod whose ADD succeeded has a unique address that ipamd
// still holds for it, EC2 assigned and the VPC routes (and, in an IPv6
// cluster, an egress address of its own); pods whose ADD failed left
// nothing behind, and their retries succeed.
func TestE2EIPAMDKilledDuringPodBurst(t *testing.T) {
	t.Parallel()
	eachFamily(t, func(t *testing.T, f family, c *cluster) {
		const burst = 12
		var (
			mu     sync.Mutex
			ok     []*localvpc.Pod
			failed []string
			wg     sync.WaitGroup
		)
		for i := range burst {
			wg.Go(func() {
				name := fmt.Sprintf("burst-%d", i)
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
			time.Sleep(150 * time.Millisecond) // spreads the burst over time; no condition waited on
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
		f.expectHeld(c, ok)
		c.assertCheckpoint(c.n1, ok)
		f.expectEgress(c, c.n1, len(ok))
		c.serve(ok...)
		for _, p := range ok {
			f.expectOutside(c, p)
		}
		if left, _ := dataplane.ListNamespaces(dataplane.RunPrefix(c.v.RunID) + "pod-"); len(left) != len(ok) {
			t.Errorf("%d pod namespaces exist for %d pods: failed ADDs left some behind", len(left), len(ok))
		}
		c.delAll(ok)
		c.assertCheckpoint(c.n1, nil)
		f.expectEgress(c, c.n1, 0)
		c.assertNoLeaks()
	})
}
