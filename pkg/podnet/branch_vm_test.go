package podnet_test

// These tests run only inside the VM tier's guest (test/vm), whose kernel
// has 802.1Q: they wire branch-ENI pods with the production KernelVLAN on a
// trunk whose far end, a "VPC" namespace, terminates the VLAN with its own
// 802.1Q link (test/vm/vlanenv), and prove from the frames on the trunk
// that the pod's traffic crosses it tagged.

import (
	"context"
	"net"
	"os"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/vpc-cni/vpc-cni/pkg/hostcontract"
	"github.com/vpc-cni/vpc-cni/pkg/podnet"
	"github.com/vpc-cni/vpc-cni/pkg/podnet/podnettest"
	"github.com/vpc-cni/vpc-cni/pkg/vethname"
	"github.com/vpc-cni/vpc-cni/test/vm/vlanenv"
)

func vmBranch(e vlanenv.Env, strict bool) podnet.Branch {
	prefix := "eni"
	if strict {
		prefix = vethname.BranchPrefix
	}
	return podnet.Branch{
		Pod: podnet.Pod{NetNS: e.Pod.Path(), MTU: 9001, Interfaces: []podnet.Interface{{
			HostVeth:    vethname.HostVethName(prefix, "default", "sg-pod", 0),
			ContainerIf: "eth0",
			Address:     &net.IPNet{IP: net.ParseIP(vlanenv.PodIP).To4(), Mask: net.CIDRMask(32, 32)},
		}}},
		VLANID:        vlanenv.VLAN,
		ENIMAC:        e.MAC,
		SubnetGW:      net.ParseIP(vlanenv.GW).To4(),
		ParentIfIndex: e.TrunkIndex,
		Strict:        strict,
	}
}

// teardownLeavesNothing runs DEL, checks that only the pod's veth is
// left, removes the pod's namespace as the runtime does and waits for the
// state from before ADD, then runs DEL again with the namespace gone.
func teardownLeavesNothing(t *testing.T, e vlanenv.Env, b podnet.Branch, before map[string][]string) {
	t.Helper()
	del := func() error { _, err := podnet.TeardownBranch(context.Background(), b.Pod, vlanenv.VLAN); return err }
	vlanenv.Do(t, e.Node, del)
	e.WantStateBesidesVeth(t, before, b.Pod.Interfaces[0].HostVeth)
	e.RemovePod(t)
	e.WaitState(t, "after DEL and pod netns removal", before)
	vlanenv.Do(t, e.Node, del)
	e.WaitState(t, "after a second DEL", before)
}

func TestVMBranchStrict(t *testing.T) {
	ctx := context.Background()
	e := vlanenv.New(t, vlanenv.VLAN)
	e.StrictNode(t, false)
	before := e.State(t)
	b := vmBranch(e, true)
	vlanenv.Do(t, e.Node, func() error { return podnet.SetupBranch(ctx, b, podnet.KernelVLAN{}) })
	e.WantRealVLAN(t)
	vlanenv.Do(t, e.Node, func() error { return podnet.CheckBranch(ctx, b.Pod, vlanenv.VLAN, b.SubnetGW, true) })

	c := e.Capture(t)
	vlanenv.Connect(t, "pod to VPC", e.Pod, e.VPC, vlanenv.GW)
	vlanenv.Connect(t, "VPC to pod", e.VPC, e.Pod, vlanenv.PodIP)
	// Strict: even the pod's own node is reached through the branch ENI,
	// so its security groups apply.
	vlanenv.Connect(t, "pod to its node", e.Pod, e.Node, vlanenv.NodeIP)
	frames := vlanenv.Drain(t, c)
	vlanenv.WantPodFramesTagged(t, frames)
	if tagged, _ := vlanenv.FramesBetween(frames, vlanenv.NodeIP); tagged == 0 {
		t.Errorf("strict mode: pod-to-node traffic did not cross the trunk on VLAN %d; frames: %v", vlanenv.VLAN, frames)
	}
	teardownLeavesNothing(t, e, b, before)
}

// TestVMBranchStrictEarlyDemux shows why strict mode needs the init
// container's DISABLE_TCP_EARLY_DEMUX=true: with early demux on, the pod
// reaches the VPC but a TCP flow between the pod and its own node stalls
// after the handshake.
func TestVMBranchStrictEarlyDemux(t *testing.T) {
	ctx := context.Background()
	e := vlanenv.New(t, vlanenv.VLAN)
	e.StrictNode(t, true)
	b := vmBranch(e, true)
	vlanenv.Do(t, e.Node, func() error { return podnet.SetupBranch(ctx, b, nil) })
	vlanenv.Connect(t, "pod to VPC", e.Pod, e.VPC, vlanenv.GW)
	err := podnettest.Probe(e.Pod.Path(), e.Node.Path(), net.ParseIP(vlanenv.NodeIP))
	if err == nil {
		t.Errorf("pod-to-node TCP worked with TCP early demux on; DISABLE_TCP_EARLY_DEMUX may no longer be needed in strict mode")
	} else {
		t.Logf("with early demux on, pod to its node fails as expected: %v", err)
	}
	vlanenv.Do(t, e.Node, func() error { _, err := podnet.TeardownBranch(ctx, b.Pod, vlanenv.VLAN); return err })
}

func TestVMBranchStandard(t *testing.T) {
	ctx := context.Background()
	e := vlanenv.New(t, vlanenv.VLAN)
	before := e.State(t)
	b := vmBranch(e, false)
	vlanenv.Do(t, e.Node, func() error { return podnet.SetupBranch(ctx, b, nil) })
	e.WantRealVLAN(t)
	vlanenv.Do(t, e.Node, func() error { return podnet.CheckBranch(ctx, b.Pod, vlanenv.VLAN, b.SubnetGW, false) })

	c := e.Capture(t)
	vlanenv.Connect(t, "pod to VPC", e.Pod, e.VPC, vlanenv.GW)
	vlanenv.Connect(t, "VPC to pod", e.VPC, e.Pod, vlanenv.PodIP)
	// Standard: node-local traffic bypasses the branch ENI.
	vlanenv.Connect(t, "node to pod", e.Node, e.Pod, vlanenv.PodIP)
	vlanenv.Connect(t, "pod to its node", e.Pod, e.Node, vlanenv.NodeIP)
	frames := vlanenv.Drain(t, c)
	vlanenv.WantPodFramesTagged(t, frames)
	if tagged, untagged := vlanenv.FramesBetween(frames, vlanenv.NodeIP); tagged+untagged != 0 {
		t.Errorf("standard mode: pod-node traffic crossed the trunk (%d tagged, %d untagged frames)", tagged, untagged)
	}
	teardownLeavesNothing(t, e, b, before)
}

// TestVMBranchReplacesStaleVLAN: an ADD that crashed left a real VLAN link
// of the same name with another MAC; the next ADD replaces it.
func TestVMBranchReplacesStaleVLAN(t *testing.T) {
	ctx := context.Background()
	e := vlanenv.New(t, vlanenv.VLAN)
	before := e.State(t)
	stale, _ := net.ParseMAC("02:00:00:00:00:99")
	vlanenv.Do(t, e.Node, func() error {
		return podnet.KernelVLAN{}.CreateVLAN(podnet.VLANLinkName(vlanenv.VLAN), e.TrunkIndex, vlanenv.VLAN, stale)
	})
	b := vmBranch(e, false)
	vlanenv.Do(t, e.Node, func() error { return podnet.SetupBranch(ctx, b, nil) })
	e.WantRealVLAN(t)
	vlanenv.Connect(t, "pod to VPC", e.Pod, e.VPC, vlanenv.GW)
	teardownLeavesNothing(t, e, b, before)
}

// TestVMBranchWrongVLANIsIsolated is the control that shows the tag is
// what carries the traffic: a VPC that terminates VLAN 8 cannot reach a
// pod wired on VLAN 7 over the same trunk.
func TestVMBranchWrongVLANIsIsolated(t *testing.T) {
	ctx := context.Background()
	e := vlanenv.New(t, vlanenv.VLAN+1)
	b := vmBranch(e, false)
	vlanenv.Do(t, e.Node, func() error { return podnet.SetupBranch(ctx, b, nil) })
	if err := podnettest.Probe(e.Pod.Path(), e.VPC.Path(), net.ParseIP(vlanenv.GW)); err == nil {
		t.Errorf("pod on VLAN %d reached a router on VLAN %d", vlanenv.VLAN, vlanenv.VLAN+1)
	}
	vlanenv.Do(t, e.Node, func() error { _, err := podnet.TeardownBranch(ctx, b.Pod, vlanenv.VLAN); return err })
}

// TestVMBranchStrictIPv6: an IPv6 branch pod in strict mode reaches the VPC
// over the real VLAN. Its gateway is EC2's link-local router fe80:ec2::1,
// which the node finds by neighbour discovery on the VLAN link; the node
// carries ipamd's IPv6 prerequisites for strict mode (local rule at 20,
// ICMPv6 from the router looked up in local at 0).
func TestVMBranchStrictIPv6(t *testing.T) {
	ctx := context.Background()
	const podIP, vpcIP = "2001:db8:2::55", "2001:db8:2::1"
	router := net.ParseIP("fe80:ec2::1")
	e := vlanenv.New(t, vlanenv.VLAN)
	e.StrictNode(t, false)
	vlanenv.Do(t, e.Node, func() error {
		if err := os.WriteFile("/proc/sys/net/ipv6/conf/all/forwarding", []byte("1"), 0o644); err != nil {
			return err
		}
		r := netlink.NewRule()
		r.Family, r.Table, r.Priority = unix.AF_INET6, unix.RT_TABLE_LOCAL, hostcontract.PriorityLocal
		if err := netlink.RuleAdd(r); err != nil {
			return err
		}
		r.Priority = 0
		if err := netlink.RuleDel(r); err != nil {
			return err
		}
		r = netlink.NewRule()
		r.Family, r.Table, r.Priority = unix.AF_INET6, unix.RT_TABLE_LOCAL, 0
		r.Src = &net.IPNet{IP: router, Mask: net.CIDRMask(128, 128)}
		r.IPProto = unix.IPPROTO_ICMPV6
		return netlink.RuleAdd(r)
	})
	vlanenv.Do(t, e.VPC, func() error {
		l, err := netlink.LinkByName(vlanenv.Wire + ".7")
		if err != nil {
			return err
		}
		for _, ip := range []net.IP{router, net.ParseIP(vpcIP)} {
			if err := netlink.AddrAdd(l, &netlink.Addr{IPNet: &net.IPNet{IP: ip, Mask: net.CIDRMask(64, 128)}, Flags: unix.IFA_F_NODAD}); err != nil {
				return err
			}
		}
		return netlink.NeighSet(&netlink.Neigh{
			LinkIndex: l.Attrs().Index, Family: unix.AF_INET6, State: netlink.NUD_PERMANENT,
			IP: net.ParseIP(podIP), HardwareAddr: e.MAC,
		})
	})
	before := e.State(t)
	b := vmBranch(e, true)
	b.Pod.Interfaces[0].Address = &net.IPNet{IP: net.ParseIP(podIP), Mask: net.CIDRMask(128, 128)}
	b.SubnetGW = router
	vlanenv.Do(t, e.Node, func() error { return podnet.SetupBranch(ctx, b, nil) })
	e.WantRealVLAN(t)
	waitDAD(t, e, podnet.VLANLinkName(vlanenv.VLAN))

	c := e.Capture(t)
	vlanenv.Connect(t, "pod to VPC", e.Pod, e.VPC, vpcIP)
	vlanenv.Connect(t, "VPC to pod", e.VPC, e.Pod, podIP)
	vlanenv.WantFramesTagged(t, vlanenv.Drain(t, c), podIP)
	teardownLeavesNothing(t, e, b, before)
}

// waitDAD waits until the node's link has a usable IPv6 link-local
// address: neighbour discovery on it needs one as its source.
func waitDAD(t *testing.T, e vlanenv.Env, link string) {
	t.Helper()
	if err := podnettest.WaitIPv6Ready(context.Background(), e.Node.Path(), link); err != nil {
		t.Fatal(err)
	}
}
