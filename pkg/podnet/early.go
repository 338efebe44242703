package podnet

import (
	"errors"
	"fmt"
	"net"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// ErrHostVethExists: CreateVeth found a link under the host veth's name. It
// leaves it to Setup, which replaces a stale veth only once the pod has its
// addresses.
var ErrHostVethExists = errors.New("host veth name is taken")

// Veth is a pod's first veth pair made by CreateVeth before the pod's
// addresses are known: creating it is the costliest step of Setup, and made
// early it overlaps the wait for ipamd. Both ends are up, the host end with
// the node side's sysctls; nothing is routed to it and the pod end has no
// address. Setup or SetupBranch finishes it when given as Pod.Early;
// otherwise Discard removes it.
type Veth struct {
	netNS       string
	sandbox     string
	hostVeth    string
	containerIf string
	mtu         int
	hostMAC     net.HardwareAddr
	hostIndex   int
	// pod is the open pod side and host a node-side socket, until Setup
	// takes them.
	pod  *podSide
	host *netlink.Handle
}

// CreateVeth makes the pair Setup would make for an interface named
// hostVeth/containerIf in the pod namespace netnsPath of sandbox (see
// Pod.Sandbox). It creates nothing when the host name is taken
// (ErrHostVethExists) and leaves nothing behind when it fails.
func CreateVeth(netnsPath, sandbox, hostVeth, containerIf string, mtu int) (*Veth, error) {
	if hostVeth == "" || containerIf == "" {
		return nil, errors.New("host and container interface names are required")
	}
	host := openHost()
	v, err := makeVeth(host, netnsPath, sandbox, hostVeth, containerIf, mtu)
	if err != nil {
		host.Close()
		return nil, err
	}
	return v, nil
}

func makeVeth(host *netlink.Handle, netnsPath, sandbox, hostVeth, containerIf string, mtu int) (*Veth, error) {
	_, err := host.LinkByName(hostVeth)
	switch {
	case err == nil:
		return nil, fmt.Errorf("%s: %w", hostVeth, ErrHostVethExists)
	case !isNotFound(err):
		return nil, fmt.Errorf("find host veth %s: %w", hostVeth, err)
	}
	hostMAC, err := randomHostMAC()
	if err != nil {
		return nil, fmt.Errorf("host veth %s: %w", hostVeth, err)
	}
	podNS, err := ns.GetNS(netnsPath)
	if err != nil {
		return nil, fmt.Errorf("pod netns %s: %w", netnsPath, err)
	}
	defer podNS.Close()
	idx, err := addPair(host, podNS, containerIf, hostVeth, SandboxMark(sandbox), mtu, hostMAC)
	if err != nil {
		return nil, fmt.Errorf("pod netns %s: %w", netnsPath, err)
	}
	v := &Veth{netNS: netnsPath, sandbox: sandbox, hostVeth: hostVeth, containerIf: containerIf, mtu: mtu, hostMAC: hostMAC, hostIndex: idx, host: host}
	if v.pod, err = openPodSide(podNS, containerIf); err != nil {
		v.host = nil // the caller closes it
		return nil, errors.Join(fmt.Errorf("pod netns %s: %w", netnsPath, err), v.discard(host))
	}
	return v, nil
}

// takeHost hands the node-side socket over to the caller, who closes it:
// the early pair's, or a new one when there is none.
func (v *Veth) takeHost() *netlink.Handle {
	if v == nil || v.host == nil {
		return openHost()
	}
	h := v.host
	v.host = nil
	return h
}

// takePodSide hands the open pod side over to the caller, who closes it.
func (v *Veth) takePodSide() *podSide {
	if v == nil {
		return nil
	}
	p := v.pod
	v.pod = nil
	return p
}

// Discard deletes the pair; a pair already gone is fine. Only the link with
// the index CreateVeth made is deleted, never a later one of the same name.
func (v *Veth) Discard() error {
	if v == nil {
		return nil
	}
	v.takePodSide().close()
	host := v.takeHost()
	defer host.Close()
	return v.discard(host)
}

func (v *Veth) discard(host *netlink.Handle) error {
	link, err := host.LinkByName(v.hostVeth)
	if isNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("find host veth %s: %w", v.hostVeth, err)
	}
	if link.Attrs().Index != v.hostIndex {
		return nil
	}
	if err := host.LinkDel(link); err != nil && !errors.Is(err, unix.ENODEV) {
		return fmt.Errorf("delete veth %s: %w", v.hostVeth, err)
	}
	return nil
}

// fits reports whether v is the pair Setup would make for ifc of pod.
func (v *Veth) fits(pod Pod, ifc Interface) bool {
	return v != nil && ifc.Index == 0 && v.netNS == pod.NetNS && v.sandbox == pod.Sandbox && v.mtu == pod.MTU &&
		v.hostVeth == ifc.HostVeth && v.containerIf == ifc.ContainerIf
}

// claimEarly returns pod.Early when it is the pair of pod's first
// interface. A pair that is not is discarded: Setup makes its own.
func claimEarly(pod Pod) (*Veth, error) {
	if pod.Early == nil || len(pod.Interfaces) == 0 {
		return nil, pod.Early.Discard()
	}
	if pod.Early.fits(pod, pod.Interfaces[0]) {
		return pod.Early, nil
	}
	if err := pod.Early.Discard(); err != nil {
		return nil, fmt.Errorf("early veth pair: %w", err)
	}
	return nil, nil
}

// addPair creates, from the node's namespace, the veth pair with its pod
// end in podNS, marks the host end with mark (SandboxMark) and brings it
// up with the node side's sysctls: no namespace switch. It returns the host
// end's ifindex. A pair it cannot finish is deleted.
func addPair(host *netlink.Handle, podNS ns.NetNS, containerIf, hostVeth, mark string, mtu int, hostMAC net.HardwareAddr) (int, error) {
	veth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: hostVeth, MTU: mtu, HardwareAddr: hostMAC},
		PeerName:      containerIf,
		PeerNamespace: netlink.NsFd(int(podNS.Fd())),
	}
	if err := host.LinkAdd(veth); err != nil {
		return 0, fmt.Errorf("create veth %s/%s: %w", containerIf, hostVeth, err)
	}
	// LinkAdd has looked up the new link's index. The kernel ignores an
	// alias in the creating request, so it is set on its own.
	idx, err := upHostVeth(host, veth, mark)
	if err != nil {
		if derr := deleteLinkByName(hostVeth); derr != nil {
			return 0, errors.Join(err, derr)
		}
		return 0, err
	}
	return idx, nil
}
