package localvpc

import (
	"net/netip"
)

// MultiNICAnnotation asks aws-cni for one address per network card
// (ENABLE_MULTI_NIC on the node).
var MultiNICAnnotation = map[string]string{"k8s.amazonaws.com/nicConfig": "multi-nic-attachment"}

// Addrs returns every address the CNI result gives the pod, one per
// interface (several for a multi-NIC pod), in result order.
func (p *Pod) Addrs() []netip.Addr {
	var out []netip.Addr
	if p.Result == nil {
		return nil
	}
	for _, ipc := range p.Result.IPs {
		if a, ok := netip.AddrFromSlice(ipc.Address.IP); ok {
			out = append(out, a.Unmap())
		}
	}
	return out
}
