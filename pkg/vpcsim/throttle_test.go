package vpcsim_test

import (
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/simtest"
)

func TestThrottleBurstAndRefill(t *testing.T) {
	clk := newFakeClock()
	sc := simtest.Basic()
	sc.Faults.Throttle.Enabled = true
	env := simtest.Start(t, sc, vpcsim.WithClock(clk.Now))
	c := newEC2(env.EC2URL)
	inst, _ := env.Sim.Instance(simtest.InstanceID)
	modify := func() error {
		_, err := c.ModifyNetworkInterfaceAttribute(ctx(t), &ec2.ModifyNetworkInterfaceAttributeInput{
			NetworkInterfaceId: aws.String(inst.PrimaryENI), Groups: []string{simtest.SecurityGroupID}})
		return err
	}
	// ModifyNetworkInterfaceAttribute: bucket 100, refill 5/s
	for i := 0; i < 100; i++ {
		if err := modify(); err != nil {
			t.Fatalf("call %d within the bucket: %v", i+1, err)
		}
	}
	err := modify()
	wantCode(t, err, "RequestLimitExceeded")
	var re *awshttp.ResponseError
	if !errors.As(err, &re) || re.HTTPStatusCode() != 503 {
		t.Fatalf("want HTTP 503, got %v", err)
	}
	// other classes have their own buckets
	if _, err := c.DescribeNetworkInterfaces(ctx(t), &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{inst.PrimaryENI}}); err != nil {
		t.Fatalf("describe while ipAssign is empty: %v", err)
	}
	clk.Advance(time.Second) // 5 tokens
	for i := 0; i < 5; i++ {
		if err := modify(); err != nil {
			t.Fatalf("call %d after 1s refill: %v", i+1, err)
		}
	}
	wantCode(t, modify(), "RequestLimitExceeded")
	st := env.Sim.Stats()
	if st.Throttled["ModifyNetworkInterfaceAttribute"] != 2 || st.Calls["ModifyNetworkInterfaceAttribute"] != 107 {
		t.Fatalf("stats: calls %d throttled %d", st.Calls["ModifyNetworkInterfaceAttribute"], st.Throttled["ModifyNetworkInterfaceAttribute"])
	}
	// the bucket never holds more than its size
	clk.Advance(time.Hour)
	for i := 0; i < 100; i++ {
		if err := modify(); err != nil {
			t.Fatalf("call %d after a long idle: %v", i+1, err)
		}
	}
	wantCode(t, modify(), "RequestLimitExceeded")
}

func TestThrottleUnfilteredDescribeBucket(t *testing.T) {
	clk := newFakeClock()
	sc := simtest.Basic()
	sc.Faults.Throttle = vpcsim.Throttle{Enabled: true, Buckets: map[string]vpcsim.Bucket{"describeUnfiltered": {Size: 3, Refill: 1}}}
	env := simtest.Start(t, sc, vpcsim.WithClock(clk.Now))
	c := newEC2(env.EC2URL)
	for i := 0; i < 3; i++ {
		if _, err := c.DescribeNetworkInterfaces(ctx(t), &ec2.DescribeNetworkInterfacesInput{}); err != nil {
			t.Fatal(err)
		}
	}
	_, err := c.DescribeNetworkInterfaces(ctx(t), &ec2.DescribeNetworkInterfacesInput{})
	wantCode(t, err, "RequestLimitExceeded")
	// a paginated describe uses the larger bucket
	if _, err := c.DescribeNetworkInterfaces(ctx(t), &ec2.DescribeNetworkInterfacesInput{MaxResults: aws.Int32(5)}); err != nil {
		t.Fatalf("paginated describe: %v", err)
	}
	// turning throttling off at runtime
	if err := env.Sim.SetFaults(vpcsim.Faults{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DescribeNetworkInterfaces(ctx(t), &ec2.DescribeNetworkInterfacesInput{}); err != nil {
		t.Fatalf("throttling off: %v", err)
	}
}
