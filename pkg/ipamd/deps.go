package ipamd

import (
	"context"
	"net"
	"net/netip"

	"github.com/vpc-cni/vpc-cni/pkg/awsutils"
	"github.com/vpc-cni/vpc-cni/pkg/ipamd/hostlinks"
	"github.com/vpc-cni/vpc-cni/pkg/networkutils"
)

// EC2 is the part of the EC2 adapter ipamd uses. *awsutils.EC2 implements
// it; tests use the real adapter against vpcsim.
type EC2 interface {
	InstanceType(ctx context.Context, name string) (awsutils.InstanceTypeInfo, error)
	DescribeENIs(ctx context.Context, ids []string) (enis []awsutils.ENI, vanished []string, err error)
	InstanceENIs(ctx context.Context, instanceID string) ([]awsutils.ENI, error)
	AllocateENI(ctx context.Context, req awsutils.AllocateENIRequest) (awsutils.ENI, error)
	FreeENI(ctx context.Context, eniID, attachmentID string) error
	DeleteENI(ctx context.Context, eniID string) error
	AssignIPv4(ctx context.Context, eniID string, n int) ([]netip.Addr, error)
	AssignIPv4Prefixes(ctx context.Context, eniID string, n int) ([]netip.Prefix, error)
	AssignIPv6Prefixes(ctx context.Context, eniID string, n int) ([]netip.Prefix, error)
	UnassignIPv4(ctx context.Context, eniID string, addrs []netip.Addr) error
	UnassignIPv4Prefixes(ctx context.Context, eniID string, prefixes []netip.Prefix) error
	SetDeleteOnTermination(ctx context.Context, eniID, attachmentID string) error
	ModifySecurityGroups(ctx context.Context, eniID string, groups []string) error
	CreateTags(ctx context.Context, resourceID string, tags map[string]string) error
}

// SubnetLister lists the subnets of the node's VPC and AZ for subnet
// discovery (ENABLE_SUBNET_DISCOVERY). Nil: only the node's own subnet.
type SubnetLister interface {
	Subnets(ctx context.Context, vpcID, az string) ([]awsutils.Subnet, error)
}

// LeakedENILister lists unattached ENIs that carry our instance-id tag key
// in the VPC (scoped to the cluster when clusterName is set). Nil: no
// leaked-ENI sweep.
type LeakedENILister interface {
	LeakedENIs(ctx context.Context, vpcID, clusterName string) ([]awsutils.ENI, error)
}

// Metadata is the part of the IMDS adapter ipamd uses (*awsutils.Metadata).
type Metadata interface {
	Identity(ctx context.Context) (awsutils.Identity, error)
	ENIs(ctx context.Context) ([]awsutils.ENIMetadata, error)
	ENI(ctx context.Context, mac string) (awsutils.ENIMetadata, error)
}

// HostNetwork wires ENIs on the node (*networkutils.Network in production;
// root only). A nil HostNetwork in Options means "program nothing", the
// test-only VPC_CNI_DISABLE_HOST_NETWORK mode.
type HostNetwork interface {
	SetupENI(ctx context.Context, eni networkutils.ENI) error
	TeardownENI(ctx context.Context, primaryIP netip.Addr, table int) error
	ReconcileHost(ctx context.Context, cfg networkutils.HostConfig) (networkutils.HostResult, error)
	// DeletePodRules deletes the to-pod and from-pod rules of each address.
	DeletePodRules(ctx context.Context, podIPs ...netip.Addr) error
	// RestorePodRules leaves each pod the rules a fresh ADD would: one
	// to-pod rule (512) and one from-pod rule (1536) to the pod's table,
	// or none when the table is main (a pod on the primary ENI).
	RestorePodRules(ctx context.Context, pods []networkutils.PodRule) error
	LinkByMAC(ctx context.Context, mac net.HardwareAddr) (networkutils.Link, error)
}

// PodLinks lists the host's links by name suffix (the last
// vethname.SuffixLen characters), so ipamd can tell whether a pod's host
// veth still exists, and whose sandbox it is. Production lists ipamd's own
// network namespace. Nil: every pod is taken as live and nothing is swept.
type PodLinks interface {
	// LinkSuffixes maps the suffix of every link to the aliases of the
	// links with that suffix ("" for one without): one listing of the
	// links. A pod veth our plugin made carries its sandbox's mark there
	// (podnet.SandboxMark). Several links share a suffix when they are
	// the same pod's under different prefixes (eni… and a branch pod's
	// vlan… of an earlier pod of the name).
	LinkSuffixes(ctx context.Context) (map[string][]string, error)
	// PodRoutes lists the host routes to pods (<ip> dev <veth prefix>…),
	// from which a corrupt checkpoint's addresses are recovered.
	PodRoutes(ctx context.Context) ([]PodRoute, error)
}

// PodRoute is a host route to one pod address through its host veth
// (hostlinks reads them from the kernel).
type PodRoute = hostlinks.PodRoute

// Kubernetes is what ipamd asks of the API server. Nil: no API server
// (no feature that needs one is enabled).
type Kubernetes interface {
	// NodeSchedulable is false while the node carries the
	// node.kubernetes.io/unschedulable:NoSchedule taint.
	NodeSchedulable(ctx context.Context) (bool, error)
	// MaxPods is the node's status.capacity.pods.
	MaxPods(ctx context.Context) (int, error)
	// ENIConfig resolves the node's ENIConfig (custom networking).
	ENIConfig(ctx context.Context) (ENIConfig, error)
	// Pod reads a pod of this node (ENABLE_POD_ENI) from the node's pod
	// cache; PodLive from the API server, when the cache may lag.
	Pod(ctx context.Context, namespace, name string) (PodInfo, error)
	PodLive(ctx context.Context, namespace, name string) (PodInfo, error)
	// AnnotatePodIP sets vpc.amazonaws.com/pod-ips (ANNOTATE_POD_IP);
	// ClearPodIP empties it if it still holds ip.
	AnnotatePodIP(ctx context.Context, namespace, name, ip string) error
	ClearPodIP(ctx context.Context, namespace, name, ip string) error
	// DeclareFeature sets a feature on the node's CNINode.
	DeclareFeature(ctx context.Context, name, value string) error
	// Eventf records an event on the aws-node pod (never fails).
	Eventf(ctx context.Context, eventType, reason, format string, args ...any)
}

// ENIConfig is where custom networking puts new ENIs.
type ENIConfig struct {
	Name           string
	Subnet         string
	SecurityGroups []string // empty: the primary ENI's groups
}
