package vpcsim

import (
	"fmt"
	"os"

	"sigs.k8s.io/yaml"
)

// Scenario describes a simulated AWS account: its VPCs, subnets, security
// groups, instances, pre-existing ENIs and fault settings. It is loaded from
// YAML (keys are the json tags below).
type Scenario struct {
	Region            string   `json:"region"`
	AccountID         string   `json:"accountId,omitempty"`
	AvailabilityZones []string `json:"availabilityZones,omitempty"`
	// PublicIPv4Pool is where public IPs for subnets with mapPublicIp come
	// from (default 198.51.100.0/24).
	PublicIPv4Pool    string         `json:"publicIpv4Pool,omitempty"`
	VPCs              []VPCSpec      `json:"vpcs"`
	Instances         []InstanceSpec `json:"instances,omitempty"`
	NetworkInterfaces []ENISpec      `json:"networkInterfaces,omitempty"`
	Faults            Faults         `json:"faults,omitempty"`
	// DenyActions answer UnauthorizedOperation, as a missing IAM permission does.
	DenyActions []string `json:"denyActions,omitempty"`
}

// VPCSpec is one VPC.
type VPCSpec struct {
	ID             string              `json:"id,omitempty"`
	CIDR           string              `json:"cidr"`
	SecondaryCIDRs []string            `json:"secondaryCidrs,omitempty"`
	IPv6CIDR       string              `json:"ipv6Cidr,omitempty"` // a /56
	Tags           map[string]string   `json:"tags,omitempty"`
	Subnets        []SubnetSpec        `json:"subnets"`
	SecurityGroups []SecurityGroupSpec `json:"securityGroups,omitempty"`
}

// SubnetSpec is one subnet of a VPC.
type SubnetSpec struct {
	ID          string            `json:"id,omitempty"`
	AZ          string            `json:"az"`
	CIDR        string            `json:"cidr"`
	IPv6CIDR    string            `json:"ipv6Cidr,omitempty"` // a /64 of the VPC's /56
	MapPublicIP bool              `json:"mapPublicIp,omitempty"`
	Tags        map[string]string `json:"tags,omitempty"`
}

// SecurityGroupSpec is one security group of a VPC.
type SecurityGroupSpec struct {
	ID          string `json:"id,omitempty"`
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	// Ingress and Egress rules; a group with neither gets all traffic from
	// the VPC's CIDRs in and all traffic out.
	Ingress []RuleSpec `json:"ingress,omitempty"`
	Egress  []RuleSpec `json:"egress,omitempty"`
}

// InstanceSpec describes an instance to run.
type InstanceSpec struct {
	ID             string   `json:"id,omitempty"`
	Type           string   `json:"type"`
	Subnet         string   `json:"subnet"`
	SecurityGroups []string `json:"securityGroups,omitempty"`
	PrivateIP      string   `json:"privateIp,omitempty"`
	// IPv6AddressCount IPv6 addresses on the primary ENI at launch (the
	// first is the instance's primary IPv6, as IPv6 clusters need).
	IPv6AddressCount int               `json:"ipv6AddressCount,omitempty"`
	Tags             map[string]string `json:"tags,omitempty"`
	IMDSv1Disabled   bool              `json:"imdsV1Disabled,omitempty"`
	// IMDSHopLimit is the instance's HttpPutResponseHopLimit, 1-64; 0 means
	// EC2's default, 1. A process one hop behind the instance (a pod not on
	// the host network) gets an IMDSv2 token only with 2 or more, as EKS
	// managed node groups' launch templates set.
	IMDSHopLimit int `json:"imdsHopLimit,omitempty"`
}

// ENISpec describes a pre-existing ENI, e.g. a trunk or a no_manage ENI.
type ENISpec struct {
	ID                  string            `json:"id,omitempty"`
	Subnet              string            `json:"subnet"`
	Description         string            `json:"description,omitempty"`
	SecurityGroups      []string          `json:"securityGroups,omitempty"`
	InterfaceType       string            `json:"interfaceType,omitempty"` // "" (normal) or "trunk"
	SecondaryIPCount    int               `json:"secondaryIpCount,omitempty"`
	Tags                map[string]string `json:"tags,omitempty"`
	AttachTo            string            `json:"attachTo,omitempty"` // instance id
	DeviceIndex         int               `json:"deviceIndex,omitempty"`
	NetworkCard         int               `json:"networkCard,omitempty"`
	DeleteOnTermination bool              `json:"deleteOnTermination,omitempty"`
}

// LoadScenario reads a YAML scenario file.
func LoadScenario(path string) (Scenario, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Scenario{}, fmt.Errorf("read scenario: %w", err)
	}
	s, err := ParseScenario(data)
	if err != nil {
		return Scenario{}, fmt.Errorf("scenario %s: %w", path, err)
	}
	return s, nil
}

// ParseScenario parses a YAML (or JSON) scenario. Unknown keys are errors so
// typos do not silently change the world.
func ParseScenario(data []byte) (Scenario, error) {
	var s Scenario
	if err := yaml.UnmarshalStrict(data, &s); err != nil {
		return Scenario{}, fmt.Errorf("parse scenario: %w", err)
	}
	return s, nil
}
