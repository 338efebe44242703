package resourcecontroller

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"

	corev1 "k8s.io/api/core/v1"
)

// PodENIAnnotation carries a pod's branch ENIs; PodENIResource is the
// extended resource the webhook requests and the node advertises.
const (
	PodENIAnnotation = "vpc.amazonaws.com/pod-eni"
	PodENIResource   = "vpc.amazonaws.com/pod-eni"
)

// BranchENI is one element of the annotation. The keys and their order are
// EKS's (vlanId with a lower-case d; no omitempty), so ipamd and any other
// consumer read ours like theirs.
type BranchENI struct {
	ENIID         string `json:"eniId"`
	MAC           string `json:"ifAddress"`
	PrivateIP     string `json:"privateIp"`
	IPv6Addr      string `json:"ipv6Addr"`
	VlanID        int    `json:"vlanId"`
	SubnetCIDR    string `json:"subnetCidr"`
	SubnetV6CIDR  string `json:"subnetV6Cidr"`
	AssociationID string `json:"associationID"`
}

// EncodeAnnotation renders the annotation value.
func EncodeAnnotation(enis []BranchENI) (string, error) {
	b, err := json.Marshal(enis)
	if err != nil {
		return "", fmt.Errorf("encoding %s: %w", PodENIAnnotation, err)
	}
	return string(b), nil
}

// DecodeAnnotation parses and checks an annotation value: every element
// needs an ENI id, a MAC, an IPv4 or IPv6 address and a VLAN id in range.
func DecodeAnnotation(raw string) ([]BranchENI, error) {
	var enis []BranchENI
	if err := json.Unmarshal([]byte(raw), &enis); err != nil {
		return nil, fmt.Errorf("annotation %s is not a JSON array of branch ENIs: %w", PodENIAnnotation, err)
	}
	if len(enis) == 0 {
		return nil, fmt.Errorf("annotation %s lists no branch ENI", PodENIAnnotation)
	}
	for i, e := range enis {
		var errs []error
		if e.ENIID == "" {
			errs = append(errs, errors.New("no eniId"))
		}
		if _, err := net.ParseMAC(e.MAC); err != nil {
			errs = append(errs, fmt.Errorf("ifAddress %q is not a MAC", e.MAC))
		}
		_, err4 := netip.ParseAddr(e.PrivateIP)
		_, err6 := netip.ParseAddr(e.IPv6Addr)
		if err4 != nil && err6 != nil {
			errs = append(errs, fmt.Errorf("neither privateIp %q nor ipv6Addr %q is an address", e.PrivateIP, e.IPv6Addr))
		}
		if e.VlanID < 1 || e.VlanID > MaxVLAN {
			errs = append(errs, fmt.Errorf("vlanId %d is out of range 1-%d", e.VlanID, MaxVLAN))
		}
		if err := errors.Join(errs...); err != nil {
			return nil, fmt.Errorf("annotation %s element %d (%s): %w", PodENIAnnotation, i, e.ENIID, err)
		}
	}
	return enis, nil
}

// PodBranches returns the branch ENIs the controller annotated p with, or
// an error while it has not (yet).
func PodBranches(p *corev1.Pod) ([]BranchENI, error) {
	raw := p.Annotations[PodENIAnnotation]
	if raw == "" {
		return nil, fmt.Errorf("pod %s/%s has no %s annotation", p.Namespace, p.Name, PodENIAnnotation)
	}
	return DecodeAnnotation(raw)
}
