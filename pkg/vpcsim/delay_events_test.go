package vpcsim_test

import (
	"net/netip"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/simtest"
)

type eventLog struct {
	mu  sync.Mutex
	evs []vpcsim.Event
}

func (l *eventLog) add(e vpcsim.Event) { l.mu.Lock(); l.evs = append(l.evs, e); l.mu.Unlock() }
func (l *eventLog) types() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, e := range l.evs {
		if _, ok := e.(vpcsim.SecurityGroupsChanged); ok {
			continue // follows every membership change; sg_events_test.go checks it
		}
		out = append(out, strings.TrimPrefix(reflect.TypeOf(e).String(), "vpcsim."))
	}
	return out
}

func TestAttachDetachDelaysAndEvents(t *testing.T) {
	clk := newFakeClock()
	sc := simtest.Basic()
	sc.Faults.AttachDelay = vpcsim.Duration(2 * time.Second)
	sc.Faults.DetachDelay = vpcsim.Duration(time.Second)
	env := simtest.Start(t, sc, vpcsim.WithClock(clk.Now))
	var log eventLog
	cancel := env.Sim.Subscribe(log.add)
	defer cancel()
	if got := log.types(); !reflect.DeepEqual(got, []string{"InstanceRunning", "ENIAttached"}) {
		t.Fatalf("replay: %v", got)
	}
	c := newEC2(env.EC2URL)
	md := newIMDS(env.IMDSURL(simtest.InstanceID))
	id := createENI(t, c, &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(simtest.NodeSubnetID), SecondaryPrivateIpAddressCount: aws.Int32(2)})
	att, err := attach(c, t, id, 1)
	if err != nil {
		t.Fatal(err)
	}
	status := func() types.AttachmentStatus {
		d := must[*ec2.DescribeNetworkInterfacesOutput](t)(c.DescribeNetworkInterfaces(ctx(t), &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{id}}))
		if d.NetworkInterfaces[0].Attachment == nil {
			return "none"
		}
		return d.NetworkInterfaces[0].Attachment.Status
	}
	if s := status(); s != types.AttachmentStatusAttaching {
		t.Fatalf("right after attach: %s", s)
	}
	macs, _ := getMeta(t, md, "network/interfaces/macs/")
	if strings.Count(macs, "/") != 1 {
		t.Fatalf("attaching ENI must not be in IMDS yet: %q", macs)
	}
	clk.Advance(2 * time.Second)
	if s := status(); s != types.AttachmentStatusAttached {
		t.Fatalf("after the attach delay: %s", s)
	}
	macs, _ = getMeta(t, md, "network/interfaces/macs/")
	if strings.Count(macs, "/") != 2 {
		t.Fatalf("attached ENI must be in IMDS: %q", macs)
	}
	must[*ec2.DetachNetworkInterfaceOutput](t)(c.DetachNetworkInterface(ctx(t), &ec2.DetachNetworkInterfaceInput{AttachmentId: att.AttachmentId}))
	if s := status(); s != types.AttachmentStatusDetaching {
		t.Fatalf("right after detach: %s", s)
	}
	_, err = c.DeleteNetworkInterface(ctx(t), &ec2.DeleteNetworkInterfaceInput{NetworkInterfaceId: aws.String(id)})
	wantCode(t, err, "InvalidNetworkInterface.InUse")
	clk.Advance(time.Second)
	if s := status(); s != "none" {
		t.Fatalf("after the detach delay: %s", s)
	}
	must[*ec2.DeleteNetworkInterfaceOutput](t)(c.DeleteNetworkInterface(ctx(t), &ec2.DeleteNetworkInterfaceInput{NetworkInterfaceId: aws.String(id)}))

	want := []string{"InstanceRunning", "ENIAttached", "AddressesAssigned", "ENIAttached", "ENIDetached", "AddressesUnassigned"}
	if got := log.types(); !reflect.DeepEqual(got, want) {
		t.Fatalf("events %v, want %v", got, want)
	}
	log.mu.Lock()
	var attached []vpcsim.ENIAttached
	for _, e := range log.evs {
		if ea, ok := e.(vpcsim.ENIAttached); ok {
			attached = append(attached, ea)
		}
	}
	ea := attached[1]
	log.mu.Unlock()
	if ea.ENIID != id || ea.DeviceIndex != 1 || ea.InstanceID != simtest.InstanceID || len(ea.Addresses) != 3 ||
		ea.SubnetCIDR != netip.MustParsePrefix("10.0.0.0/20") || !ea.PrimaryIP.IsValid() || ea.MAC == "" {
		t.Fatalf("ENIAttached: %+v", ea)
	}
}

func TestTerminateInstanceCleansUp(t *testing.T) {
	env := simtest.Start(t, simtest.Basic())
	c := newEC2(env.EC2URL)
	keep := createENI(t, c, &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(simtest.NodeSubnetID)})
	gone := createENI(t, c, &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(simtest.NodeSubnetID), SecondaryPrivateIpAddressCount: aws.Int32(5)})
	if _, err := attach(c, t, keep, 1); err != nil {
		t.Fatal(err)
	}
	a, err := attach(c, t, gone, 2)
	if err != nil {
		t.Fatal(err)
	}
	must[*ec2.ModifyNetworkInterfaceAttributeOutput](t)(c.ModifyNetworkInterfaceAttribute(ctx(t), &ec2.ModifyNetworkInterfaceAttributeInput{
		NetworkInterfaceId: aws.String(gone), Attachment: &types.NetworkInterfaceAttachmentChanges{AttachmentId: a.AttachmentId, DeleteOnTermination: aws.Bool(true)}}))
	before := must[*ec2.DescribeSubnetsOutput](t)(c.DescribeSubnets(ctx(t), &ec2.DescribeSubnetsInput{SubnetIds: []string{simtest.NodeSubnetID}}))
	must[*ec2.TerminateInstancesOutput](t)(c.TerminateInstances(ctx(t), &ec2.TerminateInstancesInput{InstanceIds: []string{simtest.InstanceID}}))
	enis := env.Sim.NetworkInterfaces()
	if len(enis) != 1 || enis[0].ID != keep || enis[0].Status != "available" {
		t.Fatalf("after terminate: %+v", enis)
	}
	after := must[*ec2.DescribeSubnetsOutput](t)(c.DescribeSubnets(ctx(t), &ec2.DescribeSubnetsInput{SubnetIds: []string{simtest.NodeSubnetID}}))
	// primary ENI (1 address) and the 6-address ENI were freed
	if d := aws.ToInt32(after.Subnets[0].AvailableIpAddressCount) - aws.ToInt32(before.Subnets[0].AvailableIpAddressCount); d != 7 {
		t.Fatalf("freed %d addresses, want 7", d)
	}
	inst := must[*ec2.DescribeInstancesOutput](t)(c.DescribeInstances(ctx(t), &ec2.DescribeInstancesInput{InstanceIds: []string{simtest.InstanceID}}))
	if inst.Reservations[0].Instances[0].State.Name != types.InstanceStateNameTerminated {
		t.Fatalf("state: %+v", inst.Reservations[0].Instances[0].State)
	}
}

// With the real clock, a delayed attach completes (and is announced) without
// anyone calling in.
func TestAttachCompletesOnItsOwn(t *testing.T) {
	sc := simtest.Basic()
	sc.Faults.AttachDelay = vpcsim.Duration(50 * time.Millisecond)
	env := simtest.Start(t, sc)
	attached := make(chan vpcsim.ENIAttached, 4)
	cancel := env.Sim.Subscribe(func(e vpcsim.Event) {
		if a, ok := e.(vpcsim.ENIAttached); ok && a.DeviceIndex == 1 {
			attached <- a
		}
	})
	defer cancel()
	c := newEC2(env.EC2URL)
	id := createENI(t, c, &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(simtest.NodeSubnetID)})
	if _, err := attach(c, t, id, 1); err != nil {
		t.Fatal(err)
	}
	select {
	case a := <-attached:
		if a.ENIID != id {
			t.Fatalf("attached %s, want %s", a.ENIID, id)
		}
	case <-time.After(30 * time.Second): // 50 ms expected; generous for a loaded machine
		t.Fatal("ENIAttached never arrived")
	}
	v, _ := env.Sim.Instance(simtest.InstanceID)
	if v.ENIs[1].Attachment.Status != "attached" {
		t.Fatalf("status %s", v.ENIs[1].Attachment.Status)
	}
}
