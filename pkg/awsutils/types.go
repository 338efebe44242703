package awsutils

import "net/netip"

// ENI is an elastic network interface as EC2 describes it.
type ENI struct {
	ID          string
	MAC         string
	SubnetID    string
	VPCID       string
	AZ          string
	Description string
	// InterfaceType is EC2's type: "interface", "trunk", "branch", "efa",
	// "efa-only", ...
	InterfaceType string
	// Status is "available", "attaching", "in-use", "detaching", ...
	Status string
	// Attachment is nil while the ENI is not attached.
	Attachment *Attachment
	// PrivateIPv4 is the ENI's primary private address.
	PrivateIPv4    netip.Addr
	SecondaryIPv4  []netip.Addr
	IPv4Prefixes   []netip.Prefix
	IPv6           []netip.Addr
	IPv6Prefixes   []netip.Prefix
	Tags           map[string]string
	SecurityGroups []string
}

// Attachment is an ENI's attachment to an instance.
type Attachment struct {
	ID                  string
	InstanceID          string
	DeviceIndex         int
	NetworkCard         int
	DeleteOnTermination bool
	// Status is "attaching", "attached", "detaching", "detached", or "" when
	// unknown (AllocateENI does not describe the ENI again).
	Status string
}

// Hypervisor values of InstanceTypeInfo.
const (
	HypervisorNitro   = "nitro"
	HypervisorXen     = "xen"
	HypervisorUnknown = "unknown"
)

// InstanceTypeInfo holds the networking limits of an instance type.
type InstanceTypeInfo struct {
	Type string
	// MaxENIs is the ENI limit of the default network card (upstream's
	// generated table; its runtime fallback used the instance-wide value).
	MaxENIs int
	// MaxENIsInstance is the instance-wide NetworkInfo.MaximumNetworkInterfaces.
	MaxENIsInstance int
	// IPv4PerENI counts every IPv4 address of an ENI, the primary included.
	IPv4PerENI   int
	IPv6PerENI   int
	NetworkCards []NetworkCard
	DefaultCard  int
	Hypervisor   string
	BareMetal    bool
	// VCPUs is the default vCPU count (max-pods caps prefix mode by it).
	VCPUs int
	// Trunking: the type can trunk ENIs (branch ENIs for security groups
	// per pod), from TrunkingCompatible's static table, not from EC2.
	Trunking bool
}

// NetworkCard is one network card of an instance type.
type NetworkCard struct {
	Index   int
	MaxENIs int
}

// PrefixDelegationSupported reports upstream's rule: Nitro or bare metal.
func (t InstanceTypeInfo) PrefixDelegationSupported() bool {
	return t.Hypervisor == HypervisorNitro || t.BareMetal
}

// InstanceInfo is what ipamd needs to know about its own instance.
type InstanceInfo struct {
	ID             string
	Type           string
	SubnetID       string
	VPCID          string
	AZ             string
	PrimaryENI     string
	SecurityGroups []string
	ENIs           []AttachedENI
}

// AttachedENI is one ENI as listed on an instance.
type AttachedENI struct {
	ID           string
	AttachmentID string
	DeviceIndex  int
	NetworkCard  int
}

// Subnet is a VPC subnet.
type Subnet struct {
	ID           string
	VPCID        string
	CIDR         netip.Prefix
	IPv6CIDRs    []netip.Prefix
	AZ           string
	AvailableIPs int
	Tags         map[string]string
}
