package hostlinks

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"testing"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"

	"github.com/vpc-cni/vpc-cni/pkg/testutil"
)

// addPod makes a host veth named name with the /32 host route to addr
// through it, as the plugin does, in the calling thread's namespace.
func addPod(name, peer string, addr netip.Addr) error {
	v := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name}, PeerName: peer}
	if err := netlink.LinkAdd(v); err != nil {
		return fmt.Errorf("adding %s: %w", name, err)
	}
	l, err := netlink.LinkByName(name)
	if err != nil {
		return err
	}
	if err := netlink.LinkSetUp(l); err != nil {
		return err
	}
	return netlink.RouteAdd(&netlink.Route{LinkIndex: l.Attrs().Index, Scope: netlink.SCOPE_LINK,
		Dst: &net.IPNet{IP: addr.AsSlice(), Mask: net.CIDRMask(32, 32)}})
}

// TestPrivilegedPodRoutesWhileLinksChange: in a namespace standing for
// the node, 20 running pods have their veth and host route while other
// pods' veths come and go as fast as the kernel allows. Each of 200
// listings succeeds and finds every running pod's route: a corrupt
// checkpoint's recovery takes a pod missing from it for gone. Before,
// a dump the churn interrupted failed the listing (about a quarter of
// them).
func TestPrivilegedPodRoutesWhileLinksChange(t *testing.T) {
	testutil.Privileged(t)
	node := testutil.NewNS(t)
	running := map[netip.Addr]string{}
	err := node.Do(func(ns.NetNS) error {
		for i := range 20 {
			name, addr := fmt.Sprintf("eniRun%02d", i), netip.AddrFrom4([4]byte{10, 0, 1, byte(10 + i)})
			running[addr] = name
			if err := addPod(name, fmt.Sprintf("peerRun%02d", i), addr); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	churnErr := make(chan error, 2)
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			churnErr <- node.Do(func(ns.NetNS) error {
				for i := 0; ctx.Err() == nil; i++ {
					name := fmt.Sprintf("eniChurn%d", w)
					if err := addPod(name, fmt.Sprintf("peerChurn%d", w), netip.AddrFrom4([4]byte{10, 0, byte(2 + w), byte(i)})); err != nil {
						return err
					}
					l, err := netlink.LinkByName(name)
					if err != nil {
						return err
					}
					if err := netlink.LinkDel(l); err != nil {
						return err
					}
				}
				return nil
			})
		}()
	}
	links := Links{VethPrefix: "eni"}
	failures, missed := 0, 0
	var firstErr error
	err = node.Do(func(ns.NetNS) error {
		for range 200 {
			routes, err := links.PodRoutes(ctx)
			if err != nil {
				failures++
				if firstErr == nil {
					firstErr = err
				}
				continue
			}
			seen := map[netip.Addr]string{}
			for _, r := range routes {
				seen[r.Addr] = r.Link
			}
			for addr, name := range running {
				if seen[addr] != name {
					missed++
				}
			}
		}
		return nil
	})
	cancel()
	wg.Wait()
	close(churnErr)
	for e := range churnErr {
		if e != nil {
			t.Fatalf("churning veths: %v", e)
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	if failures > 0 || missed > 0 {
		t.Errorf("%d of 200 listings failed while veths churn (first: %v); %d running pod routes missing from the others", failures, firstErr, missed)
	}
}
