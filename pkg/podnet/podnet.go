// Package podnet wires a pod's network namespace to the node: the veth pair,
// the pod's routes, address and gateway neighbour, and the node-side routes
// and policy rules that steer traffic to and from the pod. It is the kernel
// half of the aws-cni plugin; the layout matches upstream's exactly so a node
// can switch between upstream aws-node and vpc-cni with running pods.
//
// Every entry point must be called from a goroutine locked to an OS thread
// whose network namespace is the node's ("host") namespace: the plugin locks
// its main thread at start-up, tests call from inside ns.Do.
package podnet

import (
	"fmt"
	"net"
	"strconv"

	"github.com/vpc-cni/vpc-cni/pkg/hostcontract"
	"golang.org/x/sys/unix"
)

// Interface is one interface of a pod: a veth pair with one address.
type Interface struct {
	// Index is 0 for the runtime's interface and i>0 for the additional
	// interfaces of multi-NIC pods; it picks the pod-side gateway and table.
	Index int
	// HostVeth and ContainerIf are the two ends' names (see pkg/vethname).
	HostVeth    string
	ContainerIf string
	// Address is the pod address, a /32 or /128.
	Address *net.IPNet
	// RouteTable is the node table for traffic from this address: the ENI's
	// table, or ≤1 / 254 for the primary ENI (main).
	RouteTable int
}

// Pod describes the interfaces of one pod sandbox.
type Pod struct {
	// NetNS is the path of the pod's network namespace.
	NetNS string
	// Sandbox is the sandbox's container id (CNI_CONTAINERID). ADD marks
	// the host veths with it (SandboxMark); teardown leaves alone a host
	// veth marked with another sandbox's, and the route and rules of an
	// address routed through it.
	Sandbox string
	// LockFile is the file of the pod locks (see lockPod) that serialise
	// an ADD's host wiring with a DEL's ownership checks and teardown;
	// empty means no lock.
	LockFile string
	// MTU of both veth ends.
	MTU        int
	Interfaces []Interface
	// Early optionally is the first interface's pair, made ahead by
	// CreateVeth. Setup and SetupBranch take it over: they finish it, or
	// discard it and make their own when it does not fit Interfaces[0].
	Early *Veth
}

// HostTable maps a route table number from ipamd or a CNI result to the node
// table used for the from-pod rule: 0, 1 and 254 all mean main.
func HostTable(t int) int {
	if t <= 1 {
		return hostcontract.MainTable
	}
	return t
}

// Gateway returns the pod-side gateway of interface index: 169.254.1.(i+1)
// for IPv4 pods and fe80::(i+1) for IPv6 pods.
func Gateway(index int, v6 bool) net.IP {
	if v6 {
		ip := net.ParseIP("fe80::")
		ip[15] = byte(index + 1)
		return ip
	}
	return net.IPv4(169, 254, 1, byte(index+1)).To4()
}

// vlanLinkPrefix starts the node-side name of every branch ENI's VLAN link.
const vlanLinkPrefix = "vlan.eth."

// VLANLinkName is the node-side name of a branch ENI's VLAN link.
func VLANLinkName(vlanID int) string {
	return vlanLinkPrefix + strconv.Itoa(vlanID)
}

// lockName is the host veth name that keys pod's lock: its first
// interface's.
func (pod Pod) lockName() string {
	if len(pod.Interfaces) == 0 {
		return ""
	}
	return pod.Interfaces[0].HostVeth
}

func isV6(a *net.IPNet) bool { return a.IP.To4() == nil }

func family(a *net.IPNet) int {
	if isV6(a) {
		return unix.AF_INET6
	}
	return unix.AF_INET
}

// hostPrefix returns the address as a single-host prefix (/32 or /128).
func hostPrefix(ip net.IP) *net.IPNet {
	if v4 := ip.To4(); v4 != nil {
		return &net.IPNet{IP: v4, Mask: net.CIDRMask(32, 32)}
	}
	return &net.IPNet{IP: ip.To16(), Mask: net.CIDRMask(128, 128)}
}

func (ifc Interface) validate() error {
	switch {
	case ifc.HostVeth == "" || ifc.ContainerIf == "":
		return fmt.Errorf("interface %d: host and container interface names are required", ifc.Index)
	case ifc.Address == nil || ifc.Address.IP == nil:
		return fmt.Errorf("interface %d (%s): no pod address", ifc.Index, ifc.ContainerIf)
	case ifc.Index < 0 || ifc.Index > 250:
		return fmt.Errorf("interface %s: index %d out of range", ifc.ContainerIf, ifc.Index)
	}
	return nil
}
