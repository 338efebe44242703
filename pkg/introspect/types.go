package introspect

import (
	"encoding/json"
	"net"
	"time"
)

// CardENIs is one network card's entry in /v1/enis (keyed by card index).
type CardENIs struct {
	TotalIPs    int
	AssignedIPs int
	ENIs        map[string]ENI
}

// ENI mirrors upstream's datastore ENI as it appears in /v1/enis.
type ENI struct {
	ID                  string
	IsPrimary           bool
	IsTrunk             bool
	IsEFA               bool
	DeviceNumber        int
	AvailableIPv4Cidrs  map[string]CIDR
	IPv6Cidrs           map[string]CIDR
	IsExcludedForPodIPs bool
	RouteTableID        int
	SubnetID            string
}

// CIDR is a /32 secondary address, a /28 prefix or an IPv6 /80 prefix.
// Cidr marshals as net.IPNet does ({"IP": "...", "Mask": "<base64>"}).
type CIDR struct {
	Cidr          net.IPNet
	IPAddresses   map[string]Address
	IsPrefix      bool
	AddressFamily string
}

// Address is one address handed out (or cooling) inside a CIDR.
type Address struct {
	Address        string
	IPAMKey        IPAMKey
	IPAMMetadata   IPAMMetadata
	AssignedTime   time.Time
	UnassignedTime time.Time
}

// IPAMKey identifies a pod interface. ContainerID and IfName are blanked in
// introspection output: the endpoint is readable by anything on the node.
type IPAMKey struct {
	NetworkName string `json:"networkName"`
	ContainerID string `json:"containerID"`
	IfName      string `json:"ifName"`
}

// IPAMMetadata is the pod an address belongs to.
type IPAMMetadata struct {
	K8SPodNamespace string `json:"k8sPodNamespace,omitempty"`
	K8SPodName      string `json:"k8sPodName,omitempty"`
	InterfacesCount int    `json:"interfacesCount,omitempty"`
}

// NetworkEnv is /v1/networkutils-env-settings.
type NetworkEnv struct {
	Connmark             uint32   `json:"AWS_VPC_K8S_CNI_CONNMARK"`
	ExcludeSNATCIDRs     CIDRList `json:"AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS"`
	ExternalSNAT         bool     `json:"AWS_VPC_K8S_CNI_EXTERNALSNAT"`
	ExternalServiceCIDRs CIDRList `json:"AWS_EXTERNAL_SERVICE_CIDRS"`
	MTU                  int      `json:"AWS_VPC_ENI_MTU"`
	VethPrefix           string   `json:"AWS_VPC_K8S_CNI_VETHPREFIX"`
	NodePortSupport      bool     `json:"AWS_VPC_CNI_NODE_PORT_SUPPORT"`
	// RandomizeSNAT is 0 for none, 1 for hashrandom, 2 for prng.
	RandomizeSNAT int `json:"AWS_VPC_K8S_CNI_RANDOMIZESNAT"`
}

// CIDRList is a list of CIDRs that renders as null when empty: upstream
// reports an unset (or wholly invalid) CIDR variable as null, not [], and
// clients comparing the documents see the difference
// (docs/compatibility.md, "Introspection and metrics").
type CIDRList []string

// MarshalJSON renders an empty list as null.
func (l CIDRList) MarshalJSON() ([]byte, error) {
	if len(l) == 0 {
		return []byte("null"), nil
	}
	return json.Marshal([]string(l))
}

// Randomize-SNAT codes of NetworkEnv.RandomizeSNAT.
const (
	RandomizeNone       = 0
	RandomizeHashRandom = 1
	RandomizePRNG       = 2
)

// IPAMDEnv is /v1/ipamd-env-settings.
type IPAMDEnv struct {
	WarmIPTarget             int  `json:"WARM_IP_TARGET"`
	WarmENITarget            int  `json:"WARM_ENI_TARGET"`
	CustomNetworking         bool `json:"AWS_VPC_K8S_CNI_CUSTOM_NETWORK_CFG"`
	ManageENIsNonSchedulable bool `json:"AWS_MANAGE_ENIS_NON_SCHEDULABLE"`
	SubnetDiscovery          bool `json:"ENABLE_SUBNET_DISCOVERY"`
}

// Pool is our /v1/pool: the warm pool at a glance.
type Pool struct {
	// Mode is "secondary-ip", "prefix" or "ipv6-prefix".
	Mode      string
	Targets   Targets
	Cards     []CardPool
	WaitingOn []Activity
	// WaitingADDs is the number of AddNetwork calls waiting now for the
	// pool to give them an address.
	WaitingADDs int
	// LastAction says what the pool manager did last, and when.
	LastAction     string    `json:",omitempty"`
	LastActionTime time.Time `json:",omitempty"`
}

// Targets are the warm-pool settings in force (after defaults and
// validation), plus the limits that bound them.
type Targets struct {
	WarmENI    int
	WarmIP     int
	MinimumIP  int
	WarmPrefix int
	MaxENI     int
	MaxPods    int
	// CooldownSeconds is IP_COOLDOWN_PERIOD.
	CooldownSeconds int
}

// CardPool is one network card's pool.
type CardPool struct {
	Index int
	ENIs  []ENIPool
	// Totals over the card's ENIs.
	Used, Free, Cooling int
	// Quarantined counts pods holding an address on no ENI of the node
	// (EC2 took it away, or restored before its ENI is seen): no other
	// pod gets the address until their DEL.
	Quarantined int
}

// ENIPool is one ENI's usage. Free excludes cooling addresses: a cooling
// address cannot be handed out yet.
type ENIPool struct {
	ID        string
	Device    int
	Primary   bool
	Trunk     bool
	Excluded  bool
	Prefixes  int // /28 or /80 prefixes held
	Secondary int // /32 secondary addresses held
	Used      int
	Free      int
	Cooling   int
	// CoolingUntil is when the last cooling address becomes free again.
	CoolingUntil time.Time `json:",omitempty"`
}

// Activity is something ipamd is waiting on right now.
type Activity struct {
	// Kind is "ec2", "imds", "cooldown", "kubernetes" or "host".
	Kind  string
	What  string
	Since time.Time
}
