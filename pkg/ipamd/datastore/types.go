package datastore

import (
	"fmt"
	"net/netip"
	"time"
)

// Key identifies one CNI attachment: the primary key the CNI spec gives a
// runtime (network name, container id, interface name).
type Key struct {
	NetworkName string
	ContainerID string
	IfName      string
}

// String renders the key the way upstream logs it: net/container/if.
func (k Key) String() string {
	return k.NetworkName + "/" + k.ContainerID + "/" + k.IfName
}

// keyLess reports a key with an empty field: no DEL can name it.
func (k Key) keyLess() bool {
	return k.NetworkName == "" || k.ContainerID == "" || k.IfName == ""
}

// Upstream (pre-1.12 CRI migration) wrote entries whose network name and
// interface name were unknown; a DEL carrying the real names must still find
// them by container id.
const (
	MigratedNetworkName = "_migrated-from-cri"
	MigratedIfName      = "unknown"
)

// A pod address recovered from the host's routes after a corrupt
// checkpoint has no container id or pod name: it is keyed by its host
// veth's name suffix (ContainerID), which a DEL's pod name hashes to.
const (
	RecoveredNetworkName = "_recovered-from-host"
	RecoveredIfName      = "unknown"
)

// RecoveredKey is the key of an address recovered from the host route to
// the veth whose name ends with suffix.
func RecoveredKey(suffix string) Key {
	return Key{NetworkName: RecoveredNetworkName, ContainerID: suffix, IfName: RecoveredIfName}
}

// Metadata is what ipamd records about the pod behind a key. It is persisted
// in the checkpoint; InterfacesCount 0 means 1 (upstream convention).
type Metadata struct {
	K8sPodNamespace string
	K8sPodName      string
	InterfacesCount int
}

// Mode is the class of CIDR the store hands addresses out of. Every CIDR has
// exactly one class (see ClassOf); only CIDRs of the active mode serve pods.
type Mode uint8

const (
	// ModeSecondaryIPv4 serves /32 secondary IPv4 addresses.
	ModeSecondaryIPv4 Mode = iota
	// ModePrefixIPv4 serves addresses of delegated IPv4 prefixes (/28).
	ModePrefixIPv4
	// ModeIPv6 serves addresses of IPv6 CIDRs (/80 prefixes, /128s).
	ModeIPv6

	numModes = 3
)

func (m Mode) String() string {
	switch m {
	case ModeSecondaryIPv4:
		return "secondary-ipv4"
	case ModePrefixIPv4:
		return "prefix-ipv4"
	case ModeIPv6:
		return "ipv6"
	}
	return fmt.Sprintf("mode(%d)", uint8(m))
}

func (m Mode) valid() bool { return m < numModes }

// ClassOf returns the mode a CIDR serves in: IPv4 /32 → secondary, shorter
// IPv4 → prefix, any IPv6 → IPv6.
func ClassOf(p netip.Prefix) Mode {
	switch {
	case p.Addr().Is6():
		return ModeIPv6
	case p.Bits() == 32:
		return ModeSecondaryIPv4
	default:
		return ModePrefixIPv4
	}
}

// ENI describes a network interface as ipamd knows it.
type ENI struct {
	ID           string
	DeviceNumber int
	IsPrimary    bool
	IsTrunk      bool
	IsEFA        bool
	RouteTableID int
	SubnetID     string
	// CreatedAt is when the ENI was added (zero → the store's clock at
	// AddENI); the pool planner keeps young ENIs.
	CreatedAt time.Time
	// ExcludedForPods: no new address is handed out of this ENI and its
	// addresses do not count in Stats.
	ExcludedForPods bool
}

// Assignment is an address held by a key, with the ENI facts the plugin
// needs to wire the pod.
type Assignment struct {
	Key          Key
	Meta         Metadata
	Addr         netip.Addr
	CIDR         netip.Prefix // zero for a pending allocation (no known CIDR)
	ENIID        string       // empty for a pending allocation
	DeviceNumber int
	RouteTableID int
	AssignedAt   time.Time
}

// Allocation is one live entry of the checkpoint.
type Allocation struct {
	Key        Key
	Addr       netip.Addr
	AssignedAt time.Time
	Meta       Metadata
	// extra holds the members of the checkpoint entry it was read from
	// (and of its metadata) that this version does not know (unknown.go),
	// written back as read.
	extra kept
}

// Cooling is an address released at UnassignedAt; it is not handed out again
// before UnassignedAt + cooldown period. Persisted as our checkpoint
// extension so cooldown survives restarts.
type Cooling struct {
	Addr         netip.Addr
	UnassignedAt time.Time
}

// CoolingAddr is a cooling address as Snapshot lists it: AssignedAt is
// when it was last handed out (zero when it was restored cooling, as the
// checkpoint does not carry that time).
type CoolingAddr struct {
	Cooling
	AssignedAt time.Time
}

// Stats are O(1) counters. IP and CIDR figures cover CIDRs of the active mode
// on ENIs that are not excluded for pods.
type Stats struct {
	Mode Mode
	// TotalIPs = AssignedIPs + CoolingIPs + AvailableIPs.
	TotalIPs     int
	AssignedIPs  int
	CoolingIPs   int // released, still in cooldown: NOT available
	AvailableIPs int // free and not cooling: what Assign can hand out now
	// TotalCIDRs and FreeCIDRs count CIDRs of the active mode; a free CIDR
	// has no assigned and no cooling address.
	TotalCIDRs int
	FreeCIDRs  int
	// TotalPrefixes and FreePrefixes count prefix CIDRs of the active
	// family (IPv4 prefixes in IPv4 modes, IPv6 CIDRs in IPv6 mode)
	// whatever the mode, so the pool engine sees leftovers of a PD toggle.
	TotalPrefixes int
	FreePrefixes  int
	// Pods counts every key held (all modes, excluded ENIs, pending).
	Pods int
	// Pending counts restored allocations whose address is in no known
	// CIDR yet (see Restore).
	Pending      int
	ENIs         int
	ExcludedENIs int
}

// CIDRInfo describes one CIDR of an ENI.
type CIDRInfo struct {
	Prefix   netip.Prefix
	Class    Mode
	Size     int
	Assigned int
	Cooling  int
	// Filled only by Snapshot, sorted by address.
	Allocations []Allocation
	CoolingList []CoolingAddr
	// Reserved are the other stores' pending allocations whose address
	// this CIDR keeps from new pods (othercards.go): counted in
	// Assigned, so listed for their pod.
	Reserved []Allocation
}

// ENIInfo is a deep copy of an ENI and its CIDRs.
type ENIInfo struct {
	ENI
	AssignedIPs int // all CIDRs, all modes
	CoolingIPs  int
	CIDRs       []CIDRInfo // sorted by address
}

// RestoreResult sorts the allocations of a checkpoint.
type RestoreResult struct {
	// Restored allocations hold their address again.
	Restored []Allocation
	// Stale allocations belonged to pods isLive says are gone; dropped,
	// their addresses cooling from the restore. ipamd deletes their ip
	// rules.
	Stale []Allocation
	// Unknown allocations are live but their address is in no CIDR the
	// store knows. They stay pending (kept in the checkpoint, visible in
	// Pending) and are adopted by AddCIDR when their CIDR is added;
	// DropPending forgets them.
	Unknown []Allocation
	// UnknownCooling are cooling addresses in no CIDR the store knows,
	// kept pending like Unknown until their cooldown ends.
	UnknownCooling []netip.Addr
	// KeyLess allocations had an empty key field; dropped.
	KeyLess []Allocation
	// Clamped counts timestamps in the future set back to now.
	Clamped int
}
