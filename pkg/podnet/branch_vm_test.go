package podnet_test

// These tests run only inside the VM tier's guest (test/vm), whose kernel
// has 802.1Q: they wire branch-ENI pods with the production KernelVLAN on a
// trunk whose far end, a "VPC" namespace, terminates the VLAN with its own
// 802.1Q link, and prove from the frames on the trunk that the pod's
// traffic crosses it tagged.

import (
	"context"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/google/go-cmp/cmp"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/vpc-cni/vpc-cni/pkg/podnet"
	"github.com/vpc-cni/vpc-cni/pkg/podnet/podnettest"
	"github.com/vpc-cni/vpc-cni/pkg/testutil"
	"github.com/vpc-cni/vpc-cni/pkg/vethname"
	"github.com/vpc-cni/vpc-cni/test/vm/framecap"
	"github.com/vpc-cni/vpc-cni/test/vm/vmenv"
)

const (
	vmVLAN   = 7
	vmPodIP  = "10.2.0.55"
	vmGW     = "10.2.0.1"
	vmNodeIP = "192.168.0.10"
	vmVPCIP  = "192.168.0.1"
	vmTrunk  = "eth1"   // the trunk ENI on the node
	vmWire   = "trunk0" // its far end in the VPC namespace
)

// vlanEnv is a node whose trunk ENI is cabled to a VPC namespace. The VPC
// routes the node's primary address untagged and terminates the branch
// VLAN on an 802.1Q link holding the branch subnet's router; it knows the
// branch ENI's MAC, as EC2 does.
type vlanEnv struct {
	node, vpc, pod ns.NetNS
	trunk          int
	mac            net.HardwareAddr
}

func newVLANEnv(t *testing.T, vpcVLAN int) vlanEnv {
	t.Helper()
	vmenv.Require(t)
	e := vlanEnv{node: testutil.NewNS(t), vpc: testutil.NewNS(t), pod: testutil.NewNS(t)}
	e.mac, _ = net.ParseMAC("02:42:0a:02:00:37")
	do(t, e.node, func() error {
		if err := forwarding(); err != nil {
			return err
		}
		veth := &netlink.Veth{
			LinkAttrs:     netlink.LinkAttrs{Name: vmTrunk, MTU: 9001},
			PeerName:      vmWire,
			PeerNamespace: netlink.NsFd(int(e.vpc.Fd())),
		}
		if err := netlink.LinkAdd(veth); err != nil {
			return fmt.Errorf("add trunk veth: %w", err)
		}
		l, err := upWithAddr(vmTrunk, vmNodeIP+"/24")
		if err != nil {
			return err
		}
		e.trunk = l.Attrs().Index
		// The node's default route, as on EC2, leads to the VPC router.
		return netlink.RouteAdd(&netlink.Route{LinkIndex: e.trunk, Gw: net.ParseIP(vmVPCIP)})
	})
	do(t, e.vpc, func() error {
		if err := forwarding(); err != nil {
			return err
		}
		wire, err := upWithAddr(vmWire, vmVPCIP+"/24")
		if err != nil {
			return err
		}
		vlanName := fmt.Sprintf("%s.%d", vmWire, vpcVLAN)
		vl := &netlink.Vlan{LinkAttrs: netlink.LinkAttrs{Name: vlanName, ParentIndex: wire.Attrs().Index}, VlanId: vpcVLAN}
		if err := netlink.LinkAdd(vl); err != nil {
			return fmt.Errorf("add VPC-side VLAN %d: %w", vpcVLAN, err)
		}
		l, err := upWithAddr(vlanName, vmGW+"/24")
		if err != nil {
			return err
		}
		return netlink.NeighSet(&netlink.Neigh{
			LinkIndex: l.Attrs().Index, Family: unix.AF_INET, State: netlink.NUD_PERMANENT,
			IP: net.ParseIP(vmPodIP), HardwareAddr: e.mac,
		})
	})
	return e
}

func (e vlanEnv) branch(strict bool) podnet.Branch {
	prefix := "eni"
	if strict {
		prefix = vethname.BranchPrefix
	}
	ip := net.ParseIP(vmPodIP).To4()
	return podnet.Branch{
		Pod: podnet.Pod{NetNS: e.pod.Path(), MTU: 9001, Interfaces: []podnet.Interface{{
			HostVeth:    vethname.HostVethName(prefix, "default", "sg-pod", 0),
			ContainerIf: "eth0",
			Address:     &net.IPNet{IP: ip, Mask: net.CIDRMask(32, 32)},
		}}},
		VLANID:        vmVLAN,
		ENIMAC:        e.mac,
		SubnetGW:      net.ParseIP(vmGW).To4(),
		ParentIfIndex: e.trunk,
		Strict:        strict,
	}
}

// strictNode prepares the node as aws-node does for strict branch ENIs:
// ipamd moves the `lookup local` rule from priority 0 to 20, below the
// iif rules, and the init container with DISABLE_TCP_EARLY_DEMUX=true
// turns TCP early demux off. Without the latter, a node socket's
// established flow with a strict pod stalls after the handshake: early
// demux attaches the node's socket to the pod's packets as they enter
// from the pod's veth, and the kernel drops a forwarded packet that
// carries a socket, so they never reach the branch ENI.
func (e vlanEnv) strictNode(t *testing.T, earlyDemux bool) {
	t.Helper()
	do(t, e.node, func() error {
		demux := map[bool]string{true: "1", false: "0"}[earlyDemux]
		if err := os.WriteFile("/proc/sys/net/ipv4/tcp_early_demux", []byte(demux), 0o644); err != nil {
			return fmt.Errorf("set TCP early demux: %w", err)
		}
		r := netlink.NewRule()
		r.Table = unix.RT_TABLE_LOCAL
		r.Priority = podnet.PriorityLocal
		if err := netlink.RuleAdd(r); err != nil {
			return err
		}
		r.Priority = 0
		return netlink.RuleDel(r)
	})
}

// wantRealVLAN checks that the node's branch link is a kernel 802.1Q link
// with the branch's id, MAC and trunk, as /proc/net/vlan lists it too.
func (e vlanEnv) wantRealVLAN(t *testing.T) {
	t.Helper()
	name := podnet.VLANLinkName(vmVLAN)
	do(t, e.node, func() error {
		l, err := netlink.LinkByName(name)
		if err != nil {
			return err
		}
		vl, ok := l.(*netlink.Vlan)
		switch {
		case !ok:
			return fmt.Errorf("%s is a %s link, want vlan", name, l.Type())
		case vl.VlanId != vmVLAN || vl.ParentIndex != e.trunk:
			return fmt.Errorf("%s has VLAN id %d on ifindex %d, want %d on %d", name, vl.VlanId, vl.ParentIndex, vmVLAN, e.trunk)
		case vl.HardwareAddr.String() != e.mac.String():
			return fmt.Errorf("%s has MAC %s, want the branch ENI's %s", name, vl.HardwareAddr, e.mac)
		case vl.Flags&net.FlagUp == 0:
			return fmt.Errorf("%s is down", name)
		}
		cfg, err := vlanConfig()
		if err != nil {
			return err
		}
		if want := fmt.Sprintf("%s | %d | %s", name, vmVLAN, vmTrunk); !slices.Contains(cfg, want) {
			return fmt.Errorf("/proc/net/vlan/config lacks %q: %q", want, cfg)
		}
		return nil
	})
}

// vlanConfig lists the current thread's namespace's 802.1Q links.
func vlanConfig() ([]string, error) {
	data, err := os.ReadFile("/proc/thread-self/net/vlan/config")
	if err != nil {
		return nil, fmt.Errorf("read 802.1Q links: %w", err)
	}
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Split(line, "|"); len(f) == 3 {
			out = append(out, strings.Join([]string{strings.TrimSpace(f[0]), strings.TrimSpace(f[1]), strings.TrimSpace(f[2])}, " | "))
		}
	}
	return out, nil
}

// state is every namespace's state, to prove DEL leaves nothing behind.
func (e vlanEnv) state(t *testing.T) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for name, n := range map[string]ns.NetNS{"node": e.node, "vpc": e.vpc, "pod": e.pod} {
		s, err := podnettest.Snapshot(n.Path())
		if err != nil {
			t.Fatalf("%s state: %v", name, err)
		}
		out[name] = s
	}
	do(t, e.node, func() error {
		cfg, err := vlanConfig()
		out["node 802.1Q"] = cfg
		return err
	})
	return out
}

// teardownLeavesNothing runs DEL twice and compares all state with before.
func (e vlanEnv) teardownLeavesNothing(t *testing.T, b podnet.Branch, before map[string][]string) {
	t.Helper()
	for i := range 2 {
		do(t, e.node, func() error { return podnet.TeardownBranch(context.Background(), b.Pod, vmVLAN) })
		if diff := cmp.Diff(before, e.state(t)); diff != "" {
			t.Errorf("state after DEL #%d differs from before ADD (-before +after):\n%s", i+1, diff)
		}
	}
}

// capture records the frames on the VPC's end of the trunk.
func (e vlanEnv) capture(t *testing.T) *framecap.Capture {
	t.Helper()
	c, err := framecap.Open(e.vpc.Path(), vmWire)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func drain(t *testing.T, c *framecap.Capture) []framecap.Frame {
	t.Helper()
	frames, err := c.Drain()
	if err != nil {
		t.Fatal(err)
	}
	return frames
}

// wantPodFramesTagged checks that the pod's traffic crossed the trunk, all
// of it tagged with the branch's VLAN: what the pod sent arrived at the
// VPC tagged, and what the VPC sent to the pod left it tagged.
func wantPodFramesTagged(t *testing.T, frames []framecap.Frame) {
	t.Helper()
	pod := net.ParseIP(vmPodIP)
	var sent, received int
	for _, f := range frames {
		fromPod := f.Src.Equal(pod) && !f.Outgoing
		toPod := f.Dst.Equal(pod) && f.Outgoing
		if !fromPod && !toPod {
			continue
		}
		if f.VLAN != vmVLAN {
			t.Errorf("pod frame on the trunk not tagged with VLAN %d: %s", vmVLAN, f)
		}
		if fromPod {
			sent++
		} else {
			received++
		}
	}
	if sent == 0 || received == 0 {
		t.Errorf("trunk carried %d frames from the pod and %d to it, want both > 0; frames: %v", sent, received, frames)
	}
}

// framesBetween counts frames between the pod and ip, either way.
func framesBetween(frames []framecap.Frame, ip string) (tagged, untagged int) {
	pod, peer := net.ParseIP(vmPodIP), net.ParseIP(ip)
	for _, f := range frames {
		if (f.Src.Equal(pod) && f.Dst.Equal(peer)) || (f.Src.Equal(peer) && f.Dst.Equal(pod)) {
			if f.VLAN == vmVLAN {
				tagged++
			} else {
				untagged++
			}
		}
	}
	return tagged, untagged
}

func connect(t *testing.T, what string, src, dst ns.NetNS, ip string) {
	t.Helper()
	if err := podnettest.Connect(src.Path(), dst.Path(), net.ParseIP(ip)); err != nil {
		t.Errorf("%s: %v", what, err)
	}
}

func TestVMBranchStrict(t *testing.T) {
	ctx := context.Background()
	e := newVLANEnv(t, vmVLAN)
	e.strictNode(t, false)
	before := e.state(t)
	b := e.branch(true)
	do(t, e.node, func() error { return podnet.SetupBranch(ctx, b, podnet.KernelVLAN{}) })
	e.wantRealVLAN(t)
	do(t, e.node, func() error { return podnet.CheckBranch(ctx, b.Pod, vmVLAN, b.SubnetGW, true) })

	c := e.capture(t)
	connect(t, "pod to VPC", e.pod, e.vpc, vmGW)
	connect(t, "VPC to pod", e.vpc, e.pod, vmPodIP)
	// Strict: even the pod's own node is reached through the branch ENI,
	// so its security groups apply.
	connect(t, "pod to its node", e.pod, e.node, vmNodeIP)
	frames := drain(t, c)
	wantPodFramesTagged(t, frames)
	if tagged, _ := framesBetween(frames, vmNodeIP); tagged == 0 {
		t.Errorf("strict mode: pod-to-node traffic did not cross the trunk on VLAN %d; frames: %v", vmVLAN, frames)
	}
	e.teardownLeavesNothing(t, b, before)
}

func TestVMBranchStandard(t *testing.T) {
	ctx := context.Background()
	e := newVLANEnv(t, vmVLAN)
	before := e.state(t)
	b := e.branch(false)
	do(t, e.node, func() error { return podnet.SetupBranch(ctx, b, nil) })
	e.wantRealVLAN(t)
	do(t, e.node, func() error { return podnet.CheckBranch(ctx, b.Pod, vmVLAN, b.SubnetGW, false) })

	c := e.capture(t)
	connect(t, "pod to VPC", e.pod, e.vpc, vmGW)
	connect(t, "VPC to pod", e.vpc, e.pod, vmPodIP)
	// Standard: node-local traffic bypasses the branch ENI.
	connect(t, "node to pod", e.node, e.pod, vmPodIP)
	connect(t, "pod to its node", e.pod, e.node, vmNodeIP)
	frames := drain(t, c)
	wantPodFramesTagged(t, frames)
	if tagged, untagged := framesBetween(frames, vmNodeIP); tagged+untagged != 0 {
		t.Errorf("standard mode: pod-node traffic crossed the trunk (%d tagged, %d untagged frames)", tagged, untagged)
	}
	e.teardownLeavesNothing(t, b, before)
}

// TestVMBranchStrictEarlyDemux shows why strict mode needs the init
// container's DISABLE_TCP_EARLY_DEMUX=true: with early demux on, the pod
// reaches the VPC but a TCP flow between the pod and its own node stalls
// after the handshake.
func TestVMBranchStrictEarlyDemux(t *testing.T) {
	ctx := context.Background()
	e := newVLANEnv(t, vmVLAN)
	e.strictNode(t, true)
	b := e.branch(true)
	do(t, e.node, func() error { return podnet.SetupBranch(ctx, b, nil) })
	connect(t, "pod to VPC", e.pod, e.vpc, vmGW)
	err := podnettest.Connect(e.pod.Path(), e.node.Path(), net.ParseIP(vmNodeIP))
	if err == nil {
		t.Errorf("pod-to-node TCP worked with TCP early demux on; DISABLE_TCP_EARLY_DEMUX may no longer be needed in strict mode")
	} else {
		t.Logf("with early demux on, pod to its node fails as expected: %v", err)
	}
	do(t, e.node, func() error { return podnet.TeardownBranch(ctx, b.Pod, vmVLAN) })
}

// TestVMBranchReplacesStaleVLAN: an ADD that crashed left a real VLAN link
// of the same name with another MAC; the next ADD replaces it.
func TestVMBranchReplacesStaleVLAN(t *testing.T) {
	ctx := context.Background()
	e := newVLANEnv(t, vmVLAN)
	before := e.state(t)
	stale, _ := net.ParseMAC("02:00:00:00:00:99")
	do(t, e.node, func() error {
		return podnet.KernelVLAN{}.CreateVLAN(podnet.VLANLinkName(vmVLAN), e.trunk, vmVLAN, stale)
	})
	b := e.branch(false)
	do(t, e.node, func() error { return podnet.SetupBranch(ctx, b, nil) })
	e.wantRealVLAN(t)
	connect(t, "pod to VPC", e.pod, e.vpc, vmGW)
	e.teardownLeavesNothing(t, b, before)
}

// TestVMBranchWrongVLANIsIsolated is the control that shows the tag is
// what carries the traffic: a VPC that terminates VLAN 8 cannot reach a
// pod wired on VLAN 7 over the same trunk.
func TestVMBranchWrongVLANIsIsolated(t *testing.T) {
	ctx := context.Background()
	e := newVLANEnv(t, vmVLAN+1)
	b := e.branch(false)
	do(t, e.node, func() error { return podnet.SetupBranch(ctx, b, nil) })
	if err := podnettest.Connect(e.pod.Path(), e.vpc.Path(), net.ParseIP(vmGW)); err == nil {
		t.Errorf("pod on VLAN %d reached a router on VLAN %d", vmVLAN, vmVLAN+1)
	}
	do(t, e.node, func() error { return podnet.TeardownBranch(ctx, b.Pod, vmVLAN) })
}

func do(t *testing.T, n ns.NetNS, f func() error) {
	t.Helper()
	if err := n.Do(func(ns.NetNS) error { return f() }); err != nil {
		t.Fatalf("in %s: %v", n.Path(), err)
	}
}

func forwarding() error {
	if err := os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1"), 0o644); err != nil {
		return fmt.Errorf("enable forwarding: %w", err)
	}
	return nil
}

func upWithAddr(name, cidr string) (netlink.Link, error) {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return nil, fmt.Errorf("find %s: %w", name, err)
	}
	a, err := netlink.ParseAddr(cidr)
	if err != nil {
		return nil, err
	}
	if err := netlink.AddrAdd(l, a); err != nil {
		return nil, fmt.Errorf("address %s on %s: %w", cidr, name, err)
	}
	if err := netlink.LinkSetUp(l); err != nil {
		return nil, fmt.Errorf("set %s up: %w", name, err)
	}
	return l, nil
}
