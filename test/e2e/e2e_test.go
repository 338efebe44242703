package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/localvpc"
	"github.com/vpc-cni/vpc-cni/pkg/testutil"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/dataplane"
)

var internet = dataplane.DefaultInternetAddrs[0]

// Every pod reaches every other pod with its own address, the VPC with its
// own address, and the internet only as its node's public IP (SNAT to the
// node's primary address, then the internet gateway).
func TestE2ETrafficMatrix(t *testing.T) {
	t.Parallel()
	c := newCluster(t, "WARM_IP_TARGET=2", "MINIMUM_IP_TARGET=2")
	all := append(c.pods(c.n1, "a", 2), c.pods(c.n2, "b", 2)...)
	c.serve(all...)
	for _, from := range all {
		for _, to := range all {
			if from != to {
				c.expectSeen(from, to.IP, from.IP)
			}
		}
		c.expectSeen(from, c.v.EchoAddr, from.IP)
		c.expectSeen(from, internet, from.Node.PublicIP)
	}
	c.delAll(all)
	c.assertCheckpoint(c.n1, nil)
	c.assertCheckpoint(c.n2, nil)
	c.assertNoLeaks()
}

// A small warm pool fills the primary ENI; the next pods need a second ENI,
// which ipamd creates and attaches while the ADD waits, and which appears in
// the node as eth1 with its MAC. Once the pods are gone ipamd releases it
// and eth1 disappears (ipamd's test intervals shorten upstream's one-minute
// minimum ENI age and 30 s release spacing).
func TestE2EENIHotPlugAndRelease(t *testing.T) {
	t.Parallel()
	c := newCluster(t, "WARM_IP_TARGET=1", "MINIMUM_IP_TARGET=1", "WARM_ENI_TARGET=0", "VPC_CNI_TEST_FAST_INTERVALS=true")
	pods := c.pods(c.n1, "burst", 11) // an m5.large ENI holds 9 secondary addresses
	enis := c.v.ENIs(c.n1)
	if len(enis) < 2 {
		t.Fatalf("%s has %d ENIs after 11 pods, want a second one attached", c.n1.Name, len(enis))
	}
	second := enis[1]
	if got := linkMAC(t, c.n1, "eth1"); got != second.MAC {
		t.Fatalf("eth1 in %s has MAC %q, want ENI %s's %s", c.n1.Name, got, second.ID, second.MAC)
	}
	onSecond := 0
	for _, p := range pods {
		if h, err := c.v.Locate(p.IP); err == nil && h.ENIID == second.ID {
			onSecond++
		}
	}
	if onSecond == 0 {
		t.Errorf("no pod got an address of the new ENI %s", second.ID)
	}
	// Pods on the new ENI are reachable across the VPC.
	c.serve(pods...)
	far := c.pods(c.n2, "far", 1)[0]
	for _, p := range pods[len(pods)-2:] {
		c.expectSeen(far, p.IP, far.IP)
	}
	c.delAll(append(pods, far))
	c.assertCheckpoint(c.n1, nil)
	released := testutil.Eventually(context.Background(), 60*time.Second, func() error {
		if mac := linkMAC(t, c.n1, "eth1"); mac != "" {
			return fmt.Errorf("eth1 (%s) still plugged", mac)
		}
		return nil
	})
	if released != nil {
		t.Errorf("eth1 still plugged into %s 60s after its last pod went away (ENIs: %d)", c.n1.Name, len(c.v.ENIs(c.n1)))
	} else {
		// ipamd deletes the ENI once EC2 reports the detach complete.
		gone := func() error {
			for _, e := range c.v.Sim.NetworkInterfaces() {
				if e.ID == second.ID {
					return fmt.Errorf("ENI %s exists", e.ID)
				}
			}
			return nil
		}
		if testutil.Eventually(context.Background(), 30*time.Second, gone) != nil {
			t.Errorf("released ENI %s still exists in EC2 30s after it was unplugged", second.ID)
		}
	}
	c.assertNoLeaks()
}

// With prefix delegation, pods get addresses from /28 prefixes that EC2
// assigned to the ENI and the VPC routes as a whole.
func TestE2EPrefixDelegation(t *testing.T) {
	t.Parallel()
	c := newCluster(t, "ENABLE_PREFIX_DELEGATION=true", "WARM_PREFIX_TARGET=1")
	p1 := c.pods(c.n1, "pd", 3)
	p2 := c.pods(c.n2, "pd", 1)
	for _, p := range append(append([]*localvpc.Pod(nil), p1...), p2...) {
		h, err := c.v.Locate(p.IP)
		if err != nil {
			t.Fatalf("%s: %v", p.Name, err)
		}
		if !h.Prefix.IsValid() || h.Prefix.Bits() != 28 {
			t.Errorf("%s has %s from %v, want an address of a delegated /28", p.Name, p.IP, h.Prefix)
		}
	}
	c.serve(p1...)
	c.serve(p2...)
	c.expectSeen(p2[0], p1[2].IP, p2[0].IP)
	c.expectSeen(p1[0], p2[0].IP, p1[0].IP)
	c.expectSeen(p1[1], internet, c.n1.PublicIP)
	c.delAll(append(p1, p2...))
	c.assertNoLeaks()
}

// External SNAT: ipamd leaves pod traffic unSNATed, so pods keep their own
// address everywhere — the VPC answers, the internet (which only routes
// back to addresses with a public IP) does not.
func TestE2EExternalSNAT(t *testing.T) {
	t.Parallel()
	c := newCluster(t, "AWS_VPC_K8S_CNI_EXTERNALSNAT=true", "WARM_IP_TARGET=2")
	p := c.pods(c.n1, "ext", 1)[0]
	c.expectSeen(p, c.v.EchoAddr, p.IP)
	c.expectBlocked(p, internet)
	c.delAll([]*localvpc.Pod{p})
}

// Excluding the internet range from SNAT has the same effect for it only.
func TestE2EExcludeSNATCIDRs(t *testing.T) {
	t.Parallel()
	c := newCluster(t, "AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS=203.0.113.20/32", "WARM_IP_TARGET=2")
	p := c.pods(c.n1, "excl", 1)[0]
	c.expectSeen(p, internet, c.n1.PublicIP) // 203.0.113.10 is still SNATed
	c.expectBlocked(p, dataplane.DefaultInternetAddrs[1])
	c.delAll([]*localvpc.Pod{p})
}

// ipamd is SIGKILLed in the middle of a burst of ADDs and started again.
// Afterwards every pod whose ADD succeeded has a unique address that ipamd
// still holds for it, pods whose ADD failed left nothing behind, and their
// retries succeed.
func TestE2EIPAMDKilledDuringPodBurst(t *testing.T) {
	t.Parallel()
	c := newCluster(t, "WARM_IP_TARGET=3", "MINIMUM_IP_TARGET=3")
	const burst = 12
	var (
		mu     sync.Mutex
		ok     []*localvpc.Pod
		failed []string
		wg     sync.WaitGroup
	)
	for i := 0; i < burst; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
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
		}()
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
	seen := map[string]string{}
	for _, p := range ok {
		if other, dup := seen[p.IP.String()]; dup {
			t.Errorf("address %s given to both %s and %s", p.IP, other, p.Name)
		}
		seen[p.IP.String()] = p.Name
		if h, err := c.v.Locate(p.IP); err != nil {
			t.Errorf("%s's address %s is not assigned in EC2: %v", p.Name, p.IP, err)
		} else if !routedTo(c, h.ENIID, p.IP) {
			t.Errorf("%s's address %s is not routed to %s", p.Name, p.IP, h.ENIID)
		}
	}
	c.assertCheckpoint(c.n1, ok)
	c.serve(ok...)
	for _, p := range ok {
		c.expectSeen(p, c.v.EchoAddr, p.IP)
	}
	if left, _ := dataplane.ListNamespaces(dataplane.RunPrefix(c.v.RunID) + "pod-"); len(left) != len(ok) {
		t.Errorf("%d pod namespaces exist for %d pods: failed ADDs left some behind", len(left), len(ok))
	}
	c.delAll(ok)
	c.assertCheckpoint(c.n1, nil)
	c.assertNoLeaks()
}

// A storm of concurrent DELs, each sent twice as containerd does, leaves no
// allocation, no pod route and no error.
func TestE2EDelStorm(t *testing.T) {
	t.Parallel()
	c := newCluster(t, "WARM_IP_TARGET=4", "MINIMUM_IP_TARGET=4")
	pods := c.pods(c.n2, "storm", 14)
	var wg sync.WaitGroup
	errs := make(chan error, 2*len(pods))
	for _, p := range pods {
		for range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				if _, err := c.v.CNIDel(ctx, p); err != nil {
					errs <- fmt.Errorf("%s: %w", p.Name, err)
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for _, p := range pods {
		if _, err := c.v.DelPod(c.ctx(30*time.Second), p); err != nil { // the runtime's final DEL, then the namespace goes
			t.Errorf("final DEL of %s: %v", p.Name, err)
		}
	}
	c.assertCheckpoint(c.n2, nil)
	if left := podRoutes(t, c.n2); len(left) > 0 {
		t.Errorf("pod routes left in %s after the storm: %v", c.n2.Name, left)
	}
	c.assertNoLeaks()
}

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
