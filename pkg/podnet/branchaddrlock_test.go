package podnet

import (
	"context"
	"net"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/vpc-cni/vpc-cni/pkg/podnet/podnettest"
	"github.com/vpc-cni/vpc-cni/pkg/testutil"
	"github.com/vpc-cni/vpc-cni/pkg/vethname"
)

// TestPrivilegedBranchDELRacesBranchAddressReuse: branch pod A's late DEL
// has checked that main routes A's address through none of A's veths (A's
// namespace is gone, and its route with it), so the address's rules are
// A's, and is about to remove them. In that moment the address, back in
// the subnet, is a branch pod B's on another VLAN, whose ADD holds
// neither A's pod lock nor A's VLAN's. B's route and rules name the same
// address: B's ADD must end with them whole.
func TestPrivilegedBranchDELRacesBranchAddressReuse(t *testing.T) {
	eachMode(t, func(t *testing.T, strict bool) {
		ctx := context.Background()
		lockFile := filepath.Join(t.TempDir(), "aws-cni.lock")
		e := newBranchEnv(t)
		if strict {
			moveLocalRule(t, e.node)
		}
		a := e.branch(testutil.NewNS(t), strict)
		a.Pod.Sandbox, a.Pod.LockFile = "sandbox-a", lockFile
		e.node.do(t, func() error { return SetupBranch(ctx, a, podnettest.MacvlanVLAN{}) })
		e.node.vethGone(t, a.Pod.Interfaces[0].HostVeth)

		const vlanB = branchVLAN + 1
		b := e.branch(testutil.NewNS(t), strict)
		b.Pod.Sandbox, b.Pod.LockFile, b.VLANID = "sandbox-b", lockFile, vlanB
		prefix := "eni"
		if strict {
			prefix = vethname.BranchPrefix
		}
		b.Pod.Interfaces[0].HostVeth = vethname.HostVethName(prefix, "default", "other-pod", 0)
		b.ENIMAC = net.HardwareAddr{0x02, 0x42, 0x0a, 0x02, 0x00, 0x38}

		delErr, addErr := raceDELAt(t, e.node, &testHookOwnerChecked,
			func() error {
				_, err := TeardownBranch(ctx, a.Pod, branchVLAN)
				return err
			},
			func() error { return SetupBranch(ctx, b, podnettest.MacvlanVLAN{}) })
		if delErr != nil || addErr != nil {
			t.Fatalf("A's DEL: %v; B's ADD: %v", delErr, addErr)
		}
		vethB, tableB := b.Pod.Interfaces[0].HostVeth, strconv.Itoa(BranchTable(vlanB))
		want := []string{
			"link eth1 veth up mtu 1500",
			"link vlan.eth.8 macvlan up mtu 1500",
			"link " + vethB + " veth up mtu 9001",
			"route " + tableB + " " + branchGW + "/32 dev vlan.eth.8 scope link",
			"route " + tableB + " 0.0.0.0/0 via " + branchGW + " dev vlan.eth.8",
		}
		if strict {
			want = append(want,
				"route "+tableB+" "+branchPodIP+"/32 dev "+vethB+" scope link",
				"rule 10 iif vlan.eth.8 lookup "+tableB,
				"rule 10 iif "+vethB+" lookup "+tableB,
				"rule 20 lookup local")
		} else {
			want = append(want,
				"route main "+branchPodIP+"/32 dev "+vethB+" scope link",
				"rule 512 to "+branchPodIP+"/32 lookup main",
				"rule 1536 from "+branchPodIP+"/32 lookup "+tableB)
		}
		wantState(t, "node after both", e.node.ns, want)
	})
}
