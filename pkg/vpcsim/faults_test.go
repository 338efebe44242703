package vpcsim_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/simtest"
)

func TestErrorInjectionByRateIsSeeded(t *testing.T) {
	count := func(seed uint64) int64 {
		sc := simtest.Basic()
		sc.Faults = vpcsim.Faults{Seed: seed, Errors: []vpcsim.ErrorRule{{Action: "DescribeSubnets", Code: "InternalError", Rate: 0.3}}}
		env := simtest.Start(t, sc)
		c := newEC2(env.EC2URL)
		for i := 0; i < 200; i++ {
			_, err := c.DescribeSubnets(ctx(t), &ec2.DescribeSubnetsInput{})
			if err != nil {
				wantCode(t, err, "InternalError")
			}
		}
		return env.Sim.Stats().Errors["DescribeSubnets"]["InternalError"]
	}
	a, b := count(7), count(7)
	if a != b {
		t.Fatalf("same seed, different injections: %d vs %d", a, b)
	}
	if a < 30 || a > 90 {
		t.Fatalf("rate 0.3 of 200 injected %d times", a)
	}
}

func TestInjectedCodeCountAndOtherActionsUntouched(t *testing.T) {
	sc := simtest.Basic()
	sc.Faults.Errors = []vpcsim.ErrorRule{{Action: "AssignPrivateIpAddresses", Code: "InsufficientFreeAddressesInSubnet", Count: 2}}
	env := simtest.Start(t, sc)
	c := newEC2(env.EC2URL)
	inst, _ := env.Sim.Instance(simtest.InstanceID)
	assign := func() error {
		_, err := c.AssignPrivateIpAddresses(ctx(t), &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: aws.String(inst.PrimaryENI), SecondaryPrivateIpAddressCount: aws.Int32(1)})
		return err
	}
	wantCode(t, assign(), "InsufficientFreeAddressesInSubnet")
	if _, err := c.DescribeNetworkInterfaces(ctx(t), &ec2.DescribeNetworkInterfacesInput{}); err != nil {
		t.Fatalf("other action: %v", err)
	}
	wantCode(t, assign(), "InsufficientFreeAddressesInSubnet")
	if err := assign(); err != nil {
		t.Fatalf("after count exhausted: %v", err)
	}
	// injected failures changed nothing
	if v, _ := env.Sim.Instance(simtest.InstanceID); len(v.ENIs[0].SecondaryIPs) != 1 {
		t.Fatalf("addresses: %v", v.ENIs[0].SecondaryIPs)
	}
}

func TestLatencyIsApplied(t *testing.T) {
	sc := simtest.Basic()
	sc.Faults.Latency = map[string]vpcsim.Duration{"DescribeVpcs": vpcsim.Duration(80 * time.Millisecond)}
	env := simtest.Start(t, sc)
	c := newEC2(env.EC2URL)
	start := time.Now()
	if _, err := c.DescribeVpcs(ctx(t), &ec2.DescribeVpcsInput{}); err != nil {
		t.Fatal(err)
	}
	// a lower bound only: the call cannot be faster than its latency
	if d := time.Since(start); d < 80*time.Millisecond {
		t.Fatalf("DescribeVpcs took %v, latency is 80ms", d)
	}
}

func TestRunInstancesViaEC2(t *testing.T) {
	sc := simtest.Basic()
	sc.VPCs[0].Subnets[1].MapPublicIP = true
	env := simtest.Start(t, sc)
	c := newEC2(env.EC2URL)
	out, err := c.RunInstances(ctx(t), &ec2.RunInstancesInput{
		InstanceType: "m6i.xlarge", SubnetId: aws.String(simtest.NodeSubnetBID), MinCount: aws.Int32(2), MaxCount: aws.Int32(2),
		SecurityGroupIds: []string{simtest.SecurityGroup2ID}, ImageId: aws.String("ami-1"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Instances) != 2 {
		t.Fatalf("instances: %d", len(out.Instances))
	}
	for _, in := range out.Instances {
		if aws.ToString(in.PublicIpAddress) == "" || len(in.NetworkInterfaces) != 1 || aws.ToString(in.Placement.AvailabilityZone) != "us-west-2b" {
			t.Fatalf("instance: %+v", in)
		}
		md := newIMDS(env.IMDSURL(aws.ToString(in.InstanceId)))
		if got, err := getMeta(t, md, "instance-type"); err != nil || got != "m6i.xlarge" {
			t.Fatalf("IMDS of new instance: %q %v", got, err)
		}
	}
	_, err = c.RunInstances(ctx(t), &ec2.RunInstancesInput{InstanceType: "m6i.xlarge", SubnetId: aws.String("subnet-0000000000000dead"), MinCount: aws.Int32(1), MaxCount: aws.Int32(1)})
	wantCode(t, err, "InvalidSubnetID.NotFound")
}

// A caller that stops waiting does not undo a request EC2 received: the ENI
// is created anyway, as a killed ipamd would find it (docs/compatibility.md,
// "vpcsim: fidelity to EC2").
func TestCallCarriedOutAfterCallerGaveUp(t *testing.T) {
	sc := simtest.Basic()
	sc.Faults.Latency = map[string]vpcsim.Duration{"CreateNetworkInterface": vpcsim.Duration(300 * time.Millisecond)}
	env := simtest.Start(t, sc)
	// The caller gives up once EC2 has its whole request, and EC2 starts on
	// it only once the caller has hung up, whatever the machine's speed. (A
	// fixed client deadline could expire before the request is sent on a
	// loaded machine, and then EC2 rightly creates nothing; a cancel racing
	// the 300 ms latency could lose the race there too.)
	received := make(chan struct{})
	var once sync.Once
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("reading the request: %v", err)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		first := false
		once.Do(func() { first = true; close(received) })
		if first {
			<-r.Context().Done() // the caller closed its connection
		}
		env.Sim.EC2Handler().ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	c := newEC2(srv.URL)
	desc := "given-up-" + t.Name()
	gaveUp, cancel := context.WithCancel(ctx(t))
	defer cancel()
	go func() {
		select {
		case <-received:
			cancel()
		case <-gaveUp.Done():
		}
	}()
	if _, err := c.CreateNetworkInterface(gaveUp, &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(simtest.NodeSubnetID), Description: aws.String(desc)}); err == nil {
		t.Fatal("the call returned an answer although its caller gave up before EC2 answered")
	}
	filter := &ec2.DescribeNetworkInterfacesInput{Filters: []types.Filter{{Name: aws.String("description"), Values: []string{desc}}}}
	deadline := time.Now().Add(30 * time.Second) // generous for a loaded machine
	for {
		out, err := c.DescribeNetworkInterfaces(ctx(t), filter)
		if err != nil {
			t.Fatal(err)
		}
		if len(out.NetworkInterfaces) == 1 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the ENI whose caller gave up was never created (%d found)", len(out.NetworkInterfaces))
		}
		time.Sleep(20 * time.Millisecond) // pacing between polls of the condition
	}
}
