package localvpc

import (
	"context"
	"net/netip"
	"path/filepath"

	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/dataplane"
)

// MultiNICAnnotation asks aws-cni for one address per network card
// (ENABLE_MULTI_NIC on the node).
var MultiNICAnnotation = map[string]string{"k8s.amazonaws.com/nicConfig": "multi-nic-attachment"}

// AddPodAnnotated creates a pod whose sandbox carries annotations, as
// kubelet passes them to the runtime.
func (v *VPC) AddPodAnnotated(ctx context.Context, n *Node, namespace, name string, annotations map[string]string) (*Pod, error) {
	p, err := n.addPod(ctx, dataplane.RunPrefix(v.RunID), filepath.Join(n.Dir, "cni-cache"), namespace, name, annotations)
	if err != nil {
		return nil, err
	}
	v.mu.Lock()
	v.pods[p.ContainerID] = p
	v.mu.Unlock()
	return p, nil
}

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
