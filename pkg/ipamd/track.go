package ipamd

import (
	"context"
	"net/netip"

	"github.com/vpc-cni/vpc-cni/pkg/awsutils"
	"github.com/vpc-cni/vpc-cni/pkg/introspect"
)

// Activity kinds shown in /v1/pool's WaitingOn.
const (
	waitEC2      = "ec2"
	waitIMDS     = "imds"
	waitCooldown = "cooldown"
	waitKube     = "kubernetes"
)

// trackedEC2 shows every EC2 call as an activity while it runs, named by
// the EC2 actions it makes.
type trackedEC2 struct {
	EC2
	t *introspect.Tracker
}

func (e trackedEC2) InstanceType(ctx context.Context, name string) (awsutils.InstanceTypeInfo, error) {
	defer e.t.Begin(waitEC2, "DescribeInstanceTypes "+name)()
	return e.EC2.InstanceType(ctx, name)
}

func (e trackedEC2) InstanceENIs(ctx context.Context, id string) ([]awsutils.ENI, error) {
	defer e.t.Begin(waitEC2, "DescribeNetworkInterfaces "+id)()
	return e.EC2.InstanceENIs(ctx, id)
}

func (e trackedEC2) DescribeENIs(ctx context.Context, ids []string) ([]awsutils.ENI, []string, error) {
	defer e.t.Begin(waitEC2, "DescribeNetworkInterfaces")()
	return e.EC2.DescribeENIs(ctx, ids)
}

func (e trackedEC2) AllocateENI(ctx context.Context, req awsutils.AllocateENIRequest) (awsutils.ENI, error) {
	defer e.t.Begin(waitEC2, "CreateNetworkInterface + AttachNetworkInterface in "+req.SubnetID)()
	return e.EC2.AllocateENI(ctx, req)
}

func (e trackedEC2) FreeENI(ctx context.Context, eniID, attachmentID string) error {
	defer e.t.Begin(waitEC2, "DetachNetworkInterface + DeleteNetworkInterface "+eniID)()
	return e.EC2.FreeENI(ctx, eniID, attachmentID)
}

func (e trackedEC2) DeleteENI(ctx context.Context, eniID string) error {
	defer e.t.Begin(waitEC2, "DeleteNetworkInterface "+eniID)()
	return e.EC2.DeleteENI(ctx, eniID)
}

func (e trackedEC2) AssignIPv4(ctx context.Context, eniID string, n int) ([]netip.Addr, error) {
	defer e.t.Begin(waitEC2, "AssignPrivateIpAddresses "+eniID)()
	return e.EC2.AssignIPv4(ctx, eniID, n)
}

func (e trackedEC2) AssignIPv4Prefixes(ctx context.Context, eniID string, n int) ([]netip.Prefix, error) {
	defer e.t.Begin(waitEC2, "AssignPrivateIpAddresses (prefixes) "+eniID)()
	return e.EC2.AssignIPv4Prefixes(ctx, eniID, n)
}

func (e trackedEC2) AssignIPv6Prefixes(ctx context.Context, eniID string, n int) ([]netip.Prefix, error) {
	defer e.t.Begin(waitEC2, "AssignIpv6Addresses "+eniID)()
	return e.EC2.AssignIPv6Prefixes(ctx, eniID, n)
}

func (e trackedEC2) UnassignIPv4(ctx context.Context, eniID string, addrs []netip.Addr) error {
	defer e.t.Begin(waitEC2, "UnassignPrivateIpAddresses "+eniID)()
	return e.EC2.UnassignIPv4(ctx, eniID, addrs)
}

func (e trackedEC2) UnassignIPv4Prefixes(ctx context.Context, eniID string, prefixes []netip.Prefix) error {
	defer e.t.Begin(waitEC2, "UnassignPrivateIpAddresses (prefixes) "+eniID)()
	return e.EC2.UnassignIPv4Prefixes(ctx, eniID, prefixes)
}

func (e trackedEC2) SetDeleteOnTermination(ctx context.Context, eniID, attachmentID string) error {
	defer e.t.Begin(waitEC2, "ModifyNetworkInterfaceAttribute "+eniID)()
	return e.EC2.SetDeleteOnTermination(ctx, eniID, attachmentID)
}

func (e trackedEC2) ModifySecurityGroups(ctx context.Context, eniID string, groups []string) error {
	defer e.t.Begin(waitEC2, "ModifyNetworkInterfaceAttribute "+eniID)()
	return e.EC2.ModifySecurityGroups(ctx, eniID, groups)
}

func (e trackedEC2) CreateTags(ctx context.Context, resourceID string, tags map[string]string) error {
	defer e.t.Begin(waitEC2, "CreateTags "+resourceID)()
	return e.EC2.CreateTags(ctx, resourceID, tags)
}

// trackedKube shows every API server request as an activity while it runs.
type trackedKube struct {
	Kubernetes
	t *introspect.Tracker
}

func (k trackedKube) NodeSchedulable(ctx context.Context) (bool, error) {
	defer k.t.Begin(waitKube, "GET node (taints)")()
	return k.Kubernetes.NodeSchedulable(ctx)
}

func (k trackedKube) MaxPods(ctx context.Context) (int, error) {
	defer k.t.Begin(waitKube, "GET node (capacity)")()
	return k.Kubernetes.MaxPods(ctx)
}

func (k trackedKube) ENIConfig(ctx context.Context) (ENIConfig, error) {
	defer k.t.Begin(waitKube, "GET node + ENIConfig")()
	return k.Kubernetes.ENIConfig(ctx)
}

func (k trackedKube) Pod(ctx context.Context, namespace, name string) (PodInfo, error) {
	defer k.t.Begin(waitKube, "GET pod "+namespace+"/"+name)()
	return k.Kubernetes.Pod(ctx, namespace, name)
}

func (k trackedKube) AnnotatePodIP(ctx context.Context, namespace, name, ip string) error {
	defer k.t.Begin(waitKube, "PATCH pod "+namespace+"/"+name)()
	return k.Kubernetes.AnnotatePodIP(ctx, namespace, name, ip)
}

func (k trackedKube) ClearPodIP(ctx context.Context, namespace, name, ip string) error {
	defer k.t.Begin(waitKube, "PATCH pod "+namespace+"/"+name)()
	return k.Kubernetes.ClearPodIP(ctx, namespace, name, ip)
}

func (k trackedKube) DeclareFeature(ctx context.Context, name, value string) error {
	defer k.t.Begin(waitKube, "PATCH CNINode feature "+name)()
	return k.Kubernetes.DeclareFeature(ctx, name, value)
}

// trackedSubnets and trackedLeaked show subnet discovery and the
// leaked-ENI sweep's EC2 calls.
type trackedSubnets struct {
	SubnetLister
	t *introspect.Tracker
}

func (s trackedSubnets) Subnets(ctx context.Context, vpcID, az string) ([]awsutils.Subnet, error) {
	defer s.t.Begin(waitEC2, "DescribeSubnets "+vpcID+" "+az)()
	return s.SubnetLister.Subnets(ctx, vpcID, az)
}

type trackedLeaked struct {
	LeakedENILister
	t *introspect.Tracker
}

func (l trackedLeaked) LeakedENIs(ctx context.Context, vpcID, clusterName string) ([]awsutils.ENI, error) {
	defer l.t.Begin(waitEC2, "DescribeNetworkInterfaces (leaked ENIs)")()
	return l.LeakedENILister.LeakedENIs(ctx, vpcID, clusterName)
}
