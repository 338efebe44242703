package vpcsim_test

import (
	"sync"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/simtest"
)

// Concurrent clients and a subscriber: every assigned address is announced
// exactly once and released exactly once, and the account ends clean.
func TestConcurrentClientsAndEvents(t *testing.T) {
	env := simtest.Start(t, simtest.Basic())
	var assigned, unassigned atomic.Int64
	cancel := env.Sim.Subscribe(func(e vpcsim.Event) {
		switch e := e.(type) {
		case vpcsim.AddressesAssigned:
			assigned.Add(int64(len(e.Prefixes)))
		case vpcsim.AddressesUnassigned:
			unassigned.Add(int64(len(e.Prefixes)))
		}
	})
	defer cancel()
	c := newEC2(env.EC2URL)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 10; i++ {
				out, err := c.CreateNetworkInterface(ctx(t), &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(simtest.NodeSubnetID), SecondaryPrivateIpAddressCount: aws.Int32(2)})
				if err != nil {
					errs <- err
					return
				}
				id := out.NetworkInterface.NetworkInterfaceId
				if _, err := c.AssignPrivateIpAddresses(ctx(t), &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: id, Ipv4PrefixCount: aws.Int32(1)}); err != nil {
					errs <- err
					return
				}
				if _, err := c.DescribeNetworkInterfaces(ctx(t), &ec2.DescribeNetworkInterfacesInput{}); err != nil {
					errs <- err
					return
				}
				if _, err := c.DeleteNetworkInterface(ctx(t), &ec2.DeleteNetworkInterfaceInput{NetworkInterfaceId: id}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// 80 ENIs × (primary + 2 secondaries + one /28); the replayed node ENI
	// comes as ENIAttached, not AddressesAssigned
	if a, u := assigned.Load(), unassigned.Load(); a != 320 || u != 320 {
		t.Fatalf("assigned %d, unassigned %d; want 320 each", a, u)
	}
	sn := must[*ec2.DescribeSubnetsOutput](t)(c.DescribeSubnets(ctx(t), &ec2.DescribeSubnetsInput{SubnetIds: []string{simtest.NodeSubnetID}}))
	if n := aws.ToInt32(sn.Subnets[0].AvailableIpAddressCount); n != 4090 {
		t.Fatalf("subnet has %d free addresses after cleanup, want 4090", n)
	}
}
