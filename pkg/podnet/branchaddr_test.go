package podnet

import (
	"context"
	"errors"
	"testing"

	"github.com/vpc-cni/vpc-cni/pkg/podnet/podnettest"
	"github.com/vpc-cni/vpc-cni/pkg/testutil"
	"github.com/vpc-cni/vpc-cni/pkg/vethname"
)

// TestPrivilegedOwnBranchAddress: a DEL whose prevResult lacks the
// address of a branch-ENI pod finds it through the pod's host veth in
// either mode, only when the veth carries the DEL's sandbox's mark.
func TestPrivilegedOwnBranchAddress(t *testing.T) {
	for _, strict := range []bool{true, false} {
		e := newBranchEnv(t)
		podNS := testutil.NewNS(t)
		b := e.branch(podNS, strict)
		b.Pod.Sandbox = "sandbox-1"
		veth := b.Pod.Interfaces[0].HostVeth
		e.node.do(t, func() error { return SetupBranch(context.Background(), b, podnettest.MacvlanVLAN{}) })
		names := []string{
			vethname.HostVethName(vethname.BranchPrefix, "default", "sg-pod", 0),
			vethname.HostVethName("eni", "default", "sg-pod", 0),
		}
		e.node.do(t, func() error {
			got, addr, err := OwnBranchAddress("sandbox-1", branchVLAN, names)
			if err != nil {
				return err
			}
			if got != veth || addr.String() != branchPodIP+"/32" {
				t.Errorf("strict %v: got %s %v, want %s %s/32", strict, got, addr, veth, branchPodIP)
			}
			if _, _, err := OwnBranchAddress("sandbox-2", branchVLAN, names); !errors.Is(err, ErrNoBranchAddress) {
				t.Errorf("strict %v: another sandbox's DEL: %v, want ErrNoBranchAddress", strict, err)
			}
			if _, _, err := OwnBranchAddress("sandbox-1", branchVLAN+1, names); strict && !errors.Is(err, ErrNoBranchAddress) {
				t.Errorf("strict %v: another VLAN id: %v, want ErrNoBranchAddress", strict, err)
			}
			return nil
		})
	}
}
