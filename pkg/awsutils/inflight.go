package awsutils

import (
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
)

// Activity kind under which every EC2 operation is reported to a
// CallTracker.
const ActivityEC2 = "ec2"

// CallTracker is told when each EC2 operation starts, before pacing and
// retries, and calls the returned func when the operation has returned, so
// a daemon can show the calls in flight (ipamd's /v1/pool WaitingOn).
// kind is ActivityEC2; what is the EC2 action and the resource it is about,
// e.g. "AttachNetworkInterface eni-0abc". Implementations must be safe for
// concurrent use and must not block. *introspect.Tracker is one.
type CallTracker interface {
	Begin(kind, what string) (end func())
}

// beginCall reports the start of one operation to the tracker, if any.
func (e *EC2) beginCall(action string, params any) (end func()) {
	if e.cfg.Calls == nil {
		return func() {}
	}
	what := action
	if s := callSubject(params); s != "" {
		what += " " + s
	}
	return e.cfg.Calls.Begin(ActivityEC2, what)
}

// callSubject names the resources an EC2 request is about; "" for a
// filtered describe.
func callSubject(params any) string {
	var ids []string
	switch in := params.(type) {
	case *ec2.DescribeInstanceTypesInput:
		for _, t := range in.InstanceTypes {
			ids = append(ids, string(t))
		}
	case *ec2.DescribeInstancesInput:
		ids = in.InstanceIds
	case *ec2.DescribeNetworkInterfacesInput:
		ids = in.NetworkInterfaceIds
	case *ec2.DescribeSubnetsInput:
		ids = in.SubnetIds
	case *ec2.DescribeTrunkInterfaceAssociationsInput:
		ids = in.AssociationIds
	case *ec2.CreateTagsInput:
		ids = in.Resources
	case *ec2.CreateNetworkInterfaceInput:
		ids = []string{aws.ToString(in.SubnetId)}
	case *ec2.AttachNetworkInterfaceInput:
		ids = []string{aws.ToString(in.NetworkInterfaceId), aws.ToString(in.InstanceId)}
	case *ec2.DetachNetworkInterfaceInput:
		ids = []string{aws.ToString(in.AttachmentId)}
	case *ec2.DeleteNetworkInterfaceInput:
		ids = []string{aws.ToString(in.NetworkInterfaceId)}
	case *ec2.ModifyNetworkInterfaceAttributeInput:
		ids = []string{aws.ToString(in.NetworkInterfaceId)}
	case *ec2.AssignPrivateIpAddressesInput:
		ids = []string{aws.ToString(in.NetworkInterfaceId)}
	case *ec2.UnassignPrivateIpAddressesInput:
		ids = []string{aws.ToString(in.NetworkInterfaceId)}
	case *ec2.AssignIpv6AddressesInput:
		ids = []string{aws.ToString(in.NetworkInterfaceId)}
	case *ec2.AssociateTrunkInterfaceInput:
		ids = []string{aws.ToString(in.BranchInterfaceId), aws.ToString(in.TrunkInterfaceId)}
	case *ec2.DisassociateTrunkInterfaceInput:
		ids = []string{aws.ToString(in.AssociationId)}
	}
	return strings.Join(ids, " ")
}
