package podnet

import (
	"context"
	"errors"
	"path/filepath"
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

// TestPrivilegedTeardownMarkedBranch: a DEL whose prevResult names a
// branch-ENI pod's VLAN id but not its address, after the pod's namespace
// (and veth) is gone and with ipamd unable to name the branch, removes
// the branch's wiring when the VLAN link carries its sandbox's mark: the
// link, its table's routes and every rule into the table (iif rules in
// strict mode, the address's rules in standard mode). Another sandbox's
// DEL removes nothing.
func TestPrivilegedTeardownMarkedBranch(t *testing.T) {
	for _, strict := range []bool{true, false} {
		e := newBranchEnv(t)
		podNS := testutil.NewNS(t)
		b := e.branch(podNS, strict)
		b.Pod.Sandbox = "sandbox-1"
		b.Pod.LockFile = filepath.Join(t.TempDir(), "aws-cni.lock")
		veth := b.Pod.Interfaces[0].HostVeth
		e.node.do(t, func() error { return SetupBranch(context.Background(), b, podnettest.MacvlanVLAN{}) })
		e.node.vethGone(t, veth)
		wired := snapshot(t, e.node.ns)
		names := []string{
			vethname.HostVethName(vethname.BranchPrefix, "default", "sg-pod", 0),
			vethname.HostVethName("eni", "default", "sg-pod", 0),
		}
		other := Pod{Sandbox: "sandbox-2", LockFile: b.Pod.LockFile}
		e.node.do(t, func() error {
			_, err := TeardownMarkedBranch(context.Background(), other, branchVLAN, names)
			if !errors.Is(err, ErrBranchNotOwn) {
				t.Errorf("strict %v: another sandbox's DEL: %v, want ErrBranchNotOwn", strict, err)
			}
			return nil
		})
		wantState(t, "node after another sandbox's DEL", e.node.ns, wired)
		e.node.do(t, func() error {
			for sandbox, want := range map[string]int{"sandbox-1": branchVLAN, "sandbox-2": 0} {
				if got, err := MarkedVLANID(sandbox); err != nil || got != want {
					t.Errorf("strict %v: MarkedVLANID(%s) = %d, %v; want %d", strict, sandbox, got, err, want)
				}
			}
			return nil
		})
		own := Pod{Sandbox: "sandbox-1", LockFile: b.Pod.LockFile}
		e.node.do(t, func() error {
			_, err := TeardownMarkedBranch(context.Background(), own, branchVLAN, names)
			return err
		})
		wantState(t, "node after the DEL", e.node.ns, []string{"link eth1 veth up mtu 1500"})
	}
}
