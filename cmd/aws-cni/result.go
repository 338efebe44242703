package main

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"

	current "github.com/containernetworking/cni/pkg/types/100"

	"github.com/vpc-cni/vpc-cni/pkg/hostcontract"
	"github.com/vpc-cni/vpc-cni/pkg/ipamclient"
	"github.com/vpc-cni/vpc-cni/pkg/podnet"
	"github.com/vpc-cni/vpc-cni/pkg/vethname"
)

// podInterfaces turns ipamd's address list into the pod's interfaces.
func podInterfaces(meta []*ipamclient.IPAllocationMetadata, vethPrefix, ifName string, k k8sArgs) ([]podnet.Interface, error) {
	ifs := make([]podnet.Interface, 0, len(meta))
	for i, m := range meta {
		s := m.Ipv4Addr
		if s == "" {
			s = m.Ipv6Addr
		}
		ip := net.ParseIP(s)
		if ip == nil {
			return nil, fmt.Errorf("ipamd address %d %q is not an IP address", i, s)
		}
		ifs = append(ifs, podnet.Interface{
			Index:       i,
			HostVeth:    vethname.HostVethName(vethPrefix, k.PodNamespace, k.PodName, i),
			ContainerIf: vethname.ContainerIfName(ifName, i),
			Address:     singleHost(ip),
			RouteTable:  int(m.RouteTableId),
		})
	}
	return ifs, nil
}

func singleHost(ip net.IP) *net.IPNet {
	if v4 := ip.To4(); v4 != nil {
		return &net.IPNet{IP: v4, Mask: net.CIDRMask(32, 32)}
	}
	return &net.IPNet{IP: ip, Mask: net.CIDRMask(128, 128)}
}

// buildResult encodes the ADD result exactly as upstream does, because DEL
// (ours or upstream's, after an up- or downgrade) reads it back when ipamd
// cannot answer: per interface the host veth, then the container interface
// whose Mac holds the route table number, and finally the never-created
// dummy interface whose Mac is the branch ENI's VLAN id, or "0" with the
// device number in Sandbox.
func buildResult(netns string, ifs []podnet.Interface, gw net.IP, dummy string, vlanID, deviceNumber int) *current.Result {
	res := &current.Result{CNIVersion: current.ImplementedSpecVersion}
	for _, ifc := range ifs {
		res.Interfaces = append(res.Interfaces,
			&current.Interface{Name: ifc.HostVeth},
			&current.Interface{Name: ifc.ContainerIf, Sandbox: netns, Mac: strconv.Itoa(ifc.RouteTable)})
		idx := len(res.Interfaces) - 1
		res.IPs = append(res.IPs, &current.IPConfig{Interface: &idx, Address: *ifc.Address, Gateway: gw})
	}
	d := &current.Interface{Name: dummy, Mac: strconv.Itoa(vlanID)}
	if vlanID == 0 {
		d.Sandbox = strconv.Itoa(deviceNumber)
	}
	res.Interfaces = append(res.Interfaces, d)
	return res
}

var errNoDummy = errors.New("prevResult has no dummy interface")

// prevWiring is what a CNI result says about a pod's wiring.
type prevWiring struct {
	// VLANID is non-zero for branch-ENI pods.
	VLANID int
	Pod    podnet.Pod
	// Gateway is the first interface's gateway (branch ENI subnet router).
	Gateway net.IP
}

// fromPrevResult reads back the encoding of buildResult (docs/compatibility.md, "Rule priorities, route tables and gateways").
// Host veth names are taken from the result where present; each must be
// the one of pod k's interface (its name ends with the hash of the pod's
// namespace and name, whatever the prefix), or the result is another
// pod's (a runtime that mixed its cached results up) and DEL must not
// remove that pod's route and rules.
func fromPrevResult(res *current.Result, netns, ifName string, k k8sArgs) (prevWiring, error) {
	w := prevWiring{Pod: podnet.Pod{NetNS: netns}}
	dummy, vlan, err := dummyVLAN(res)
	if err != nil {
		return w, err
	}
	w.VLANID = vlan
	defaultTable := hostcontract.MainTable
	if vlan == 0 {
		device, err := strconv.Atoi(dummy.Sandbox)
		if err != nil {
			return w, fmt.Errorf("prevResult dummy interface Sandbox %q is not a device number: %w", dummy.Sandbox, err)
		}
		if device > 0 {
			defaultTable = device + 1
		}
	}
	for i := 0; ; i++ {
		name := vethname.ContainerIfName(ifName, i)
		idx := slices.IndexFunc(res.Interfaces, func(c *current.Interface) bool { return c != nil && c.Name == name && c.Sandbox != "" })
		if idx < 0 {
			break
		}
		ifc := podnet.Interface{Index: i, ContainerIf: name, RouteTable: defaultTable}
		if idx > 0 && res.Interfaces[idx-1] != nil && res.Interfaces[idx-1].Sandbox == "" {
			ifc.HostVeth = res.Interfaces[idx-1].Name
			want := vethname.HostVethName("", k.PodNamespace, k.PodName, i)
			if !strings.HasSuffix(ifc.HostVeth, want) {
				return w, fmt.Errorf("prevResult host interface %s is not pod %s/%s's (its name would end in %s)", ifc.HostVeth, k.PodNamespace, k.PodName, want)
			}
		}
		if mac := res.Interfaces[idx].Mac; mac != "" {
			if ifc.RouteTable, err = strconv.Atoi(mac); err != nil {
				return w, fmt.Errorf("prevResult interface %s Mac %q is not a route table: %w", name, mac, err)
			}
		}
		for _, ipc := range res.IPs {
			if ipc != nil && ipc.Interface != nil && *ipc.Interface == idx {
				if ipc.Address.IP == nil {
					// Without this check the teardown would delete rules
					// matching any address: every pod's.
					return w, fmt.Errorf("prevResult IP of interface %s has no address", name)
				}
				ifc.Address = singleHost(ipc.Address.IP)
				if i == 0 {
					w.Gateway = ipc.Gateway
				}
				break
			}
		}
		if ifc.Address == nil {
			return w, fmt.Errorf("prevResult has no address for interface %s", name)
		}
		w.Pod.Interfaces = append(w.Pod.Interfaces, ifc)
	}
	if len(w.Pod.Interfaces) == 0 {
		return w, fmt.Errorf("prevResult has no interface %s in a sandbox", ifName)
	}
	return w, nil
}

// dummyVLAN finds the dummy interface of a result and the VLAN id in its
// Mac (0 for pods that are not branch-ENI pods).
func dummyVLAN(res *current.Result) (*current.Interface, int, error) {
	i := slices.IndexFunc(res.Interfaces, func(c *current.Interface) bool { return c != nil && strings.HasPrefix(c.Name, "dummy") })
	if i < 0 {
		return nil, 0, errNoDummy
	}
	d := res.Interfaces[i]
	vlan, err := strconv.Atoi(d.Mac)
	if err != nil {
		return nil, 0, fmt.Errorf("prevResult dummy interface Mac %q is not a VLAN id: %w", d.Mac, err)
	}
	if vlan != 0 {
		// DEL removes routes of the branch's table without asking ipamd.
		if err := podnet.CheckVLANID(vlan); err != nil {
			return nil, 0, fmt.Errorf("prevResult dummy interface Mac %q: %w", d.Mac, err)
		}
	}
	return d, vlan, nil
}
