package ipamd

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/vpc-cni/vpc-cni/pkg/awsutils"
	"github.com/vpc-cni/vpc-cni/pkg/ipamd/config"
	"github.com/vpc-cni/vpc-cni/pkg/ipamd/datastore"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/simtest"
)

// TestPrefixFallbackIsNotForever: one InsufficientCidrBlocks (a subnet
// fragmented for a moment) sends a prefix-delegation card to /32s. Once
// the subnet-full cooldown has passed, the card asks for prefixes again:
// an m5.large with max pods 110 then runs 40 pods. Before, the fallback
// lasted as long as the process, capping the node at its 27 /32s.
func TestPrefixFallbackIsNotForever(t *testing.T) {
	times := fastTimes
	times.InsufficientCool = 200 * time.Millisecond
	h := newHarness(t, harnessOpts{times: &times, cfg: func(c *config.Config) {
		c.EnablePrefixDelegation, c.WarmPrefixTarget, c.MaxPodsOverride, c.IPCooldown = true, 1, 110, 0
		c.EnableSubnetDiscovery = false
	}})
	if err := h.env.Sim.SetFaults(vpcsim.Faults{Errors: []vpcsim.ErrorRule{{Action: "AssignPrivateIpAddresses", Code: awsutils.CodeInsufficientCidrBlocks, Count: 1}}}); err != nil {
		t.Fatal(err)
	}
	h.n.PoolCycle(context.Background())
	if got := h.simCounts(); got.IPs == 0 || got.Prefixes != 0 {
		t.Fatalf("after InsufficientCidrBlocks: %+v, want the /32 fallback", got)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); h.n.pool.Run(ctx, 20*time.Millisecond, 0, h.n.PoolCycle) }()
	stopPool := sync.OnceFunc(func() { cancel(); <-done })
	defer stopPool()
	// The subnet has /28s again; once the cooldown has passed a pool cycle
	// goes back to prefixes.
	waitFor(t, 10*time.Second, "the card to ask for prefixes again", func() bool {
		return h.n.Introspection().Pool().Mode == "prefix"
	})
	for i := range 40 {
		actx, stop := context.WithTimeout(ctx, 5*time.Second)
		_, err := h.srv.AddNetwork(actx, addReq(fmt.Sprint("pod-", i)))
		stop()
		if err != nil {
			t.Fatalf("pod %d: %v (EC2 %+v)", i, err, h.simCounts())
		}
	}
	if got := h.simCounts(); got.Prefixes == 0 {
		t.Errorf("40 pods on %+v, want prefixes again", got)
	}
	if m := h.n.Introspection().Pool().Mode; m != "prefix" {
		t.Errorf("/v1/pool mode %q, want prefix", m)
	}
	// A pool cycle in flight may have a prefix in EC2 and not yet in the
	// datastore: compare them once the pool manager has stopped.
	stopPool()
	h.checkConsistent()
}

// TestPrefixFallbackStillFragmented: while the subnet stays fragmented,
// going back to prefixes after each cooldown costs one refused call per
// cooldown and never takes an address from a pod: the pods stay served on
// /32s and new ones keep getting addresses.
func TestPrefixFallbackStillFragmented(t *testing.T) {
	times := fastTimes
	times.InsufficientCool = 200 * time.Millisecond
	h := newHarness(t, harnessOpts{times: &times, scenario: func(sc *vpcsim.Scenario) {
		sc.VPCs[0].Subnets[0].CIDR = "10.0.0.0/25" // eight /28s
	}, cfg: func(c *config.Config) {
		c.EnablePrefixDelegation, c.WarmPrefixTarget, c.MaxPodsOverride, c.IPCooldown = true, 1, 110, 0
		c.EnableSubnetDiscovery = false
	}, noInit: true})
	// Another tool's ENI holds an address in every /28 the subnet's
	// reserved ones leave free: no /28 can be delegated, /32s can.
	var spread []types.PrivateIpAddressSpecification
	for block := 1; block < 8; block++ {
		spread = append(spread, types.PrivateIpAddressSpecification{
			PrivateIpAddress: aws.String(fmt.Sprintf("10.0.0.%d", block*16+4)), Primary: aws.Bool(block == 1)})
	}
	if _, err := h.otherEC2().CreateNetworkInterface(context.Background(), &ec2.CreateNetworkInterfaceInput{
		SubnetId: aws.String(simtest.NodeSubnetID), PrivateIpAddresses: spread}); err != nil {
		t.Fatal(err)
	}
	if err := h.n.Init(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); h.n.pool.Run(ctx, 20*time.Millisecond, 0, h.n.PoolCycle) }()
	defer func() { cancel(); <-done }()
	start := time.Now()
	held := map[datastore.Key]string{}
	for i := range 8 {
		actx, stop := context.WithTimeout(ctx, 5*time.Second)
		r, err := h.srv.AddNetwork(actx, addReq(fmt.Sprint("pod-", i)))
		stop()
		if err != nil {
			t.Fatalf("pod %d: %v", i, err)
		}
		held[datastore.Key{NetworkName: "aws-cni", ContainerID: fmt.Sprint("pod-", i), IfName: "eth0"}] = r.IpAllocationMetadata[0].Ipv4Addr
		// A fixed pause on purpose: the test counts refused calls per cooldown,
		// so the ADDs must span several cooldowns; there is no event to wait for.
		time.Sleep(100 * time.Millisecond)
	}
	elapsed := time.Since(start)
	for k, addr := range held {
		if a, ok := h.lookup(0, k); !ok || a.Addr.String() != addr {
			t.Errorf("%s held %s, now %v (%v)", k, addr, a.Addr, ok)
		}
	}
	st := h.env.Sim.Stats()
	refused := st.Errors["AssignPrivateIpAddresses"][awsutils.CodeInsufficientCidrBlocks] +
		st.Errors["CreateNetworkInterface"][awsutils.CodeInsufficientCidrBlocks]
	if refused == 0 {
		t.Fatalf("the subnet was not fragmented: no InsufficientCidrBlocks (EC2 %+v)", h.simCounts())
	}
	if limit := int64(elapsed/times.InsufficientCool) + 2; refused > limit {
		t.Errorf("%d refused prefix calls in %s with a %s cooldown, want at most %d", refused, elapsed, times.InsufficientCool, limit)
	}
	t.Logf("%d refused prefix calls in %s; EC2 %+v", refused, elapsed, h.simCounts())
}
