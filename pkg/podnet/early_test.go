package podnet

import (
	"context"
	"errors"
	"net"
	"testing"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"

	"github.com/vpc-cni/vpc-cni/pkg/podnet/podnettest"
	"github.com/vpc-cni/vpc-cni/pkg/testutil"
)

// createVeth runs CreateVeth for ifc of pod in the node's namespace.
func createVeth(n node, pod Pod, ifc Interface) (*Veth, error) {
	var v *Veth
	err := n.run(func() error {
		var err error
		v, err = CreateVeth(pod.NetNS, pod.Sandbox, ifc.HostVeth, ifc.ContainerIf, pod.MTU)
		return err
	})
	return v, err
}

func TestPrivilegedEarlyVethFinishedBySetup(t *testing.T) {
	ctx := context.Background()
	n := newNode(t, "192.168.0.10")
	podNS := testutil.NewNS(t)
	pod := Pod{NetNS: podNS.Path(), MTU: 9001, Interfaces: []Interface{iface("default", "e", "10.0.0.5", 0, 3)}}
	veth := pod.Interfaces[0].HostVeth

	early, err := createVeth(n, pod, pod.Interfaces[0])
	if err != nil {
		t.Fatal(err)
	}
	// Before the addresses: both ends up, nothing routed, no pod address.
	wantState(t, "node before Setup", n.ns, []string{"link " + veth + " veth up mtu 9001"})
	wantState(t, "pod before Setup", podNS, []string{"link eth0 veth up mtu 9001"})
	for key, want := range map[string]string{"accept_ra": "0", "accept_redirects": "1", "forwarding": "0"} {
		if got := readSysctl(t, n, "net/ipv6/conf/"+veth+"/"+key); got != want {
			t.Errorf("early host veth %s = %s, want %s", key, got, want)
		}
	}
	mac := hostMAC(t, n, veth)

	pod.Early = early
	n.do(t, func() error { return Setup(ctx, pod) })
	if got := hostMAC(t, n, veth); got != mac {
		t.Errorf("Setup replaced the early pair: host MAC %s, want %s", got, mac)
	}
	wantState(t, "node", n.ns, []string{
		"link " + veth + " veth up mtu 9001",
		"route main 10.0.0.5/32 dev " + veth + " scope link",
		"rule 512 to 10.0.0.5/32 lookup main",
		"rule 1536 from 10.0.0.5/32 lookup 3",
	})
	wantState(t, "pod", podNS, wiredPodV4(9001, "10.0.0.5", mac))
	if err := podnettest.Connect(podNS.Path(), n.ns.Path(), n.ip); err != nil {
		t.Errorf("pod to node: %v", err)
	}
	n.do(t, func() error { return Check(ctx, pod) })
}

func TestPrivilegedEarlyVethThatDoesNotFitIsReplaced(t *testing.T) {
	ctx := context.Background()
	n := newNode(t, "192.168.0.10")
	podNS := testutil.NewNS(t)
	pod := Pod{NetNS: podNS.Path(), MTU: 9001, Interfaces: []Interface{iface("default", "f", "10.0.0.6", 0, 0)}}
	// Made under another name (as for a prefix ipamd's reply changes).
	other := pod.Interfaces[0]
	other.HostVeth = "vlanotherf0"
	early, err := createVeth(n, pod, other)
	if err != nil {
		t.Fatal(err)
	}
	pod.Early = early
	n.do(t, func() error { return Setup(ctx, pod) })
	veth := pod.Interfaces[0].HostVeth
	wantState(t, "node", n.ns, []string{
		"link " + veth + " veth up mtu 9001",
		"route main 10.0.0.6/32 dev " + veth + " scope link",
		"rule 512 to 10.0.0.6/32 lookup main",
	})
	n.do(t, func() error { return Check(ctx, pod) })
}

func TestPrivilegedEarlyVethLeavesTakenNamesAlone(t *testing.T) {
	n := newNode(t, "192.168.0.10")
	podNS := testutil.NewNS(t)
	pod := Pod{NetNS: podNS.Path(), MTU: 9001, Interfaces: []Interface{iface("default", "g", "10.0.0.7", 0, 0)}}
	veth := pod.Interfaces[0].HostVeth
	// A stale pair of an earlier sandbox, say: Setup replaces it, later.
	stale := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: veth, MTU: 1500}, PeerName: "stalepeer"}
	n.do(t, func() error { return netlink.LinkAdd(stale) })
	if _, err := createVeth(n, pod, pod.Interfaces[0]); !errors.Is(err, ErrHostVethExists) {
		t.Fatalf("CreateVeth over a taken host name = %v, want ErrHostVethExists", err)
	}
	wantState(t, "node", n.ns, []string{"link " + veth + " veth down mtu 1500", "link stalepeer veth down mtu 1500"})
	wantState(t, "pod", podNS, nil)

	// A pod name already in the pod namespace: nothing is left behind.
	n.do(t, func() error { return netlink.LinkDel(stale) })
	if err := podNS.Do(func(ns.NetNS) error {
		return netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "eth0"}, PeerName: "eth0peer"})
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := createVeth(n, pod, pod.Interfaces[0]); err == nil {
		t.Fatal("CreateVeth over a taken pod interface name succeeded")
	}
	wantState(t, "node after the failure", n.ns, nil)
}

func TestPrivilegedEarlyVethDiscard(t *testing.T) {
	ctx := context.Background()
	n := newNode(t, "192.168.0.10")
	podNS := testutil.NewNS(t)
	pod := Pod{NetNS: podNS.Path(), MTU: 1500, Interfaces: []Interface{iface("default", "d", "10.0.0.8", 0, 0)}}
	early, err := createVeth(n, pod, pod.Interfaces[0])
	if err != nil {
		t.Fatal(err)
	}
	n.do(t, early.Discard)
	wantState(t, "node after Discard", n.ns, nil)
	wantState(t, "pod after Discard", podNS, nil)
	n.do(t, early.Discard)

	// A later pair under the same name is not the discarded one's.
	n.do(t, func() error { return Setup(ctx, pod) })
	n.do(t, early.Discard)
	n.do(t, func() error { return Check(ctx, pod) })
	if err := podnettest.Connect(n.ns.Path(), podNS.Path(), net.ParseIP("10.0.0.8")); err != nil {
		t.Errorf("node to pod after a stale Discard: %v", err)
	}
}
