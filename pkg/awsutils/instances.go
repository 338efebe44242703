package awsutils

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// maxDeviceIndex bounds the device index search (upstream scans 0..99).
const maxDeviceIndex = 100

// InstanceType describes one instance type's networking limits.
func (e *EC2) InstanceType(ctx context.Context, instanceType string) (InstanceTypeInfo, error) {
	if instanceType == "" {
		return InstanceTypeInfo{}, fmt.Errorf("describing instance type: empty type name")
	}
	out, err := e.api.DescribeInstanceTypes(ctx, &ec2.DescribeInstanceTypesInput{
		InstanceTypes: []types.InstanceType{types.InstanceType(instanceType)},
	})
	if err != nil {
		return InstanceTypeInfo{}, fmt.Errorf("describing instance type %s: %w", instanceType, err)
	}
	return single("instance type "+instanceType, out.InstanceTypes, parseInstanceType)
}

func parseInstanceType(it types.InstanceTypeInfo) (InstanceTypeInfo, error) {
	info := InstanceTypeInfo{
		Type:       string(it.InstanceType),
		Hypervisor: string(it.Hypervisor),
		BareMetal:  aws.ToBool(it.BareMetal),
		Trunking:   TrunkingCompatible(string(it.InstanceType)),
	}
	if it.VCpuInfo != nil {
		info.VCPUs = int(aws.ToInt32(it.VCpuInfo.DefaultVCpus))
	}
	if info.Hypervisor == "" {
		info.Hypervisor = HypervisorUnknown
	}
	ni := it.NetworkInfo
	if ni == nil || ni.MaximumNetworkInterfaces == nil || ni.Ipv4AddressesPerInterface == nil {
		return InstanceTypeInfo{}, fmt.Errorf("instance type %s: EC2 reports no ENI or IPv4 limit", info.Type)
	}
	info.MaxENIsInstance = int(aws.ToInt32(ni.MaximumNetworkInterfaces))
	info.MaxENIs = info.MaxENIsInstance
	info.IPv4PerENI = int(aws.ToInt32(ni.Ipv4AddressesPerInterface))
	info.IPv6PerENI = int(aws.ToInt32(ni.Ipv6AddressesPerInterface))
	info.DefaultCard = int(aws.ToInt32(ni.DefaultNetworkCardIndex))
	for _, c := range ni.NetworkCards {
		info.NetworkCards = append(info.NetworkCards, NetworkCard{
			Index:   int(aws.ToInt32(c.NetworkCardIndex)),
			MaxENIs: int(aws.ToInt32(c.MaximumNetworkInterfaces)),
		})
	}
	slices.SortFunc(info.NetworkCards, func(a, b NetworkCard) int { return cmp.Compare(a.Index, b.Index) })
	if len(info.NetworkCards) == 0 {
		info.NetworkCards = []NetworkCard{{Index: 0, MaxENIs: info.MaxENIs}}
	}
	// The ENI limit that matters for one card's pool is that card's limit
	// (upstream's generated table; its runtime path took the instance-wide one).
	for _, c := range info.NetworkCards {
		if c.Index == info.DefaultCard && c.MaxENIs > 0 {
			info.MaxENIs = c.MaxENIs
		}
	}
	return info, nil
}

// Instance describes the instance and the ENIs attached to it.
func (e *EC2) Instance(ctx context.Context, instanceID string) (InstanceInfo, error) {
	if instanceID == "" {
		return InstanceInfo{}, fmt.Errorf("describing instance: empty instance id")
	}
	out, err := e.api.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{instanceID}})
	if err != nil {
		return InstanceInfo{}, fmt.Errorf("describing instance %s: %w", instanceID, err)
	}
	for _, r := range out.Reservations {
		for _, in := range r.Instances {
			if aws.ToString(in.InstanceId) == instanceID {
				return parseInstance(in), nil
			}
		}
	}
	return InstanceInfo{}, fmt.Errorf("describing instance %s: not in the response", instanceID)
}

func parseInstance(in types.Instance) InstanceInfo {
	info := InstanceInfo{
		ID:       aws.ToString(in.InstanceId),
		Type:     string(in.InstanceType),
		SubnetID: aws.ToString(in.SubnetId),
		VPCID:    aws.ToString(in.VpcId),
	}
	if in.Placement != nil {
		info.AZ = aws.ToString(in.Placement.AvailabilityZone)
	}
	for _, ni := range in.NetworkInterfaces {
		a := AttachedENI{ID: aws.ToString(ni.NetworkInterfaceId)}
		if ni.Attachment != nil {
			a.AttachmentID = aws.ToString(ni.Attachment.AttachmentId)
			a.DeviceIndex = int(aws.ToInt32(ni.Attachment.DeviceIndex))
			a.NetworkCard = int(aws.ToInt32(ni.Attachment.NetworkCardIndex))
		}
		if a.DeviceIndex == 0 && a.NetworkCard == 0 {
			info.PrimaryENI = a.ID
			info.SecurityGroups = groupIDs(ni.Groups)
		}
		info.ENIs = append(info.ENIs, a)
	}
	slices.SortFunc(info.ENIs, func(a, b AttachedENI) int {
		return cmp.Or(cmp.Compare(a.NetworkCard, b.NetworkCard), cmp.Compare(a.DeviceIndex, b.DeviceIndex))
	})
	return info
}

// FreeDeviceIndex returns the lowest device index not in use on a network
// card of the instance (one DescribeInstances call).
func (e *EC2) FreeDeviceIndex(ctx context.Context, instanceID string, card int) (int, error) {
	info, err := e.Instance(ctx, instanceID)
	if err != nil {
		return 0, err
	}
	return FreeDeviceIndex(info.ENIs, card)
}

// FreeDeviceIndex returns the lowest device index in 0..99 that no ENI of
// attached uses on card.
func FreeDeviceIndex(attached []AttachedENI, card int) (int, error) {
	used := make(map[int]bool, len(attached))
	for _, a := range attached {
		if a.NetworkCard == card {
			used[a.DeviceIndex] = true
		}
	}
	for i := range maxDeviceIndex {
		if !used[i] {
			return i, nil
		}
	}
	return 0, fmt.Errorf("no free device index on network card %d", card)
}
