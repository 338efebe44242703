package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vpc-cni/vpc-cni/pkg/egress"
	"github.com/vpc-cni/vpc-cni/pkg/testutil"
)

// TestPrivilegedDelUnresolvableNetNS: the pod was wired, and its runtime's
// DEL names a CNI_NETNS that cannot be resolved (a symlink loop, a path
// through a regular file). Such a DEL failed with code 103 and, the path
// being what it is, failed the same on every retry: the pod's address
// stayed held for ever (and, since the pinning of CNI_NETNS, its veth and
// SNAT chain too). DEL must succeed, twice, and leave the node's links and
// routes, the nat table and the store as before the ADD; the pod's side of
// the veth goes with the node's.
func TestPrivilegedDelUnresolvableNetNS(t *testing.T) {
	tp := newTopo(t)
	entry := tp.egressEntry(false, "")
	store := filepath.Join(tp.dataDir, "egress-v4-ipam")
	dir := t.TempDir()
	loop := filepath.Join(dir, "loop")
	if err := os.Symlink(loop, loop); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for id, netns := range map[string]string{"ctr-loop": loop, "ctr-file": filepath.Join(file, "netns")} {
		nodeBefore, natBefore := snapshot(t, tp.node.Path()), tp.nat(t, false)
		pod := testutil.NewNS(t)
		if e := execPlugin(t, tp, "ADD", id, pod.Path(), os.Getenv("PATH"), entry); e != nil {
			t.Fatalf("ADD: %v", e)
		}
		for i := range 2 {
			if e := execPlugin(t, tp, "DEL", id, netns, os.Getenv("PATH"), entry); e != nil {
				t.Errorf("DEL %d with CNI_NETNS %s: %v", i+1, netns, e)
			}
		}
		wantLines(t, "node after DEL with CNI_NETNS "+netns, snapshot(t, tp.node.Path()), nodeBefore)
		wantLines(t, "nat after DEL with CNI_NETNS "+netns, tp.nat(t, false), natBefore)
		if held := storeEntries(t, store); len(held) != 0 {
			t.Errorf("addresses held after DEL with CNI_NETNS %s: %v", netns, held)
		}
		if podLinks := strings.Join(snapshot(t, pod.Path()), "\n"); strings.Contains(podLinks, egress.V4.PodIfName()) {
			t.Errorf("the pod keeps %s after DEL with CNI_NETNS %s:\n%s", egress.V4.PodIfName(), netns, podLinks)
		}
	}
}
