package ipamd

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/awsutils"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/simtest"
)

// TestStopWithENIsInFlightRestartAdoptsOrCleans: ipamd stops while a
// burst's ENIs are being created and attached (each attach held 1 s, so
// several are under way; the stop cuts their EC2 calls short), and what a
// SIGKILL would leave besides (an ENI created but not attached, one
// attached before delete-on-termination). The next ipamd, started on the
// same node, leaves nothing behind: every ENI attached in EC2 is in its datastore with
// delete-on-termination set, no ENI of ours stays unattached, no limit is
// passed, and the pool then serves ADDs again.
func TestStopWithENIsInFlightRestartAdoptsOrCleans(t *testing.T) {
	times := fastTimes
	times.Pool = time.Hour
	h := newHarness(t, harnessOpts{instanceType: "m5.xlarge", times: &times})
	h.settle()
	h.addPods("primary-", 14)
	if err := h.env.Sim.SetFaults(vpcsim.Faults{Latency: map[string]vpcsim.Duration{
		"AttachNetworkInterface": vpcsim.Duration(time.Second),
	}}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); h.n.pool.Run(ctx, times.Pool, 0, h.n.PoolCycle) }()
	burstDone := make(chan []error, 1)
	go func() { burstDone <- burst(h, "b-", 40, 3*time.Second) }()
	waitFor(t, 10*time.Second, "attaches under way", func() bool {
		n := 0
		for _, a := range h.n.track.Current() {
			if strings.Contains(a.What, "AttachNetworkInterface") {
				n++
			}
		}
		return n >= 2
	})
	cancel()
	<-done
	<-burstDone
	t.Logf("stopped with ENIs in flight: EC2 holds %+v, %d unattached", h.simCounts(), len(h.unattachedENIs()))

	// What a SIGKILL leaves that a stop does not (the stop undoes its own):
	// one ENI created but never attached, one attached before
	// delete-on-termination was set; neither in the datastore.
	if err := h.env.Sim.SetFaults(vpcsim.Faults{}); err != nil {
		t.Fatal(err)
	}
	bg := context.Background()
	req := awsutils.CreateENIRequest{InstanceID: simtest.InstanceID, SubnetID: simtest.NodeSubnetID, SecondaryIPv4Count: 13}
	if _, err := h.ec2.CreateENI(bg, req); err != nil {
		t.Fatal(err)
	}
	attached, err := h.ec2.CreateENI(bg, req)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.ec2.AttachENI(bg, attached.ID, simtest.InstanceID, 3, 0); err != nil {
		t.Fatal(err)
	}

	// The next ipamd on the node.
	h.connect(fastTimes)
	if err := h.n.Init(context.Background()); err != nil {
		t.Fatalf("Init after the stop: %v", err)
	}
	h.settle()
	if _, ok := h.eni(0, attached.ID); !ok {
		t.Errorf("the ENI attached before the kill is not in the datastore after the restart")
	}
	if left := h.unattachedENIs(); len(left) != 0 {
		t.Errorf("ENIs left unattached in EC2 after the restart: %v", left)
	}
	for _, e := range h.env.Sim.NetworkInterfaces() {
		if e.Attachment != nil && !e.Attachment.DeleteOnTermination {
			t.Errorf("ENI %s attached without delete-on-termination after the restart", e.ID)
		}
	}
	if got := h.simCounts(); got.ENIs > 4 || got.IPs > 4*14 {
		t.Errorf("EC2 holds %+v, beyond m5.xlarge's 4 ENIs × 14", got)
	}
	h.checkConsistent()
	if _, err := h.srv.AddNetwork(context.Background(), addReq("after")); err != nil {
		t.Errorf("ADD after the restart: %v", err)
	}
}
