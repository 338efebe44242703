package cniplugin

import (
	"testing"

	"github.com/vpc-cni/vpc-cni/test/vm/vlanenv"
)

// TestVMPluginBranchDelWithoutResult: a branch pod's ADD wired the branch
// on a real 802.1Q link and its result was lost (the runtime killed it
// before it printed one), so the DEL has no prevResult, and ipamd is down.
// The VLAN link carrying the sandbox's mark must still lead the DEL to
// the branch: the VLAN link, its table (100+VLAN) and the pod's rules go,
// in both enforcing modes, and a second DEL after the namespace's removal
// finds nothing to do. The stand-in test in cmd/aws-cni cannot show this
// for the ADD's own kernel VLAN link.
func TestVMPluginBranchDelWithoutResult(t *testing.T) {
	for _, mode := range []string{"strict", "standard"} {
		t.Run(mode, func(t *testing.T) {
			e := vlanenv.New(t, vlanenv.VLAN)
			if mode == "strict" {
				e.StrictNode(t, false)
			}
			ipamd := &branchIpamd{trunk: int32(e.TrunkIndex)}
			sock, stopIpamd := serve(t, ipamd)
			before := e.State(t)

			plugin(t, e, "ADD", sock, mode, nil)
			if t.Failed() {
				return
			}
			e.WantRealVLAN(t)
			stopIpamd()
			plugin(t, e, "DEL", sock, mode, nil)
			e.WantStateBesidesVeth(t, before, hostVeth(mode))
			e.RemovePod(t)
			e.WaitState(t, "after DEL and pod netns removal", before)
			plugin(t, e, "DEL", sock, mode, nil)
			e.WaitState(t, "after a second DEL", before)
			if adds, dels := ipamd.calls(); adds != 1 || dels != 0 {
				t.Errorf("ipamd saw %d ADDs and %d DELs, want 1 and none (it was down)", adds, dels)
			}
		})
	}
}
