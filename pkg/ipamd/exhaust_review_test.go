package ipamd

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/vpc-cni/vpc-cni/pkg/awsutils"
	"github.com/vpc-cni/vpc-cni/pkg/ipamd/config"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/simtest"
)

// exhaustedNode is an m5.large whose subnet (a /28: 11 usable addresses)
// runs out for real in vpcsim: the primary ENI's 9 secondary addresses
// fit, a second ENI does not. The pool manager runs every 20 ms.
func exhaustedNode(t *testing.T, cool time.Duration) (*harness, context.Context) {
	t.Helper()
	times := fastTimes
	times.InsufficientCool = cool
	times.FailureBackoff = 100 * time.Millisecond
	h := newHarness(t, harnessOpts{times: &times, scenario: func(sc *vpcsim.Scenario) {
		sc.VPCs[0].Subnets[0].CIDR = "10.0.0.0/28"
	}, cfg: func(c *config.Config) { c.EnableSubnetDiscovery, c.IPCooldown = false, 0 }})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); h.n.pool.Run(ctx, 20*time.Millisecond, 0, h.n.PoolCycle) }()
	t.Cleanup(func() { cancel(); <-done })
	return h, ctx
}

// TestSubnetExhaustedNoCallStorm: ADDs keep arriving on a node whose
// subnet has no room for another ENI. EC2 answers
// InsufficientFreeAddressesInSubnet once, then ipamd stops asking for the
// cooldown, however many ADDs wait and however often the pool cycles; each
// ADD fails with a cause naming the subnet-full error.
func TestSubnetExhaustedNoCallStorm(t *testing.T) {
	h, ctx := exhaustedNode(t, time.Hour)
	h.addPods("fill-", 9)
	before := h.calls()
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			actx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			_, err := h.srv.AddNetwork(actx, addReq(fmt.Sprint("more-", i)))
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err == nil {
			t.Errorf("an ADD got an address on an exhausted subnet")
			continue
		}
		t.Log(err)
		break
	}
	d := callDelta(before, h.calls())
	mutating := d["CreateNetworkInterface"] + d["AssignPrivateIpAddresses"] + d["AttachNetworkInterface"]
	if mutating > 2 {
		t.Errorf("EC2 calls while the subnet is full, with a 1 h cooldown: %v", d)
	}
	t.Logf("calls %v", d)
}

// TestSubnetExhaustedADDFailsFast: while ipamd holds off EC2 after
// InsufficientFreeAddressesInSubnet for longer than any ADD waits, an ADD
// on a node without a free address cannot be served: it fails at once
// (kubelet retries), naming the subnet and EC2's code, instead of waiting
// out its whole deadline.
func TestSubnetExhaustedADDFailsFast(t *testing.T) {
	h, ctx := exhaustedNode(t, time.Hour)
	h.addPods("fill-", 9)
	h.waitState(func(starved string, _ error) bool { return strings.Contains(starved, "subnet full") })
	actx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	start := time.Now()
	_, err := h.srv.AddNetwork(actx, addReq("one-more"))
	took := time.Since(start)
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("ADD on an exhausted subnet = %v, want ResourceExhausted", err)
	}
	if took > time.Second {
		t.Errorf("ADD failed after %s, want within 1 s: no address can come during the 1 h cooldown", took)
	}
	for _, want := range []string{simtest.NodeSubnetID, awsutils.CodeInsufficientFreeAddresses} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
}

// TestSubnetExhaustedRecoversWhenSpaceReturns: another tool's ENI fills
// the subnet, ipamd's new ENI is refused; once that ENI is deleted and the
// cooldown has passed, an ADD waiting for an address gets one from a new
// ENI.
func TestSubnetExhaustedRecoversWhenSpaceReturns(t *testing.T) {
	times := fastTimes
	times.InsufficientCool = 300 * time.Millisecond
	h := newHarness(t, harnessOpts{times: &times, scenario: func(sc *vpcsim.Scenario) {
		sc.VPCs[0].Subnets[0].CIDR = "10.0.0.0/27" // 27 usable
	}, cfg: func(c *config.Config) { c.EnableSubnetDiscovery, c.IPCooldown, c.WarmENITarget = false, 0, 0 }})
	ctx := context.Background()
	other := h.otherEC2()
	out, err := other.CreateNetworkInterface(ctx, &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(simtest.NodeSubnetID),
		SecondaryPrivateIpAddressCount: aws.Int32(15)})
	if err != nil {
		t.Fatal(err)
	}
	h.n.PoolCycle(ctx)
	h.addPods("fill-", 9) // the primary ENI's 9; the subnet keeps one address
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); h.n.pool.Run(runCtx, 20*time.Millisecond, 0, h.n.PoolCycle) }()
	t.Cleanup(func() { stop(); <-done })
	h.waitState(func(starved string, _ error) bool { return strings.Contains(starved, "subnet full") })
	if _, err := other.DeleteNetworkInterface(ctx, &ec2.DeleteNetworkInterfaceInput{NetworkInterfaceId: out.NetworkInterface.NetworkInterfaceId}); err != nil {
		t.Fatal(err)
	}
	actx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := h.srv.AddNetwork(actx, addReq("after-space-returned")); err != nil {
		t.Fatalf("ADD once the subnet has room again: %v", err)
	}
	h.checkConsistent()
}
