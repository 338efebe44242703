package ipamd

import (
	"context"
	"net/netip"
	"os"
	"testing"

	"github.com/vpc-cni/vpc-cni/pkg/ipamd/datastore"
	"github.com/vpc-cni/vpc-cni/rpc"
)

// TestReAddOfPendingRestoredKeyGetsAnENIAddress: a restored allocation
// whose address is on no ENI of the node is pending (its CIDR may come
// back). When the runtime sets that pod up again (an ADD with the same
// key), the pod must get an address of one of the node's ENIs, with its
// ENI's table, as Store.Assign decides for a pending key, never the
// unplaceable address with no ENI behind it.
func TestReAddOfPendingRestoredKeyGetsAnENIAddress(t *testing.T) {
	h := newHarness(t, harnessOpts{noInit: true})
	file := `{"version":"vpc-cni-ipam/1","allocations":[{"networkName":"aws-cni","containerID":"sandbox-a","ifName":"eth0",` +
		`"ipv4":"10.0.250.9","allocationTimestamp":1,"metadata":{"k8sPodNamespace":"default","k8sPodName":"web-1"}}]}` + "\n"
	if err := os.WriteFile(h.cfg.BackingStore, []byte(file), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := h.n.Init(ctx); err != nil {
		t.Fatal(err)
	}
	if st := h.pool(0).Stats; st.Pending != 1 {
		t.Fatalf("after restore: %d pending, want the unknown-CIDR allocation kept", st.Pending)
	}
	h.settle()
	r, err := h.srv.AddNetwork(ctx, &rpc.AddNetworkRequest{NetworkName: "aws-cni", ContainerId: "sandbox-a", IfName: "eth0",
		K8SPodNamespace: "default", K8SPodName: "web-1"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := netip.ParseAddr(r.IpAllocationMetadata[0].Ipv4Addr)
	if err != nil {
		t.Fatal(err)
	}
	if got == netip.MustParseAddr("10.0.250.9") {
		t.Errorf("re-ADD got the pending address %s, which is on no ENI of the node (reply %v)", got, r)
	}
	a, ok := h.lookup(0, datastore.Key{NetworkName: "aws-cni", ContainerID: "sandbox-a", IfName: "eth0"})
	if !ok || a.Addr != got {
		t.Errorf("datastore holds %v (found %v) for the pod, reply says %s", a.Addr, ok, got)
	}
	h.checkConsistent()
}
