package ipamd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/vpc-cni/vpc-cni/pkg/awsutils"
	"github.com/vpc-cni/vpc-cni/pkg/networkutils"
	"github.com/vpc-cni/vpc-cni/rpc"
)

// Security groups for pods (ENABLE_POD_ENI): the VPC resource controller
// attaches a branch ENI per pod to the node's trunk ENI and writes it into
// the pod annotation vpc.amazonaws.com/pod-eni; ipamd only relays it.
const (
	PodENIAnnotation = "vpc.amazonaws.com/pod-eni"
	PodENIResource   = "vpc.amazonaws.com/pod-eni" // resource-limit name prefix
	featureSGPP      = "SecurityGroupsForPods"
	featureCustomNet = "CustomNetworking"
)

// PodInfo is what ipamd needs to know about a pod for branch ENIs.
type PodInfo struct {
	Found bool
	UID   string
	// WantsBranchENI: the first container's limits name a resource starting
	// with vpc.amazonaws.com/pod-eni.
	WantsBranchENI bool
	// BranchAnnotation is the raw vpc.amazonaws.com/pod-eni annotation.
	BranchAnnotation string
}

// BranchENI is one element of the pod-eni annotation (upstream's JSON).
type BranchENI struct {
	ENIID        string `json:"eniId"`
	MAC          string `json:"ifAddress"`
	PrivateIP    string `json:"privateIp"`
	IPv6Addr     string `json:"ipv6Addr"`
	VlanID       int    `json:"vlanID"`
	SubnetCIDR   string `json:"subnetCidr"`
	SubnetV6CIDR string `json:"subnetV6Cidr"`
}

// branchWiring is the checked content of a branch annotation.
type branchWiring struct {
	IP      netip.Addr
	MAC     net.HardwareAddr
	VlanID  int
	Gateway netip.Addr
}

// ParseBranchAnnotation checks the annotation's first element the way
// upstream requires: an address of the node's family, a MAC, a VLAN id and
// a subnet; the gateway is the subnet's router.
func ParseBranchAnnotation(raw string, ipv6 bool) (branchWiring, error) {
	var enis []BranchENI
	if err := json.Unmarshal([]byte(raw), &enis); err != nil {
		return branchWiring{}, fmt.Errorf("annotation %s is not a JSON array of branch ENIs: %w", PodENIAnnotation, err)
	}
	if len(enis) == 0 {
		return branchWiring{}, fmt.Errorf("annotation %s lists no branch ENI", PodENIAnnotation)
	}
	b := enis[0]
	ipStr, subnetStr := b.PrivateIP, b.SubnetCIDR
	if ipv6 {
		ipStr, subnetStr = b.IPv6Addr, b.SubnetV6CIDR
	}
	var errs []error
	ip, err := netip.ParseAddr(ipStr)
	switch {
	case ipStr == "" && ipv6:
		errs = append(errs, fmt.Errorf("ipv6Addr: it is empty but this node is IPv6 (the branch ENI has no IPv6 address: wrong family)"))
	case ipStr == "":
		errs = append(errs, fmt.Errorf("privateIp: it is empty but this node is IPv4 (the branch ENI has no IPv4 address: wrong family)"))
	case err != nil || ip.Is6() != ipv6:
		errs = append(errs, fmt.Errorf("address %q", ipStr))
	}
	mac, err := net.ParseMAC(b.MAC)
	if err != nil {
		errs = append(errs, fmt.Errorf("ifAddress %q", b.MAC))
	}
	if b.VlanID <= 0 || b.VlanID > 4094 {
		errs = append(errs, fmt.Errorf("vlanID %d", b.VlanID))
	}
	subnet, err := netip.ParsePrefix(subnetStr)
	if err != nil {
		errs = append(errs, fmt.Errorf("subnet %q", subnetStr))
	}
	if err := errors.Join(errs...); err != nil {
		return branchWiring{}, fmt.Errorf("branch ENI %s in annotation %s has an invalid %w", b.ENIID, PodENIAnnotation, err)
	}
	return branchWiring{IP: ip, MAC: mac, VlanID: b.VlanID, Gateway: networkutils.SubnetGateway(subnet)}, nil
}

// branchAdd answers AddNetwork for a branch-ENI pod, or returns ok=false
// when the pod is a regular one.
func (s *Server) branchAdd(ctx context.Context, req *rpc.AddNetworkRequest) (*rpc.AddNetworkReply, bool, error) {
	n := s.n
	if !n.cfg.EnablePodENI || !n.kube.present() {
		return nil, false, nil
	}
	pod, err := n.kube.get().Pod(ctx, req.GetK8SPodNamespace(), req.GetK8SPodName())
	if err != nil {
		return nil, true, status.Errorf(codes.Unavailable, "ENABLE_POD_ENI: reading pod %s/%s: %v", req.GetK8SPodNamespace(), req.GetK8SPodName(), err)
	}
	if !pod.Found {
		return nil, true, status.Errorf(codes.FailedPrecondition, "ENABLE_POD_ENI: pod %s/%s not found", req.GetK8SPodNamespace(), req.GetK8SPodName())
	}
	if !pod.WantsBranchENI {
		return nil, false, nil
	}
	trunk, ok := n.trunkENI()
	if !ok {
		if trunk, err = n.waitTrunk(ctx, req.GetK8SPodNamespace(), req.GetK8SPodName()); err != nil {
			return nil, true, err
		}
	}
	if pod.BranchAnnotation == "" {
		if pod, err = n.waitBranchAnnotation(ctx, req.GetK8SPodNamespace(), req.GetK8SPodName()); err != nil {
			return nil, true, err
		}
	}
	w, err := ParseBranchAnnotation(pod.BranchAnnotation, n.cfg.EnableIPv6)
	if err != nil {
		return nil, true, status.Errorf(codes.InvalidArgument, "pod %s/%s: %v", req.GetK8SPodNamespace(), req.GetK8SPodName(), err)
	}
	link, err := n.host.LinkByMAC(ctx, trunk)
	if err != nil {
		return nil, true, status.Errorf(codes.Unavailable, "finding the trunk ENI's link (MAC %s): %v", trunk, err)
	}
	parent := link.Index
	md := allocationMetadata(w.IP, -1, 0)
	return &rpc.AddNetworkReply{
		Success: true, IpAllocationMetadata: []*rpc.IPAllocationMetadata{md},
		PodVlanId: int32(w.VlanID), PodEniMac: w.MAC.String(), PodEniSubnetGw: w.Gateway.String(),
		ParentIfIndex: int32(parent), NetworkPolicyMode: n.cfg.NetworkPolicyEnforcingMode,
		UseExternalSnat: n.cfg.ExternalSNAT,
	}, true, nil
}

// branchDel answers DelNetwork for a key the datastore does not hold: a
// branch-ENI pod (or a pod already gone).
func (s *Server) branchDel(ctx context.Context, req *rpc.DelNetworkRequest) (*rpc.DelNetworkReply, bool, error) {
	n := s.n
	if !n.cfg.EnablePodENI || !n.kube.present() {
		return nil, false, nil
	}
	pod, err := n.kube.get().Pod(ctx, req.GetK8SPodNamespace(), req.GetK8SPodName())
	if err != nil {
		return nil, true, status.Errorf(codes.Unavailable, "ENABLE_POD_ENI: reading pod %s/%s: %v", req.GetK8SPodNamespace(), req.GetK8SPodName(), err)
	}
	r := &rpc.DelNetworkReply{Success: true, NetworkPolicyMode: n.cfg.NetworkPolicyEnforcingMode}
	if !pod.Found {
		return r, true, nil // gone: nothing to release
	}
	if uid := req.GetK8SPodUid(); uid != "" && pod.UID != "" && uid != pod.UID {
		return nil, true, status.Errorf(codes.FailedPrecondition, "pod %s/%s has UID %s, the DEL is for %s",
			req.GetK8SPodNamespace(), req.GetK8SPodName(), pod.UID, uid)
	}
	if !pod.WantsBranchENI || pod.BranchAnnotation == "" {
		return nil, false, nil
	}
	w, err := ParseBranchAnnotation(pod.BranchAnnotation, n.cfg.EnableIPv6)
	if err != nil {
		return nil, true, status.Errorf(codes.InvalidArgument, "pod %s/%s: %v", req.GetK8SPodNamespace(), req.GetK8SPodName(), err)
	}
	md := allocationMetadata(w.IP, -1, 0)
	r.IpAllocationMetadata = []*rpc.IPAllocationMetadata{md}
	r.PodVlanId = int32(w.VlanID)
	return r, true, nil
}

// trunkENI returns the MAC of card 0's trunk ENI.
func (n *IPAM) trunkENI() (net.HardwareAddr, bool) {
	if len(n.cards) == 0 {
		return nil, false
	}
	for _, e := range n.cards[0].store.ENIs() {
		if e.IsTrunk {
			mac := n.node.mac(e.ID)
			return mac, mac != nil
		}
	}
	return nil, false
}

// sgppPossible: ENABLE_POD_ENI on an instance type that can trunk ENIs
// (unknown types are assumed to). On other types no ENI slot is reserved
// for a trunk that will never come.
func (n *IPAM) sgppPossible() bool {
	return n.cfg.EnablePodENI && awsutils.TrunkingCompatible(n.node.typ.Type)
}

// declareSGPP asks the VPC resource controller for a trunk ENI (CNINode
// feature) until one is attached and while an ENI slot is free for it.
func (n *IPAM) declareSGPP(ctx context.Context) {
	if !n.cfg.EnablePodENI || !n.kube.present() {
		return
	}
	if !n.sgppPossible() {
		n.noteSGPP("ENABLE_POD_ENI=true but this instance type cannot trunk ENIs: security groups for pods are unavailable on this node",
			"instanceType", n.node.typ.Type)
		return
	}
	if _, ok := n.trunkENI(); ok {
		n.noteSGPP("")
		return
	}
	c := n.cards[0]
	// An unfreed ENI (detach failed) still takes its slot, as the planner counts it.
	if c.slotsTaken() >= c.maxENIs {
		n.noteSGPP("ENABLE_POD_ENI: no free ENI slot for a trunk ENI on this node")
		return
	}
	if err := n.kube.get().DeclareFeature(ctx, featureSGPP, ""); err != nil {
		n.noteSGPP("could not declare SecurityGroupsForPods on the CNINode", "err", err)
		return
	}
	n.noteSGPP("")
}

// noteSGPP logs a security-groups-for-pods problem when it differs from
// the last one ("" = none); the pool cycle calls declareSGPP every tick.
func (n *IPAM) noteSGPP(msg string, args ...any) {
	if n.features.sgppNoteChanged(msg) && msg != "" {
		n.log.Warn(msg, args...)
	}
}

// cniNodeFeatures is what the pool cycle has declared on the CNINode:
// CustomNetworking (once, like upstream), and the last security-groups-for-
// pods problem logged (each logged once per change, not every cycle).
type cniNodeFeatures struct {
	customNet atomic.Bool
	mu        sync.Mutex
	sgppNote  string
}

// sgppNoteChanged records msg and reports whether it differs from the last.
func (f *cniNodeFeatures) sgppNoteChanged(msg string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if msg == f.sgppNote {
		return false
	}
	f.sgppNote = msg
	return true
}

// declareCustomNetworking tells the VPC resource controller which
// ENIConfig branch ENIs of this node use (custom networking with security
// groups for pods, docs/compatibility.md, "Kubernetes objects"); once, like upstream.
func (n *IPAM) declareCustomNetworking(ctx context.Context) {
	if !n.cfg.CustomNetworking || !n.cfg.EnablePodENI || !n.kube.present() || n.features.customNet.Load() {
		return
	}
	k := n.kube.get()
	ec, err := k.ENIConfig(ctx)
	if ec.Name == "" {
		n.log.Warn("custom networking: cannot resolve the node's ENIConfig for the CNINode feature", "err", err)
		return
	}
	if err != nil {
		// The name is known (the ENIConfig itself is not usable yet): the
		// feature only needs the name.
		n.log.Debug("custom networking: declaring the ENIConfig's name despite an error reading it", "eniConfig", ec.Name, "err", err)
	}
	if ec.Name != "default" {
		if err := k.DeclareFeature(ctx, featureCustomNet, ec.Name); err != nil {
			n.log.Warn("could not declare CustomNetworking on the CNINode", "eniConfig", ec.Name, "err", err)
			return
		}
	}
	n.features.customNet.Store(true)
}

// branchAnnotationPoll is how often the node's pod cache is read while an
// ADD waits for the branch annotation; reads are in-memory.
const branchAnnotationPoll = 100 * time.Millisecond

// branchAnnotationWait bounds the wait when the ADD carries no deadline.
const branchAnnotationWait = 30 * time.Second

// waitBranchAnnotation waits, within the ADD's deadline, for the VPC
// resource controller to annotate a pod it has just been bound: upstream
// fails the ADD at once and lets the kubelet retry. The error on timeout
// names what may be missing.
func (n *IPAM) waitBranchAnnotation(ctx context.Context, namespace, name string) (PodInfo, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, branchAnnotationWait)
		defer cancel()
	}
	start := time.Now()
	t := time.NewTicker(branchAnnotationPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return PodInfo{}, status.Errorf(codes.DeadlineExceeded,
				"pod %s/%s asks for a branch ENI but has no %s annotation after %s: the VPC resource controller has not written it "+
					"(is it running? has the node reached its branch ENI limit? see the pod's BranchAllocationFailed events)",
				namespace, name, PodENIAnnotation, time.Since(start).Round(time.Millisecond))
		case <-t.C:
		}
		pod, err := n.kube.get().Pod(ctx, namespace, name)
		if err != nil || !pod.Found {
			continue
		}
		if pod.BranchAnnotation != "" {
			return pod, nil
		}
	}
}
