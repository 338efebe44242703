package ipamd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/vpc-cni/vpc-cni/pkg/hostcontract"
	"github.com/vpc-cni/vpc-cni/pkg/networkutils"
	"github.com/vpc-cni/vpc-cni/pkg/podnet"
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
	// MirrorOf is the kubernetes.io/config.mirror annotation of a static
	// pod's mirror: the UID the kubelet (and the runtime's K8S_POD_UID)
	// knows the pod by, which is not the mirror's own.
	MirrorOf string
	// WantsBranchENI: the first container's limits name a resource starting
	// with vpc.amazonaws.com/pod-eni.
	WantsBranchENI bool
	// BranchAnnotation is the raw vpc.amazonaws.com/pod-eni annotation.
	BranchAnnotation string
	// Deleting: the pod has a deletionTimestamp. An ADD without a pod UID
	// that finds such a pod sees an earlier pod of the same name.
	Deleting bool
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
	// The plugin refuses the same ids; refusing here too names the pod
	// and the annotation, and nothing is handed out.
	if err := podnet.CheckVLANID(b.VlanID); err != nil {
		errs = append(errs, fmt.Errorf("vlanID %d: %w", b.VlanID, err))
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
func (s *Server) branchAdd(d *due, req *rpc.AddNetworkRequest) (*rpc.AddNetworkReply, bool, error) {
	n := s.n
	if !n.cfg.EnablePodENI || !n.kube.present() {
		return nil, false, nil
	}
	ctx := d.context()
	uid := addPodUID(ctx)
	pod, err := n.kube.get().Pod(ctx, req.GetK8SPodNamespace(), req.GetK8SPodName())
	if err != nil {
		return nil, true, status.Errorf(codes.Unavailable, "ENABLE_POD_ENI: reading pod %s/%s: %v", req.GetK8SPodNamespace(), req.GetK8SPodName(), err)
	}
	if !pod.Found && uid == "" {
		return nil, true, status.Errorf(codes.FailedPrecondition, "ENABLE_POD_ENI: pod %s/%s not found", req.GetK8SPodNamespace(), req.GetK8SPodName())
	}
	if !livePod(pod, uid) {
		// The cache still holds an earlier pod of this name (its UID is
		// not the one the plugin sent, or it is being deleted), whose
		// branch ENI is about to be deleted, or has not seen ours yet.
		// The API server says at once; else wait for our own pod.
		if pod, err = n.branch.readOwnPod(ctx, req.GetK8SPodNamespace(), req.GetK8SPodName(), uid); err != nil {
			return nil, true, err
		}
	}
	if !pod.WantsBranchENI {
		return nil, false, nil
	}
	trunk, ok := n.branch.trunkENI()
	if !ok {
		if trunk, err = n.branch.waitTrunk(ctx, req.GetK8SPodNamespace(), req.GetK8SPodName()); err != nil {
			return nil, true, err
		}
	}
	if pod.BranchAnnotation == "" {
		if pod, err = n.branch.waitBranchAnnotation(ctx, req.GetK8SPodNamespace(), req.GetK8SPodName(), uid); err != nil {
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
	// ANNOTATE_POD_IP covers branch pods too, as upstream.
	n.handout.annotate(d, req.GetK8SPodNamespace(), req.GetK8SPodName(), w.IP, true)
	return &rpc.AddNetworkReply{
		Success: true, IpAllocationMetadata: []*rpc.IPAllocationMetadata{md},
		PodVlanId: int32(w.VlanID), PodEniMac: w.MAC.String(), PodEniSubnetGw: w.Gateway.String(),
		ParentIfIndex: int32(parent), NetworkPolicyMode: n.cfg.NetworkPolicyEnforcingMode,
		UseExternalSnat: n.cfg.ExternalSNAT,
	}, true, nil
}

// addPodUID returns the pod UID our plugin sends with an ADD as gRPC
// metadata (hostcontract.PodUIDMetadata), "" from upstream's plugin,
// which sends none: the ADD message has no field for it.
func addPodUID(ctx context.Context) string {
	md, _ := metadata.FromIncomingContext(ctx)
	if v := md.Get(hostcontract.PodUIDMetadata); len(v) > 0 {
		return v[0]
	}
	return ""
}

// ownPod reports whether pod is the one the ADD is for: the pod of uid
// (or the mirror of the static pod of uid), or any pod of the name when
// the ADD carries no UID.
func ownPod(pod PodInfo, uid string) bool {
	return uid == "" || pod.UID == uid || pod.MirrorOf == uid
}

// livePod reports whether the cache shows the ADD's own pod. A pod of
// the name being deleted is taken to be an earlier pod, unless its own
// UID is the ADD's: that pod is deleted while its sandbox starts, and is
// answered at once as upstream does rather than after the ADD's whole
// deadline. A static pod's mirror being deleted may be an earlier
// instance's: a static pod re-added keeps its UID (a hash of its
// manifest).
func livePod(pod PodInfo, uid string) bool {
	return pod.Found && ownPod(pod, uid) && (!pod.Deleting || uid != "" && pod.UID == uid)
}

// branchDel answers DelNetwork for a key the datastore does not hold: a
// branch-ENI pod (or a pod already gone).
func (s *Server) branchDel(d *due, req *rpc.DelNetworkRequest) (*rpc.DelNetworkReply, bool, error) {
	n := s.n
	if !n.cfg.EnablePodENI || !n.kube.present() {
		return nil, false, nil
	}
	ctx := d.context()
	pod, err := n.kube.get().Pod(ctx, req.GetK8SPodNamespace(), req.GetK8SPodName())
	if err != nil {
		return nil, true, status.Errorf(codes.Unavailable, "ENABLE_POD_ENI: reading pod %s/%s: %v", req.GetK8SPodNamespace(), req.GetK8SPodName(), err)
	}
	r := &rpc.DelNetworkReply{Success: true, NetworkPolicyMode: n.cfg.NetworkPolicyEnforcingMode}
	if !pod.Found {
		return r, true, nil // gone: nothing to release
	}
	if uid := req.GetK8SPodUid(); uid != "" && pod.UID != "" && !ownPod(pod, uid) {
		return nil, true, status.Errorf(codes.FailedPrecondition, "pod %s/%s has UID %s, the DEL is for %s",
			req.GetK8SPodNamespace(), req.GetK8SPodName(), pod.UID, uid)
	}
	if !pod.WantsBranchENI || pod.BranchAnnotation == "" {
		return nil, false, nil
	}
	w, err := ParseBranchAnnotation(pod.BranchAnnotation, n.cfg.EnableIPv6)
	if err != nil {
		// ADD refused this annotation, so nothing was wired from it; failing
		// the DEL would only leave the pod terminating while kubelet retries.
		n.log.Warn("DEL of a branch-ENI pod whose annotation is unusable: nothing to tear down",
			"pod", req.GetK8SPodNamespace()+"/"+req.GetK8SPodName(), "err", err)
		return r, true, nil
	}
	md := allocationMetadata(w.IP, -1, 0)
	r.IpAllocationMetadata = []*rpc.IPAllocationMetadata{md}
	r.PodVlanId = int32(w.VlanID)
	return r, true, nil
}
