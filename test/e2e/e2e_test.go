package e2e

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/localvpc"
	"github.com/vpc-cni/vpc-cni/pkg/testutil"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/dataplane"
)

var internet = dataplane.DefaultInternetAddrs[0]

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
