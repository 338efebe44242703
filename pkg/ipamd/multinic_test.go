package ipamd

import (
	"context"
	"testing"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/ipamd/config"
	"github.com/vpc-cni/vpc-cni/pkg/ipamd/datastore"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/simtest"
	"github.com/vpc-cni/vpc-cni/rpc"
)

// TestMultiNIC: with ENABLE_MULTI_NIC on a two-card instance, card 1 gets
// an ENI holding one warm address (upstream's fixed targets for cards > 0)
// and a multi-NIC pod gets one address per card, each with the card's
// route table.
func TestMultiNIC(t *testing.T) {
	h := newHarness(t, harnessOpts{instanceType: "c6in.32xlarge", cfg: func(c *config.Config) {
		c.EnableMultiNIC, c.WarmIPTarget, c.IPCooldown = true, 2, 0
	}})
	ctx := context.Background()
	if len(h.n.Snapshot().Cards) != 2 {
		t.Fatalf("cards: %d", len(h.n.Snapshot().Cards))
	}
	h.settle()
	inst, err := h.env.Sim.Instance(simtest.InstanceID)
	if err != nil {
		t.Fatal(err)
	}
	perCard := map[int]int{}
	for _, e := range inst.ENIs {
		perCard[e.Attachment.NetworkCard] += len(e.SecondaryIPs)
	}
	if perCard[0] != 2 || perCard[1] != 1 {
		t.Errorf("addresses per card: %v, want card 0: 2 (WARM_IP_TARGET), card 1: 1", perCard)
	}
	// The first ENI of card 1 is device 0; the host (networkutils'
	// ENI.Validate, also in the fake) must wire it.
	wiredCard1Dev0 := false
	h.host.mu.Lock()
	for _, e := range h.host.enis {
		wiredCard1Dev0 = wiredCard1Dev0 || (e.NetworkCard == 1 && e.DeviceNumber == 0)
	}
	h.host.mu.Unlock()
	if !wiredCard1Dev0 {
		t.Errorf("no ENI wired on card 1 device 0: %v", h.host.enis)
	}
	r, err := h.srv.AddNetwork(ctx, &rpc.AddNetworkRequest{NetworkName: "aws-cni", ContainerId: "m", IfName: "eth0", RequiresMultiNicAttachment: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.IpAllocationMetadata) != 2 || r.IpAllocationMetadata[1].RouteTableId != 10100 {
		t.Errorf("multi-NIC reply: %v", r.IpAllocationMetadata)
	}
	d, err := h.srv.DelNetwork(ctx, &rpc.DelNetworkRequest{NetworkName: "aws-cni", ContainerId: "m", IfName: "eth0"})
	if err != nil || len(d.IpAllocationMetadata) != 2 {
		t.Errorf("multi-NIC DEL: %v %v", d, err)
	}
	h.settle()
	h.checkConsistent()
}

// TestMultiNICCheckpointPerCard: each card's allocations live in its own
// checkpoint (upstream's ipam-nic-N.json) and survive a restart.
func TestMultiNICCheckpointPerCard(t *testing.T) {
	h := newHarness(t, harnessOpts{instanceType: "c6in.32xlarge", cfg: func(c *config.Config) {
		c.EnableMultiNIC, c.WarmIPTarget, c.IPCooldown = true, 2, 0
	}})
	ctx := context.Background()
	h.settle()
	r, err := h.srv.AddNetwork(ctx, &rpc.AddNetworkRequest{NetworkName: "aws-cni", ContainerId: "m", IfName: "eth0", RequiresMultiNicAttachment: true})
	if err != nil {
		t.Fatal(err)
	}
	h.checkConsistent()
	h.connect(fastTimes)
	if err := h.n.Init(ctx); err != nil {
		t.Fatal(err)
	}
	again, err := h.srv.AddNetwork(ctx, &rpc.AddNetworkRequest{NetworkName: "aws-cni", ContainerId: "m", IfName: "eth0", RequiresMultiNicAttachment: true})
	if err != nil || again.IpAllocationMetadata[1].Ipv4Addr != r.IpAllocationMetadata[1].Ipv4Addr ||
		again.IpAllocationMetadata[0].Ipv4Addr != r.IpAllocationMetadata[0].Ipv4Addr {
		t.Errorf("after restart: %v (was %v) %v", again.GetIpAllocationMetadata(), r.IpAllocationMetadata, err)
	}
	h.checkConsistent()
}

// TestRetriedAddKeepsSpilledAddress: a pod that spilled to card 1 (card 0
// was full then) and whose ADD is retried gets the same address back, not
// a second one on card 0, which has room by now.
func TestRetriedAddKeepsSpilledAddress(t *testing.T) {
	h := newHarness(t, harnessOpts{instanceType: "c6in.32xlarge", cfg: func(c *config.Config) {
		c.EnableMultiNIC, c.WarmIPTarget, c.IPCooldown = true, 2, 0
	}})
	ctx := context.Background()
	h.settle()
	k := key("aws-cni", "spilled", "eth0")
	// The pod holds a free address of card 1, as ipamd's checkpoint of card
	// 1 records it when it restarts.
	var first datastore.Allocation
	for _, e := range h.pool(1).ENIs {
		for _, ci := range e.CIDRs {
			if ci.Assigned == 0 && ci.Cooling == 0 && !first.Addr.IsValid() {
				first = datastore.Allocation{Key: k, Addr: ci.Prefix.Addr(), AssignedAt: time.Now(), Meta: datastore.Metadata{InterfacesCount: 1}}
			}
		}
	}
	if !first.Addr.IsValid() {
		t.Fatal("card 1 has no free address")
	}
	cp := datastore.NewFileCheckpointer(datastore.CheckpointPath(h.cfg.BackingStore, 1))
	if err := cp.Write(datastore.File{Version: datastore.CheckpointVersion, Allocations: []datastore.Allocation{first}}); err != nil {
		t.Fatal(err)
	}
	h.connect(fastTimes)
	if err := h.n.Init(ctx); err != nil {
		t.Fatal(err)
	}
	r, err := h.srv.AddNetwork(ctx, &rpc.AddNetworkRequest{NetworkName: "aws-cni", ContainerId: "spilled", IfName: "eth0"})
	if err != nil {
		t.Fatal(err)
	}
	if got := r.IpAllocationMetadata; len(got) != 1 || got[0].Ipv4Addr != first.Addr.String() || got[0].RouteTableId != 10100 {
		t.Errorf("retried ADD: %v, want %s on card 1 (table 10100)", got, first.Addr)
	}
	if a, ok := h.lookup(0, k); ok {
		t.Errorf("the retried ADD also took %s on card 0", a.Addr)
	}
	d, err := h.srv.DelNetwork(ctx, &rpc.DelNetworkRequest{NetworkName: "aws-cni", ContainerId: "spilled", IfName: "eth0"})
	if err != nil || len(d.IpAllocationMetadata) != 1 {
		t.Errorf("DEL: %v %v, want one released address", d, err)
	}
}
