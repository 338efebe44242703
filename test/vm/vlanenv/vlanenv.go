// Package vlanenv builds, inside the VM tier's guest, a node whose trunk
// ENI is cabled to a "VPC" namespace that terminates branch VLANs with real
// 802.1Q links, and gives tests the checks they share: the node's VLAN
// link, frames on the trunk, and whole-namespace state for before/after
// comparisons.
package vlanenv

import (
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/containernetworking/plugins/pkg/testutils"
	"github.com/google/go-cmp/cmp"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/vpc-cni/vpc-cni/pkg/hostcontract"
	"github.com/vpc-cni/vpc-cni/pkg/podnet"
	"github.com/vpc-cni/vpc-cni/pkg/podnet/podnettest"
	"github.com/vpc-cni/vpc-cni/pkg/testutil"
	"github.com/vpc-cni/vpc-cni/test/vm/framecap"
	"github.com/vpc-cni/vpc-cni/test/vm/vmenv"
)

// The addresses and names of the environment.
const (
	VLAN   = 7
	PodIP  = "10.2.0.55"
	GW     = "10.2.0.1" // the branch subnet's router, in the VPC
	NodeIP = "192.168.0.10"
	VPCIP  = "192.168.0.1" // the node subnet's router
	Trunk  = "eth1"        // the trunk ENI on the node
	Wire   = "trunk0"      // its far end in the VPC namespace
	MAC    = "02:42:0a:02:00:37"
)

// Env is a node whose trunk ENI leads to a VPC namespace. The VPC routes
// the node's primary address untagged and terminates one VLAN on an 802.1Q
// link holding the branch subnet's router; it knows the branch ENI's MAC,
// as EC2 does. Pod is an empty namespace for the branch pod.
type Env struct {
	Node, VPC, Pod ns.NetNS
	// TrunkIndex is the trunk ENI's ifindex on the node.
	TrunkIndex int
	MAC        net.HardwareAddr
}

// New builds the environment with the VPC terminating vpcVLAN; everything
// is removed when the test ends. It skips outside the VM tier's guest.
func New(t *testing.T, vpcVLAN int) Env {
	t.Helper()
	vmenv.Require(t)
	e := Env{Node: testutil.NewNS(t), VPC: testutil.NewNS(t), Pod: testutil.NewNS(t)}
	e.MAC, _ = net.ParseMAC(MAC)
	Do(t, e.Node, func() error {
		if err := forwarding(); err != nil {
			return err
		}
		veth := &netlink.Veth{
			LinkAttrs:     netlink.LinkAttrs{Name: Trunk, MTU: 9001},
			PeerName:      Wire,
			PeerNamespace: netlink.NsFd(int(e.VPC.Fd())),
		}
		if err := netlink.LinkAdd(veth); err != nil {
			return fmt.Errorf("add trunk veth: %w", err)
		}
		l, err := upWithAddr(Trunk, NodeIP+"/24")
		if err != nil {
			return err
		}
		e.TrunkIndex = l.Attrs().Index
		// The node's default route, as on EC2, leads to the VPC router.
		return netlink.RouteAdd(&netlink.Route{LinkIndex: e.TrunkIndex, Gw: net.ParseIP(VPCIP)})
	})
	Do(t, e.VPC, func() error {
		if err := forwarding(); err != nil {
			return err
		}
		wire, err := upWithAddr(Wire, VPCIP+"/24")
		if err != nil {
			return err
		}
		vlanName := fmt.Sprintf("%s.%d", Wire, vpcVLAN)
		vl := &netlink.Vlan{LinkAttrs: netlink.LinkAttrs{Name: vlanName, ParentIndex: wire.Attrs().Index}, VlanId: vpcVLAN}
		if err := netlink.LinkAdd(vl); err != nil {
			return fmt.Errorf("add VPC-side VLAN %d: %w", vpcVLAN, err)
		}
		l, err := upWithAddr(vlanName, GW+"/24")
		if err != nil {
			return err
		}
		return netlink.NeighSet(&netlink.Neigh{
			LinkIndex: l.Attrs().Index, Family: unix.AF_INET, State: netlink.NUD_PERMANENT,
			IP: net.ParseIP(PodIP), HardwareAddr: e.MAC,
		})
	})
	return e
}

// StrictNode prepares the node as aws-node does for strict branch ENIs:
// ipamd moves the `lookup local` rule from priority 0 to 20, below the
// iif rules, and the init container with DISABLE_TCP_EARLY_DEMUX=true
// turns TCP early demux off (earlyDemux false). With early demux on, a
// node socket's established flow with a strict pod stalls after the
// handshake: early demux attaches the node's socket to the pod's packets
// as they enter from the pod's veth, and the kernel drops a forwarded
// packet that carries a socket, so they never reach the branch ENI.
func (e Env) StrictNode(t *testing.T, earlyDemux bool) {
	t.Helper()
	Do(t, e.Node, func() error {
		demux := map[bool]string{true: "1", false: "0"}[earlyDemux]
		if err := os.WriteFile("/proc/sys/net/ipv4/tcp_early_demux", []byte(demux), 0o644); err != nil {
			return fmt.Errorf("set TCP early demux: %w", err)
		}
		r := netlink.NewRule()
		r.Table = unix.RT_TABLE_LOCAL
		r.Priority = hostcontract.PriorityLocal
		if err := netlink.RuleAdd(r); err != nil {
			return err
		}
		r.Priority = 0
		return netlink.RuleDel(r)
	})
}

// WantRealVLAN checks that the node's branch link is a kernel 802.1Q link
// with the branch's id, MAC and trunk, and that /proc/net/vlan lists it.
func (e Env) WantRealVLAN(t *testing.T) {
	t.Helper()
	name := podnet.VLANLinkName(VLAN)
	Do(t, e.Node, func() error {
		l, err := netlink.LinkByName(name)
		if err != nil {
			return err
		}
		vl, ok := l.(*netlink.Vlan)
		switch {
		case !ok:
			return fmt.Errorf("%s is a %s link, want vlan", name, l.Type())
		case vl.VlanId != VLAN || vl.ParentIndex != e.TrunkIndex:
			return fmt.Errorf("%s has VLAN id %d on ifindex %d, want %d on %d", name, vl.VlanId, vl.ParentIndex, VLAN, e.TrunkIndex)
		case vl.HardwareAddr.String() != e.MAC.String():
			return fmt.Errorf("%s has MAC %s, want the branch ENI's %s", name, vl.HardwareAddr, e.MAC)
		case vl.Flags&net.FlagUp == 0:
			return fmt.Errorf("%s is down", name)
		}
		cfg, err := vlanConfig()
		if err != nil {
			return err
		}
		if want := fmt.Sprintf("%s | %d | %s", name, VLAN, Trunk); !slices.Contains(cfg, want) {
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
			out = append(out, strings.TrimSpace(f[0])+" | "+strings.TrimSpace(f[1])+" | "+strings.TrimSpace(f[2]))
		}
	}
	return out, nil
}

// State is the node's and the VPC's state and the node's 802.1Q links, to
// prove that DEL leaves nothing behind. The pod's namespace is not part of
// it: the runtime removes that namespace after DEL.
func (e Env) State(t *testing.T) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for name, n := range map[string]ns.NetNS{"node": e.Node, "vpc": e.VPC} {
		s, err := snapshot(n.Path())
		if err != nil {
			t.Fatalf("%s state: %v", name, err)
		}
		out[name] = s
	}
	Do(t, e.Node, func() error {
		cfg, err := vlanConfig()
		out["node 802.1Q"] = cfg
		return err
	})
	return out
}

// WantStateBesidesVeth checks the state right after DEL, while the pod's
// namespace still exists: everything is as before ADD except, possibly,
// the host end of the pod's veth pair, which the kernel removes with the
// namespace. No route or rule may still name it.
func (e Env) WantStateBesidesVeth(t *testing.T, before map[string][]string, hostVeth string) {
	t.Helper()
	now := e.State(t)
	now["node"] = slices.DeleteFunc(slices.Clone(now["node"]), func(l string) bool {
		return strings.HasPrefix(l, "link "+hostVeth+" ")
	})
	if diff := cmp.Diff(before, now); diff != "" {
		t.Errorf("state after DEL differs from before ADD beyond the pod's veth (-before +after):\n%s", diff)
	}
}

// RemovePod deletes the pod's namespace, as the runtime does after DEL.
func (e Env) RemovePod(t *testing.T) {
	t.Helper()
	_ = e.Pod.Close()
	if err := testutils.UnmountNS(e.Pod); err != nil {
		t.Fatalf("remove pod netns: %v", err)
	}
}

// stateTimeout bounds the wait for the kernel to finish removing a
// namespace, which it does in the background, slowly under emulation (a
// CI run at load 7 under tcg took over a minute).
const stateTimeout = 3 * time.Minute

// WaitState waits until the state equals want, and fails the test with
// the difference if it does not within stateTimeout.
func (e Env) WaitState(t *testing.T, what string, want map[string][]string) {
	t.Helper()
	deadline := time.Now().Add(stateTimeout)
	for {
		diff := cmp.Diff(want, e.State(t))
		if diff == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("%s: state still differs after %s (-want +got):\n%s", what, stateTimeout, diff)
			return
		}
		time.Sleep(50 * time.Millisecond) // poll interval, not a fixed wait
	}
}

// snapshot reads a namespace's state again while the kernel reports that
// it changed during the dump: links that just came up are still getting
// their IPv6 link-local addresses.
func snapshot(path string) ([]string, error) {
	for range 100 {
		s, err := podnettest.Snapshot(path)
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			return s, err
		}
	}
	return nil, fmt.Errorf("state of %s kept changing during 100 reads", path)
}

// Capture records the frames on the VPC's end of the trunk until the test
// ends.
func (e Env) Capture(t *testing.T) *framecap.Capture {
	t.Helper()
	c, err := framecap.Open(e.VPC.Path(), Wire)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// Drain returns the frames captured so far.
func Drain(t *testing.T, c *framecap.Capture) []framecap.Frame {
	t.Helper()
	frames, err := c.Drain()
	if err != nil {
		t.Fatal(err)
	}
	return frames
}

// WantPodFramesTagged checks that the pod's traffic crossed the trunk, all
// of it tagged with the branch's VLAN: what the pod sent arrived at the
// VPC tagged, and what the VPC sent to the pod left it tagged.
func WantPodFramesTagged(t *testing.T, frames []framecap.Frame) {
	t.Helper()
	WantFramesTagged(t, frames, PodIP)
}

// WantFramesTagged is WantPodFramesTagged for the pod address podIP.
func WantFramesTagged(t *testing.T, frames []framecap.Frame, podIP string) {
	t.Helper()
	pod := net.ParseIP(podIP)
	var sent, received int
	for _, f := range frames {
		fromPod := f.Src.Equal(pod) && !f.Outgoing
		toPod := f.Dst.Equal(pod) && f.Outgoing
		if !fromPod && !toPod {
			continue
		}
		if f.VLAN != VLAN {
			t.Errorf("pod frame on the trunk not tagged with VLAN %d: %s", VLAN, f)
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

// FramesBetween counts frames between the pod and ip, either way.
func FramesBetween(frames []framecap.Frame, ip string) (tagged, untagged int) {
	pod, peer := net.ParseIP(PodIP), net.ParseIP(ip)
	for _, f := range frames {
		if (f.Src.Equal(pod) && f.Dst.Equal(peer)) || (f.Src.Equal(peer) && f.Dst.Equal(pod)) {
			if f.VLAN == VLAN {
				tagged++
			} else {
				untagged++
			}
		}
	}
	return tagged, untagged
}

// Connect fails the test unless TCP from src reaches ip in dst.
func Connect(t *testing.T, what string, src, dst ns.NetNS, ip string) {
	t.Helper()
	if err := podnettest.Connect(src.Path(), dst.Path(), net.ParseIP(ip)); err != nil {
		t.Errorf("%s: %v", what, err)
	}
}

// Do runs f in namespace n and fails the test on error.
func Do(t *testing.T, n ns.NetNS, f func() error) {
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
		return nil, fmt.Errorf("address %q: %w", cidr, err)
	}
	if err := netlink.AddrAdd(l, a); err != nil {
		return nil, fmt.Errorf("address %s on %s: %w", cidr, name, err)
	}
	if err := netlink.LinkSetUp(l); err != nil {
		return nil, fmt.Errorf("set %s up: %w", name, err)
	}
	return l, nil
}
