// Package kubefwd lets agents in a local VPC reach the test's kube-apiserver
// (which listens on the machine's loopback): pkg/localkube's forwarder and
// kubeconfig under the names the kube-tier suites use, and their poll helper.
package kubefwd

import (
	"context"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/localkube"
	"github.com/vpc-cni/vpc-cni/pkg/localkube/forward"
	"github.com/vpc-cni/vpc-cni/pkg/poll"
)

// Addr is where the forwarder listens in the VPC namespace.
var Addr = forward.VPCAddr

var (
	Forward         = forward.InVPC
	WriteKubeconfig = localkube.WriteKubeconfig
)

// Eventually is poll.Until, kept for the kube-tier suites.
func Eventually(ctx context.Context, d time.Duration, cond func() error) error {
	return poll.Until(ctx, d, cond)
}
