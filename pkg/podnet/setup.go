package podnet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"
	"github.com/vpc-cni/vpc-cni/pkg/hostcontract"
	"github.com/vpc-cni/vpc-cni/pkg/nldump"
	"golang.org/x/sys/unix"
)

// dadTimeout bounds the wait for IPv6 duplicate address detection when the
// caller's context allows longer.
const dadTimeout = 10 * time.Second

// dadPoll is how often the pod's addresses are re-read while DAD runs.
const dadPoll = 50 * time.Millisecond

// Setup wires every interface of pod (docs/compatibility.md, "Per-pod
// state"): the veth pair, the pod-side routes, address and gateway neighbour,
// then the node-side route to the pod and its policy rules. Routes and rules
// are replaced or tolerated when already present, so a retried ADD converges.
func Setup(ctx context.Context, pod Pod) error {
	if err := validatePod(pod); err != nil {
		return errors.Join(err, pod.Early.Discard())
	}
	early, err := claimEarly(pod)
	if err != nil {
		return err
	}
	host := early.takeHost()
	defer host.Close()

	hostIndex := make([]int, len(pod.Interfaces))
	for i, ifc := range pod.Interfaces {
		if i > 0 {
			early = nil
		}
		if hostIndex[i], err = setupVeth(ctx, host, pod, ifc, early); err != nil {
			return err
		}
	}
	// The pod lock covers the node side only: a late DEL of another
	// sandbox never removes a veth, and IPv6's DAD wait stays outside.
	lock := lockPod(ctx, pod.LockFile, pod.lockName(), addLockWait)
	defer lock.unlock()
	if err := lockWaitEnded(ctx, lock); err != nil {
		return err
	}
	for i, ifc := range pod.Interfaces {
		if err := addHostRoutesLocked(ctx, host, pod.LockFile, ifc, hostIndex[i]); err != nil {
			return err
		}
	}
	return nil
}

func validatePod(pod Pod) error {
	if pod.NetNS == "" {
		return errors.New("pod netns path is empty")
	}
	if len(pod.Interfaces) == 0 {
		return errors.New("pod has no interfaces")
	}
	for _, ifc := range pod.Interfaces {
		if err := ifc.validate(); err != nil {
			return err
		}
	}
	return nil
}

// setupVeth creates one veth pair, or finishes early (made by CreateVeth
// for ifc), and configures its pod side; it returns the host end's
// ifindex. The pair is created from the node's namespace with its pod end
// in the pod's, so neither end moves between namespaces, and the host
// end's sysctls are set before it comes up.
func setupVeth(ctx context.Context, host *netlink.Handle, pod Pod, ifc Interface, early *Veth) (int, error) {
	netnsPath := pod.NetNS
	v6 := isV6(ifc.Address)
	side := early.takePodSide()
	// The namespace is opened only when something needs it: an early pair
	// with its pod side open has an IPv4 pod configured through that side's
	// socket, and opening the path (statfs, open, the runtime poller's
	// fcntl and epoll calls, close) would be eight system calls for nothing.
	var podNS ns.NetNS
	if side == nil || v6 {
		var err error
		if podNS, err = ns.GetNS(netnsPath); err != nil {
			side.close()
			return 0, fmt.Errorf("pod netns %s: %w", netnsPath, err)
		}
		defer podNS.Close()
	}
	hostMAC, hostIndex, err := hostEnd(host, podNS, pod, ifc, early)
	if err != nil {
		side.close()
		return 0, fmt.Errorf("pod netns %s: %w", netnsPath, err)
	}
	if side == nil {
		if side, err = openPodSide(podNS, ifc.ContainerIf); err != nil {
			return 0, fmt.Errorf("pod netns %s: %w", netnsPath, err)
		}
	}
	defer side.close()
	if v6 {
		// Runtimes may create the pod netns with IPv6 disabled; sysctls
		// are read and written in the namespace of the calling thread.
		err = podNS.Do(func(ns.NetNS) error {
			for _, name := range []string{ifc.ContainerIf, "lo"} {
				if err := setSysctl("net/ipv6/conf/"+name+"/disable_ipv6", "0"); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err == nil {
		err = configurePodSide(side, ifc, Gateway(ifc.Index, v6), hostMAC)
	}
	if err == nil && v6 {
		err = waitDAD(ctx, side)
	}
	if err != nil {
		return 0, fmt.Errorf("pod netns %s: %w", netnsPath, err)
	}
	return hostIndex, nil
}

// hostEnd returns the MAC and ifindex of the host end of ifc's pair:
// early's, or those of a pair it makes, marked as pod's sandbox's, after
// deleting a stale one of an earlier sandbox (or of this one's earlier ADD).
func hostEnd(host *netlink.Handle, podNS ns.NetNS, pod Pod, ifc Interface, early *Veth) (net.HardwareAddr, int, error) {
	if early != nil {
		return early.hostMAC, early.hostIndex, nil
	}
	if err := deleteStaleHostVeth(host, ifc); err != nil {
		return nil, 0, err
	}
	hostMAC, err := randomHostMAC()
	if err != nil {
		return nil, 0, fmt.Errorf("host veth %s: %w", ifc.HostVeth, err)
	}
	idx, err := addPair(host, podNS, ifc.ContainerIf, ifc.HostVeth, SandboxMark(pod.Sandbox), pod.MTU, hostMAC)
	if err != nil {
		return nil, 0, err
	}
	return hostMAC, idx, nil
}

// upHostVeth marks the host end with mark (none when empty), sets its
// sysctls and brings it up; it returns the link's index.
func upHostVeth(host *netlink.Handle, veth *netlink.Veth, mark string) (int, error) {
	name := veth.Name
	if mark != "" {
		if err := host.LinkSetAlias(veth, mark); err != nil {
			return 0, fmt.Errorf("mark host veth %s as %q: %w", name, mark, err)
		}
	}
	if err := setIfaceSysctls(name); err != nil {
		return 0, fmt.Errorf("host veth %s: %w", name, err)
	}
	// The node resolves an IPv6 pod's address through the host end's
	// link-local address, which DAD would keep tentative for a second
	// or more after ADD returns: a kubelet probe in that window waits or
	// fails. The link has only the pod at its other end, whose MAC
	// differs, so there is nothing to detect.
	if err := setSysctl("net/ipv6/conf/"+name+"/accept_dad", "0"); err != nil {
		return 0, fmt.Errorf("host veth %s: %w", name, err)
	}
	if err := host.LinkSetUp(veth); err != nil {
		return 0, fmt.Errorf("set host veth %s up: %w", name, err)
	}
	return veth.Index, nil
}

// configurePodSide installs, inside the pod netns, the gateway route, the
// default route, the pod address and the gateway's permanent neighbour
// entry. The gateway is not an address anywhere: the neighbour entry sends
// every packet straight to the host veth, where the node routes it.
func configurePodSide(side *podSide, ifc Interface, gw net.IP, hostMAC net.HardwareAddr) error {
	h, idx := side.h, side.link.Attrs().Index
	table := hostcontract.MainTable
	if ifc.Index > 0 {
		table = ifc.Index
	}
	gwRoute := &netlink.Route{LinkIndex: idx, Dst: hostPrefix(gw), Scope: netlink.SCOPE_LINK, Table: table}
	if err := h.RouteReplace(gwRoute); err != nil {
		return fmt.Errorf("route %s dev %s scope link table %d: %w", gwRoute.Dst, ifc.ContainerIf, table, err)
	}
	if ifc.Index > 0 {
		rule := netlink.NewRule()
		rule.Family = family(ifc.Address)
		rule.Src = hostPrefix(ifc.Address.IP)
		rule.Table = table
		rule.Priority = hostcontract.PriorityPodFromIf
		if err := h.RuleAdd(rule); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("rule from %s lookup %d in pod netns: %w", rule.Src, table, err)
		}
	}
	def := &netlink.Route{LinkIndex: idx, Dst: defaultDst(isV6(ifc.Address)), Gw: gw, Table: table}
	if err := h.RouteReplace(def); err != nil {
		return fmt.Errorf("route %s via %s dev %s table %d: %w", def.Dst, gw, ifc.ContainerIf, table, err)
	}
	addr := &netlink.Addr{IPNet: hostPrefix(ifc.Address.IP)}
	if err := h.AddrReplace(side.link, addr); err != nil {
		return fmt.Errorf("address %s on %s: %w", addr.IPNet, ifc.ContainerIf, err)
	}
	neigh := &netlink.Neigh{
		LinkIndex:    idx,
		Family:       family(ifc.Address),
		State:        netlink.NUD_PERMANENT,
		IP:           gw,
		HardwareAddr: hostMAC,
	}
	if err := h.NeighSet(neigh); err != nil {
		return fmt.Errorf("neighbour %s lladdr %s dev %s: %w", gw, hostMAC, ifc.ContainerIf, err)
	}
	return nil
}

func defaultDst(v6 bool) *net.IPNet {
	if v6 {
		return &net.IPNet{IP: net.IPv6zero, Mask: net.CIDRMask(0, 128)}
	}
	return &net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)}
}

// waitDAD returns once no IPv6 address on link is tentative, so the pod can
// use its address as soon as the runtime starts it.
func waitDAD(ctx context.Context, side *podSide) error {
	link := side.link
	ctx, cancel := context.WithTimeout(ctx, dadTimeout)
	defer cancel()
	tick := time.NewTicker(dadPoll)
	defer tick.Stop()
	for {
		addrs, err := nldump.Retry(func() ([]netlink.Addr, error) { return side.h.AddrList(link, unix.AF_INET6) })
		if err != nil {
			return fmt.Errorf("list IPv6 addresses of %s: %w", link.Attrs().Name, err)
		}
		pending := false
		for _, a := range addrs {
			if a.Flags&unix.IFA_F_DADFAILED != 0 {
				return fmt.Errorf("duplicate address detection failed for %s on %s", a.IPNet, link.Attrs().Name)
			}
			if a.Flags&unix.IFA_F_TENTATIVE != 0 {
				pending = true
			}
		}
		if !pending {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for IPv6 duplicate address detection on %s: %w", link.Attrs().Name, ctx.Err())
		case <-tick.C:
		}
	}
}

// deleteStaleHostVeth removes a veth left under ifc's host veth name by
// an earlier sandbox of the same pod (with it goes that sandbox's end), as
// upstream does. Only a veth is removed: the name is prefix+hash, and
// whatever else carries it was not made by the plugin. Nor is a veth whose
// pod end is another interface slot's: that is another pod's
// (HostVethTakenError), which upstream would cut off.
func deleteStaleHostVeth(host *netlink.Handle, ifc Interface) error {
	name := ifc.HostVeth
	link, err := host.LinkByName(name)
	if isNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("find stale host veth %s: %w", name, err)
	}
	if _, ok := link.(*netlink.Veth); !ok {
		return fmt.Errorf("host veth name %s is taken by a %s link the plugin did not create", name, link.Type())
	}
	// A peer that cannot be named (its namespace has no id on the node)
	// proves nothing: the veth goes as before.
	if peer, err := vethPeerName(link); err == nil && otherSlot(peer, ifc) {
		return &HostVethTakenError{HostVeth: name, Index: ifc.Index, PeerName: peer}
	}
	if err := host.LinkDel(link); err != nil && !errors.Is(err, unix.ENODEV) {
		return fmt.Errorf("delete stale host veth %s: %w", name, err)
	}
	return nil
}

// deleteLinkByName removes a link of the calling thread's namespace if it
// exists.
func deleteLinkByName(name string) error {
	link, err := netlink.LinkByName(name)
	if isNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("find link %s: %w", name, err)
	}
	if err := netlink.LinkDel(link); err != nil && !errors.Is(err, unix.ENODEV) {
		return fmt.Errorf("delete link %s: %w", name, err)
	}
	return nil
}
