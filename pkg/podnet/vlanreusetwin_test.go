package podnet

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/vpc-cni/vpc-cni/pkg/podnet/podnettest"
	"github.com/vpc-cni/vpc-cni/pkg/testutil"
)

// TestPrivilegedBranchLateDELAfterVLANReusedAndModeSwitch: branch pod
// sg-pod's sandbox A was wired on VLAN id 7 under one
// POD_SECURITY_GROUP_ENFORCING_MODE and is gone. The node switched modes;
// another pod C now has VLAN id 7, and a newer sandbox B of sg-pod,
// wired without a sandbox's mark (as upstream's plugin or an older build
// wires), has A's address on VLAN id 9 under the other mode's veth name,
// the twin of A's. A's late DEL (with the netconf prefix's name besides,
// as aws-cni passes it) takes the reused-VLAN path, which compares the
// link routing the address in main with A's veth name only, not its twin.
//
// That is right: the DEL's own sandbox has one veth, the one its
// prevResult names, and only standard mode routes a pod in main, under
// the netconf prefix's name that an ipamd-driven DEL also uses; a twin
// routing the address is another sandbox's. So A's late DEL must leave B
// and C exactly as they are, never removing B's to-pod rule, the same
// rule as A's would be. (A's own leftovers are gone by then: C's
// standard ADD removes A's strict iif rules of table 107, B's strict ADD
// A's standard to-pod and from-pod rules.)
func TestPrivilegedBranchLateDELAfterVLANReusedAndModeSwitch(t *testing.T) {
	const addr = branchPodIP + "/32"
	for _, aStrict := range []bool{true, false} {
		bStrict := !aStrict
		t.Run(map[bool]string{true: "strict to standard", false: "standard to strict"}[aStrict], func(t *testing.T) {
			ctx := context.Background()
			e := newBranchNode(t, true)
			a := e.goneSandboxA(t, aStrict, "")

			c := e.podC(testutil.NewNS(t), bStrict)
			e.node.do(t, func() error { return SetupBranch(ctx, c, podnettest.MacvlanVLAN{}) })

			b := e.branch(testutil.NewNS(t), bStrict).onENI(9, "02:42:0a:02:00:42", "")
			e.node.do(t, func() error { return SetupBranch(ctx, b, podnettest.MacvlanVLAN{}) })
			bVeth := b.Pod.Interfaces[0].HostVeth
			if twins := branchVethNames(branchVeth(false, "sg-pod")); !slices.Contains(twins, bVeth) ||
				!slices.Contains(twins, a.Pod.Interfaces[0].HostVeth) || bVeth == a.Pod.Interfaces[0].HostVeth {
				t.Fatalf("B's veth %s is not the twin of A's %s", bVeth, a.Pod.Interfaces[0].HostVeth)
			}
			before := snapshot(t, e.node.ns)
			bWiring := []string{"route 109 " + addr + " dev " + bVeth + " scope link", "rule 10 iif " + bVeth + " lookup 109"}
			if !bStrict {
				bWiring = []string{"route main " + addr + " dev " + bVeth + " scope link", "rule 512 to " + addr + " lookup main",
					"rule 1536 from " + addr + " lookup 109"}
			}
			for _, l := range bWiring {
				if !slices.Contains(before, l) {
					t.Fatalf("B is not wired as the test expects: no %q in\n%s", l, strings.Join(before, "\n"))
				}
			}

			if kept := e.node.teardownBranch(t, a.Pod, branchVLAN, branchVeth(false, "sg-pod")); !strings.Contains(kept, "another sandbox's") {
				t.Fatalf("A's late DEL did not take the reused-VLAN path: kept %q", kept)
			}
			wantState(t, "node after A's late DEL", e.node.ns, before)
		})
	}
}
