package egress

import (
	"cmp"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// PodGatewayV6 is the pod's IPv6 egress gateway, answered by a permanent
// neighbour entry for the host veth's MAC, as aws-cni does for fe80::1.
var PodGatewayV6 = net.ParseIP("fe80::1")

// HostVethName is the node side of a pod's egress veth: "egr" and 12 hex
// characters of SHA-1(containerID "/" ifname). Upstream draws a random
// name; a derived one lets DEL and GC find the link without state and keeps
// it clear of the aws-cni veth prefix that SNAT and connmark rules match.
func HostVethName(containerID, ifname string) string {
	sum := sha1.Sum([]byte(containerID + "/" + ifname))
	return "egr" + hex.EncodeToString(sum[:])[:12]
}

// ErrNoMainIf is Setup's error when IPv6 egress finds no interface named
// MainIf (CNI_IFNAME) in the pod: IPv6 is turned off on that interface,
// and wired beside another the pod would keep IPv6 on its real main
// interface next to v6if0's default route.
var ErrNoMainIf = errors.New("names no interface in the pod")

// Wiring is one pod's egress interface.
type Wiring struct {
	Family   Family
	PodNS    string // path of the pod's network namespace
	MainIf   string // CNI_IFNAME, the pod's aws-cni interface
	HostVeth string
	MTU      int
	Lease    Lease
	Routes   []netip.Prefix
	HostNS   ns.NetNS
}

// Interfaces are the two ends Setup created.
type Interfaces struct {
	Host, Pod net.Interface
	// mainIPv6Was is the main interface's disable_ipv6 before Setup set it
	// to 1; "" when Setup did not change it.
	mainIPv6Was string
}

// Setup creates the veth and the addresses and routes on both ends,
// replacing an existing egress veth of the pod (a repeated ADD). When it
// fails it puts the main interface's disable_ipv6 back; a caller failing
// after it does so with RestoreMainIf.
func (w Wiring) Setup() (Interfaces, error) {
	out, err := w.setup()
	if err != nil {
		if rerr := w.RestoreMainIf(out); rerr != nil {
			err = errors.Join(err, rerr)
		}
		out.mainIPv6Was = ""
	}
	return out, err
}

func (w Wiring) setup() (Interfaces, error) {
	var out Interfaces
	podNS, err := ns.GetNS(w.PodNS)
	if err != nil {
		return out, fmt.Errorf("open pod netns %s: %w", w.PodNS, err)
	}
	defer podNS.Close()
	if err := delLinkIfExists(w.HostVeth); err != nil {
		return out, err
	}
	err = podNS.Do(func(ns.NetNS) error {
		if w.Family == V6 {
			// Checked before anything in the pod changes.
			if l, err := linkIfExists(w.MainIf); err != nil || l == nil {
				return cmp.Or(err, fmt.Errorf("CNI_IFNAME %s %w", w.MainIf, ErrNoMainIf))
			}
		}
		if err := clearPodIf(w.Family, w.HostNS, w.HostVeth); err != nil {
			return err
		}
		if w.Family == V6 {
			// The pod's own interface is IPv4-only: IPv6 leaves by v6if0.
			was, err := swapSysctl("net/ipv6/conf/"+w.MainIf+"/disable_ipv6", "1")
			if err != nil {
				return err
			}
			out.mainIPv6Was = was
		}
		ifs, err := w.createVeth()
		if err != nil {
			return err
		}
		out.Host, out.Pod = ifs.Host, ifs.Pod
		return w.setupPodSide(out.Host.HardwareAddr)
	})
	if err != nil {
		return out, err
	}
	return out, w.setupHostSide()
}

// RestoreMainIf puts back the main interface's disable_ipv6 that Setup
// changed (ADD's undo path: a failed ADD leaves the pod's IPv6 as it found
// it). A pod namespace already gone is not an error.
func (w Wiring) RestoreMainIf(ifs Interfaces) error {
	if ifs.mainIPv6Was == "" {
		return nil
	}
	err := ns.WithNetNSPath(w.PodNS, func(ns.NetNS) error {
		return writeSysctl("net/ipv6/conf/"+w.MainIf+"/disable_ipv6", ifs.mainIPv6Was)
	})
	var nsErr ns.NSPathNotExistErr
	if err != nil && !errors.As(err, &nsErr) {
		return fmt.Errorf("restore disable_ipv6=%s on pod %s: %w", ifs.mainIPv6Was, w.MainIf, err)
	}
	return nil
}

func (w Wiring) setupPodSide(hostMAC net.HardwareAddr) error {
	name := w.Family.PodIfName()
	link, err := netlink.LinkByName(name)
	if err != nil {
		return fmt.Errorf("find %s: %w", name, err)
	}
	if w.Family == V6 {
		for _, kv := range [][2]string{{"disable_ipv6", "0"}, {"accept_dad", "0"}} {
			if err := writeSysctl("net/ipv6/conf/"+name+"/"+kv[0], kv[1]); err != nil {
				return err
			}
		}
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return fmt.Errorf("set %s up: %w", name, err)
	}
	addr := &netlink.Addr{IPNet: prefixNet(w.Lease.Addr), Flags: unix.IFA_F_NOPREFIXROUTE}
	if w.Family == V6 {
		addr.Flags |= unix.IFA_F_NODAD
	}
	if err := netlink.AddrAdd(link, addr); err != nil {
		return fmt.Errorf("add %s to %s: %w", w.Lease.Addr.String(), name, err)
	}
	idx := link.Attrs().Index
	gw, src := net.IP(w.Lease.GW.AsSlice()), net.IP(w.Lease.Addr.Addr().AsSlice())
	if w.Family == V6 {
		// No source hint: the kernel picks the ULA, the only global
		// address the pod has on this family.
		gw, src = PodGatewayV6, nil
		if err := netlink.NeighSet(&netlink.Neigh{LinkIndex: idx, Family: unix.AF_INET6, State: netlink.NUD_PERMANENT, IP: gw, HardwareAddr: hostMAC}); err != nil {
			return fmt.Errorf("neighbour %s on %s: %w", gw, name, err)
		}
	} else {
		if err := netlink.RouteReplace(&netlink.Route{LinkIndex: idx, Dst: hostRoute(gw), Scope: netlink.SCOPE_LINK, Src: src}); err != nil {
			return fmt.Errorf("route to %s on %s: %w", gw, name, err)
		}
	}
	for _, r := range w.Routes {
		if err := netlink.RouteReplace(&netlink.Route{LinkIndex: idx, Dst: prefixNet(r), Gw: gw, Src: src}); err != nil {
			return fmt.Errorf("route %s via %s on %s: %w", r, gw, name, err)
		}
	}
	return nil
}

func (w Wiring) setupHostSide() error {
	link, err := netlink.LinkByName(w.HostVeth)
	if err != nil {
		return fmt.Errorf("find %s: %w", w.HostVeth, err)
	}
	if w.Family == V4 {
		if err := writeSysctl("net/ipv4/ip_forward", "1"); err != nil {
			return err
		}
		// The gateway is on every egress veth: each pod sees it on-link.
		if err := netlink.AddrAdd(link, &netlink.Addr{IPNet: hostRoute(w.Lease.GW.AsSlice()), Scope: unix.RT_SCOPE_LINK}); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("add %s to %s: %w", w.Lease.GW, w.HostVeth, err)
		}
	} else {
		if err := writeSysctl("net/ipv6/conf/all/forwarding", "1"); err != nil {
			return err
		}
		// The node end answers neighbour solicitations for the pod at once,
		// not after duplicate address detection of its link-local address.
		if err := writeSysctl("net/ipv6/conf/"+w.HostVeth+"/accept_dad", "0"); err != nil {
			return err
		}
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return fmt.Errorf("set %s up: %w", w.HostVeth, err)
	}
	if err := checkRouteFree(w.Lease.Addr.Addr(), link.Attrs().Index); err != nil {
		return err
	}
	if err := netlink.RouteReplace(&netlink.Route{LinkIndex: link.Attrs().Index, Dst: hostRoute(w.Lease.Addr.Addr().AsSlice()), Scope: netlink.SCOPE_LINK}); err != nil {
		return fmt.Errorf("route %s to %s: %w", w.Lease.Addr.Addr(), w.HostVeth, err)
	}
	return nil
}

// Teardown removes the pod's egress veth (with it the host routes and the
// gateway address), leaving another attachment's: in the pod's namespace
// only a link that is this attachment's (removeOwnPodIf; held are the
// addresses the attachment holds). A missing namespace or link is not an
// error: the runtime may have destroyed the namespace already.
func Teardown(f Family, podNSPath, hostVeth string, held []netip.Addr) error {
	var errs []error
	if podNSPath != "" {
		err := withHostNS(func(hostNS ns.NetNS) error {
			return ns.WithNetNSPath(podNSPath, func(ns.NetNS) error { return removeOwnPodIf(f, hostNS, hostVeth, held) })
		})
		var nsErr ns.NSPathNotExistErr
		if err != nil && !errors.As(err, &nsErr) && !errors.Is(err, os.ErrNotExist) {
			var notNS ns.NSPathNotNSErr
			if !errors.As(err, &notNS) {
				errs = append(errs, fmt.Errorf("remove %s from pod %s: %w", f.PodIfName(), podNSPath, err))
			}
		}
	}
	errs = append(errs, delLinkIfExists(hostVeth))
	return errors.Join(errs...)
}

// withHostNS runs f with a handle on the calling thread's namespace, the
// node's.
func withHostNS(f func(ns.NetNS) error) error {
	hostNS, err := ns.GetCurrentNS()
	if err != nil {
		return fmt.Errorf("node netns: %w", err)
	}
	defer hostNS.Close()
	return f(hostNS)
}

func delLinkIfExists(name string) error {
	l, err := linkIfExists(name)
	if err != nil || l == nil {
		return err
	}
	return delLink(l)
}

// linkIfExists finds the link named name: nil, and no error, when there is
// none (a retried DEL, or a link already gone).
func linkIfExists(name string) (netlink.Link, error) {
	l, err := netlink.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil, nil
		}
		return nil, fmt.Errorf("find link %s: %w", name, err)
	}
	return l, nil
}

// delLink deletes l; one gone meanwhile is as good as deleted.
func delLink(l netlink.Link) error {
	if err := netlink.LinkDel(l); err != nil && !errors.Is(err, unix.ENODEV) {
		return fmt.Errorf("delete link %s: %w", l.Attrs().Name, err)
	}
	return nil
}

func hostRoute(ip net.IP) *net.IPNet {
	if v4 := ip.To4(); v4 != nil {
		return &net.IPNet{IP: v4, Mask: net.CIDRMask(32, 32)}
	}
	return &net.IPNet{IP: ip, Mask: net.CIDRMask(128, 128)}
}

// writeSysctl sets key unless it already has value; a
// missing key (the interface has IPv6 compiled out) is not an error.
func writeSysctl(key, value string) error {
	p := filepath.Join("/proc/sys", key)
	cur, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err == nil && string(cur) == value+"\n" {
		return nil
	}
	if err := os.WriteFile(p, []byte(value), 0o644); err != nil {
		return fmt.Errorf("sysctl %s=%s: %w", key, value, err)
	}
	return nil
}

// swapSysctl sets key to value and returns its previous value, or "" when
// it already had value or does not exist (nothing to put back).
func swapSysctl(key, value string) (string, error) {
	cur, err := os.ReadFile(filepath.Join("/proc/sys", key))
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("sysctl %s: %w", key, err)
	}
	was := strings.TrimSpace(string(cur))
	if was == value {
		return "", nil
	}
	if err := writeSysctl(key, value); err != nil {
		return "", err
	}
	return was, nil
}

// createVeth creates the pair from inside the pod's namespace with the peer
// placed straight into the node's, and returns both ends.
func (w Wiring) createVeth() (Interfaces, error) {
	name := w.Family.PodIfName()
	veth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: name, MTU: w.MTU},
		PeerName:      w.HostVeth,
		PeerNamespace: netlink.NsFd(int(w.HostNS.Fd())),
	}
	if err := netlink.LinkAdd(veth); err != nil {
		return Interfaces{}, fmt.Errorf("create egress veth %s/%s: %w", name, w.HostVeth, err)
	}
	pod, err := net.InterfaceByName(name)
	if err != nil {
		return Interfaces{}, fmt.Errorf("find %s: %w", name, err)
	}
	var host *net.Interface
	err = w.HostNS.Do(func(ns.NetNS) error {
		l, err := netlink.LinkByName(w.HostVeth)
		if err != nil {
			return err
		}
		if err := netlink.LinkSetMTU(l, w.MTU); err != nil {
			return err
		}
		host, err = net.InterfaceByName(w.HostVeth)
		return err
	})
	if err != nil {
		return Interfaces{}, fmt.Errorf("node end %s of the egress veth: %w", w.HostVeth, err)
	}
	return Interfaces{Host: *host, Pod: *pod}, nil
}

func prefixNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}
