package podnet

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/vpc-cni/vpc-cni/pkg/podnet/podnettest"
	"github.com/vpc-cni/vpc-cni/pkg/testutil"
)

// TestPrivilegedBranchLateDELOfReplacedSandboxAfterAddressReused: branch
// pod sg-pod's sandbox A (VLAN 7, 10.2.0.55) is replaced by sandbox A2 of
// the same pod, which got another branch ENI (VLAN 9, 10.2.0.66) and marks
// the pod's host veth as its own. A's DEL did not get through before A's
// branch ENI was deleted; 10.2.0.55 went back to the subnet and ipamd gave
// it to a regular pod W on the same node (ENI table 3). A's late DEL finds
// the pod's veth marked as A2's and must still remove only what is A's:
// its VLAN link and table, never W's route and rules (W's to-pod rule is
// the same rule as A's was), nor anything of A2's.
func TestPrivilegedBranchLateDELOfReplacedSandboxAfterAddressReused(t *testing.T) {
	eachMode(t, func(t *testing.T, strict bool) {
		e := newBranchNode(t, strict)
		a := e.goneSandboxA(t, strict, "")

		a2 := e.branch(testutil.NewNS(t), strict).onENI(9, "02:42:0a:02:00:42", "10.2.0.66")
		a2.Pod.Sandbox = "sandbox-a2"
		e.node.do(t, func() error { return SetupBranch(context.Background(), a2, podnettest.MacvlanVLAN{}) })

		wVeth := e.regularPodW(t)
		before := snapshot(t, e.node.ns)

		if kept := e.node.teardownBranch(t, a.Pod, branchVLAN); kept == "" {
			t.Errorf("A's late DEL kept nothing, want W's rules of %s left alone", branchPodIP)
		}
		// Gone: A's VLAN link and what routes through it; nothing else.
		var want []string
		for _, l := range before {
			if !strings.Contains(l, VLANLinkName(branchVLAN)) && !strings.Contains(l, "lookup 107") && !strings.HasPrefix(l, "route 107 ") {
				want = append(want, l)
			}
		}
		for _, l := range []string{
			"route main " + branchPodIP + "/32 dev " + wVeth + " scope link",
			"rule 512 to " + branchPodIP + "/32 lookup main",
			"rule 1536 from " + branchPodIP + "/32 lookup 3",
		} {
			if !slices.Contains(before, l) {
				t.Fatalf("W is not wired as the test expects: no %q in\n%s", l, strings.Join(before, "\n"))
			}
		}
		wantState(t, "node after A's late DEL", e.node.ns, want)
	})
}
