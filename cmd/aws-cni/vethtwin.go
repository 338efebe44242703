package main

import (
	"errors"
	"fmt"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/vpc-cni/vpc-cni/pkg/podnet"
	"github.com/vpc-cni/vpc-cni/pkg/vethname"
)

// vethTwinError is the ADD's error when the wiring found one of the pod's
// host veth names held by another pod's live interface, or nil when err
// is another failure; details is err's text as the user should see it. Upstream's names, which are kept, let interface i>0
// of pod x and interface 0 of pod x.i hash alike (vethname.Twin); the
// error names both so the user can tell which pod to rename.
func (inv *invocation) vethTwinError(err error, details string) *types.Error {
	var taken *podnet.HostVethTakenError
	if !errors.As(err, &taken) {
		return nil
	}
	ns, pod := inv.k8s.PodNamespace, inv.k8s.PodName
	this := fmt.Sprintf("pod %s/%s interface %d", ns, pod, taken.Index)
	other := "another pod's interface"
	if twin, index, ok := vethname.Twin(pod, taken.Index); ok {
		other = fmt.Sprintf("pod %s/%s interface %d", ns, twin, index)
	}
	msg := fmt.Sprintf("host veth %s is in use: %s and %s have the same host veth name (upstream's naming, which is kept); "+
		"the two pods cannot share a node", taken.HostVeth, this, other)
	return types.NewError(ErrWiring, msg, details)
}
