package vpcsim_test

import (
	"fmt"
	"sort"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/simtest"
)

func filter(name string, values ...string) types.Filter {
	return types.Filter{Name: aws.String(name), Values: values}
}

func TestDescribeNetworkInterfacesFiltersPaginationTags(t *testing.T) {
	env := simtest.Start(t, simtest.Basic())
	c := newEC2(env.EC2URL)
	cx := ctx(t)
	// 12 leaked-looking ENIs of cluster "a", 3 of cluster "b"
	var ids []string
	for i := 0; i < 15; i++ {
		cluster := "a"
		if i >= 12 {
			cluster = "b"
		}
		ids = append(ids, createENI(t, c, &ec2.CreateNetworkInterfaceInput{
			SubnetId: aws.String(simtest.NodeSubnetID), Description: aws.String("aws-K8S-i-dead"),
			TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeNetworkInterface, Tags: []types.Tag{
				{Key: aws.String("node.k8s.amazonaws.com/instance_id"), Value: aws.String("i-dead")},
				{Key: aws.String("cluster.k8s.amazonaws.com/name"), Value: aws.String(cluster)},
			}}},
		}))
	}
	in := &ec2.DescribeNetworkInterfacesInput{
		Filters: []types.Filter{
			filter("tag-key", "node.k8s.amazonaws.com/instance_id"),
			filter("status", "available"),
			filter("vpc-id", simtest.VPCID),
			filter("tag:cluster.k8s.amazonaws.com/name", "a"),
		},
		MaxResults: aws.Int32(5),
	}
	var got []string
	pages := 0
	for p := ec2.NewDescribeNetworkInterfacesPaginator(c, in); p.HasMorePages(); {
		out, err := p.NextPage(cx)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		if len(out.NetworkInterfaces) > 5 {
			t.Fatalf("page of %d > MaxResults 5", len(out.NetworkInterfaces))
		}
		for _, e := range out.NetworkInterfaces {
			got = append(got, aws.ToString(e.NetworkInterfaceId))
		}
	}
	sort.Strings(got)
	want := append([]string(nil), ids[:12]...)
	sort.Strings(want)
	if fmt.Sprint(got) != fmt.Sprint(want) || pages != 3 {
		t.Fatalf("got %d ENIs in %d pages, want the 12 of cluster a in 3 pages:\n%v", len(got), pages, got)
	}

	// the primary ENI is in-use and untagged: the sweep filter excludes it
	inst, _ := env.Sim.Instance(simtest.InstanceID)
	byInstance := must[*ec2.DescribeNetworkInterfacesOutput](t)(c.DescribeNetworkInterfaces(cx, &ec2.DescribeNetworkInterfacesInput{
		Filters: []types.Filter{filter("attachment.instance-id", simtest.InstanceID)}}))
	if len(byInstance.NetworkInterfaces) != 1 || aws.ToString(byInstance.NetworkInterfaces[0].NetworkInterfaceId) != inst.PrimaryENI {
		t.Fatalf("attachment.instance-id filter: %+v", byInstance.NetworkInterfaces)
	}
	byIP := must[*ec2.DescribeNetworkInterfacesOutput](t)(c.DescribeNetworkInterfaces(cx, &ec2.DescribeNetworkInterfacesInput{
		Filters: []types.Filter{filter("private-ip-address", inst.PrimaryIP.String())}}))
	if len(byIP.NetworkInterfaces) != 1 {
		t.Fatalf("private-ip-address filter: %d", len(byIP.NetworkInterfaces))
	}
	byDesc := must[*ec2.DescribeNetworkInterfacesOutput](t)(c.DescribeNetworkInterfaces(cx, &ec2.DescribeNetworkInterfacesInput{
		Filters: []types.Filter{filter("description", "aws-K8S-*")}}))
	if len(byDesc.NetworkInterfaces) != 15 {
		t.Fatalf("description wildcard filter: %d", len(byDesc.NetworkInterfaces))
	}
	_, err := c.DescribeNetworkInterfaces(cx, &ec2.DescribeNetworkInterfacesInput{Filters: []types.Filter{filter("no-such-filter", "x")}})
	wantCode(t, err, "InvalidParameterValue")

	// tags: add, overwrite, delete by key and by key+value
	must[*ec2.CreateTagsOutput](t)(c.CreateTags(cx, &ec2.CreateTagsInput{Resources: ids[:2], Tags: []types.Tag{
		{Key: aws.String("node.k8s.amazonaws.com/createdAt"), Value: aws.String("2026-01-01T00:00:00Z")}}}))
	tagged := must[*ec2.DescribeNetworkInterfacesOutput](t)(c.DescribeNetworkInterfaces(cx, &ec2.DescribeNetworkInterfacesInput{
		Filters: []types.Filter{filter("tag-key", "node.k8s.amazonaws.com/createdAt")}}))
	if len(tagged.NetworkInterfaces) != 2 || len(tagged.NetworkInterfaces[0].TagSet) != 3 {
		t.Fatalf("CreateTags: %+v", tagged.NetworkInterfaces)
	}
	must[*ec2.DeleteTagsOutput](t)(c.DeleteTags(cx, &ec2.DeleteTagsInput{Resources: ids[:1], Tags: []types.Tag{{Key: aws.String("node.k8s.amazonaws.com/createdAt")}}}))
	must[*ec2.DeleteTagsOutput](t)(c.DeleteTags(cx, &ec2.DeleteTagsInput{Resources: ids[1:2], Tags: []types.Tag{{Key: aws.String("node.k8s.amazonaws.com/createdAt"), Value: aws.String("other")}}}))
	tagged = must[*ec2.DescribeNetworkInterfacesOutput](t)(c.DescribeNetworkInterfaces(cx, &ec2.DescribeNetworkInterfacesInput{
		Filters: []types.Filter{filter("tag-key", "node.k8s.amazonaws.com/createdAt")}}))
	if len(tagged.NetworkInterfaces) != 1 || aws.ToString(tagged.NetworkInterfaces[0].NetworkInterfaceId) != ids[1] {
		t.Fatalf("DeleteTags: %+v", tagged.NetworkInterfaces)
	}
	_, err = c.CreateTags(cx, &ec2.CreateTagsInput{Resources: []string{"eni-0000000000000dead"}, Tags: []types.Tag{{Key: aws.String("k"), Value: aws.String("v")}}})
	wantCode(t, err, "InvalidNetworkInterfaceID.NotFound")
}

func TestDescribeSubnetsVpcsGroupsInstances(t *testing.T) {
	env := simtest.Start(t, simtest.Basic())
	c := newEC2(env.EC2URL)
	cx := ctx(t)
	sn := must[*ec2.DescribeSubnetsOutput](t)(c.DescribeSubnets(cx, &ec2.DescribeSubnetsInput{Filters: []types.Filter{
		filter("vpc-id", simtest.VPCID), filter("availability-zone", "us-west-2a")}}))
	if len(sn.Subnets) != 3 {
		t.Fatalf("subnets in us-west-2a: %d", len(sn.Subnets))
	}
	for _, s := range sn.Subnets {
		if aws.ToString(s.SubnetId) == simtest.NodeSubnetID {
			// /20 = 4096 - 5 reserved - the node's primary address
			if n := aws.ToInt32(s.AvailableIpAddressCount); n != 4090 {
				t.Fatalf("AvailableIpAddressCount %d, want 4090", n)
			}
			if len(s.Ipv6CidrBlockAssociationSet) != 1 || aws.ToString(s.Ipv6CidrBlockAssociationSet[0].Ipv6CidrBlock) != "2600:1f14:abc:de00::/64" {
				t.Fatalf("IPv6 association: %+v", s.Ipv6CidrBlockAssociationSet)
			}
		}
	}
	cni := must[*ec2.DescribeSubnetsOutput](t)(c.DescribeSubnets(cx, &ec2.DescribeSubnetsInput{Filters: []types.Filter{filter("tag:kubernetes.io/role/cni", "1")}}))
	if len(cni.Subnets) != 1 || aws.ToString(cni.Subnets[0].SubnetId) != simtest.CNISubnetID {
		t.Fatalf("cni-tagged subnets: %+v", cni.Subnets)
	}
	vpcs := must[*ec2.DescribeVpcsOutput](t)(c.DescribeVpcs(cx, &ec2.DescribeVpcsInput{VpcIds: []string{simtest.VPCID}}))
	if v := vpcs.Vpcs[0]; len(v.CidrBlockAssociationSet) != 2 || aws.ToString(v.CidrBlockAssociationSet[1].CidrBlock) != "100.64.0.0/16" || len(v.Ipv6CidrBlockAssociationSet) != 1 {
		t.Fatalf("vpc: %+v", v)
	}
	sgs := must[*ec2.DescribeSecurityGroupsOutput](t)(c.DescribeSecurityGroups(cx, &ec2.DescribeSecurityGroupsInput{Filters: []types.Filter{filter("vpc-id", simtest.VPCID)}}))
	if len(sgs.SecurityGroups) != 2 {
		t.Fatalf("security groups: %d", len(sgs.SecurityGroups))
	}
	id := createENI(t, c, &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(simtest.NodeSubnetID)})
	if _, err := attach(c, t, id, 2); err != nil {
		t.Fatal(err)
	}
	di := must[*ec2.DescribeInstancesOutput](t)(c.DescribeInstances(cx, &ec2.DescribeInstancesInput{InstanceIds: []string{simtest.InstanceID}}))
	inst := di.Reservations[0].Instances[0]
	if inst.InstanceType != "m5.large" || aws.ToString(inst.Placement.AvailabilityZone) != "us-west-2a" || len(inst.NetworkInterfaces) != 2 {
		t.Fatalf("instance: %+v", inst)
	}
	devs := map[int32]bool{}
	for _, e := range inst.NetworkInterfaces {
		devs[aws.ToInt32(e.Attachment.DeviceIndex)] = true
	}
	if !devs[0] || !devs[2] {
		t.Fatalf("device indexes: %v", devs)
	}
	_, err := c.DescribeInstances(cx, &ec2.DescribeInstancesInput{InstanceIds: []string{"i-00000000000000bad"}})
	wantCode(t, err, "InvalidInstanceID.NotFound")
}

func TestDescribeInstanceTypes(t *testing.T) {
	env := simtest.Start(t, simtest.Basic())
	c := newEC2(env.EC2URL)
	out := must[*ec2.DescribeInstanceTypesOutput](t)(c.DescribeInstanceTypes(ctx(t), &ec2.DescribeInstanceTypesInput{
		InstanceTypes: []types.InstanceType{"m5.large", "p4d.24xlarge", "m5.metal", "t2.medium", "c6in.32xlarge"}}))
	got := map[string]types.InstanceTypeInfo{}
	for _, it := range out.InstanceTypes {
		got[string(it.InstanceType)] = it
	}
	m5 := got["m5.large"].NetworkInfo
	if aws.ToInt32(m5.MaximumNetworkInterfaces) != 3 || aws.ToInt32(m5.Ipv4AddressesPerInterface) != 10 || got["m5.large"].Hypervisor != types.InstanceTypeHypervisorNitro {
		t.Fatalf("m5.large: %+v", m5)
	}
	p4 := got["p4d.24xlarge"].NetworkInfo
	if aws.ToInt32(p4.MaximumNetworkCards) != 4 || len(p4.NetworkCards) != 4 || aws.ToInt32(p4.NetworkCards[3].MaximumNetworkInterfaces) != 15 || aws.ToInt32(p4.MaximumNetworkInterfaces) != 60 {
		t.Fatalf("p4d.24xlarge: %+v", p4)
	}
	if !aws.ToBool(got["m5.metal"].BareMetal) || got["m5.metal"].Hypervisor != "" {
		t.Fatalf("m5.metal: bare metal without hypervisor, got %+v", got["m5.metal"])
	}
	if got["t2.medium"].Hypervisor != types.InstanceTypeHypervisorXen || aws.ToInt32(got["t2.medium"].NetworkInfo.Ipv4AddressesPerInterface) != 6 {
		t.Fatalf("t2.medium: %+v", got["t2.medium"])
	}
	// all types, paginated
	n := 0
	for p := ec2.NewDescribeInstanceTypesPaginator(c, &ec2.DescribeInstanceTypesInput{MaxResults: aws.Int32(20)}); p.HasMorePages(); {
		page, err := p.NextPage(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		n += len(page.InstanceTypes)
	}
	if n < 60 {
		t.Fatalf("catalog via pagination: %d types", n)
	}
}

// Multi-card attach: p4d.24xlarge has 4 cards of 15 ENIs each.
func TestMultiCardAttach(t *testing.T) {
	sc := simtest.Basic()
	sc.Instances[0].Type = "c6in.32xlarge" // 2 cards × 8
	env := simtest.Start(t, sc)
	c := newEC2(env.EC2URL)
	for dev := int32(1); dev < 8; dev++ {
		if _, err := attach(c, t, createENI(t, c, &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(simtest.NodeSubnetID)}), dev); err != nil {
			t.Fatal(err)
		}
	}
	_, err := attach(c, t, createENI(t, c, &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(simtest.NodeSubnetID)}), 8)
	wantCode(t, err, "AttachmentLimitExceeded")
	for dev := int32(0); dev < 8; dev++ {
		id := createENI(t, c, &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(simtest.NodeSubnetID)})
		out, err := c.AttachNetworkInterface(ctx(t), &ec2.AttachNetworkInterfaceInput{NetworkInterfaceId: aws.String(id), InstanceId: aws.String(simtest.InstanceID), DeviceIndex: aws.Int32(dev), NetworkCardIndex: aws.Int32(1)})
		if err != nil {
			t.Fatalf("card 1 device %d: %v", dev, err)
		}
		if aws.ToInt32(out.NetworkCardIndex) != 1 {
			t.Fatalf("NetworkCardIndex %d", aws.ToInt32(out.NetworkCardIndex))
		}
	}
	_, err = c.AttachNetworkInterface(ctx(t), &ec2.AttachNetworkInterfaceInput{NetworkInterfaceId: aws.String(createENI(t, c, &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(simtest.NodeSubnetID)})), InstanceId: aws.String(simtest.InstanceID), DeviceIndex: aws.Int32(9), NetworkCardIndex: aws.Int32(2)})
	wantCode(t, err, "InvalidParameterValue")
}
