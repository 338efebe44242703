package vpcsim

import "net/netip"

// Event is a change of EC2 state that the data plane mirrors. Subscribers
// receive events in the order the changes happened.
type Event interface{ isEvent() }

// InstanceRunning: an instance exists and runs; its primary ENI's
// ENIAttached follows.
type InstanceRunning struct {
	InstanceID string
	Type       string
	AZ         string
	VPCID      string
	VPCCIDRs   []netip.Prefix
	PrimaryIP  netip.Addr
	PublicIP   netip.Addr // zero when none
}

// InstanceTerminated: the instance is gone; its ENIDetached events precede it.
type InstanceTerminated struct {
	InstanceID string
}

// ENIAttached is emitted when an attachment becomes "attached" (after the
// attach delay). Addresses lists every address (/32, /128) and prefix (/28,
// /80) the ENI holds at that moment, primary first.
type ENIAttached struct {
	InstanceID     string
	ENIID          string
	MAC            string
	DeviceIndex    int
	NetworkCard    int
	PrimaryIP      netip.Addr
	PublicIP       netip.Addr // zero when none
	SubnetCIDR     netip.Prefix
	SubnetIPv6CIDR netip.Prefix // zero when the subnet has no IPv6
	Addresses      []netip.Prefix
}

// ENIDetached is emitted when a detach completes (after the detach delay) or
// the instance terminates.
type ENIDetached struct {
	InstanceID  string
	ENIID       string
	MAC         string
	DeviceIndex int
	NetworkCard int
	Addresses   []netip.Prefix
}

// AddressesAssigned: addresses or prefixes were added to an ENI. InstanceID
// is the instance the ENI is attached (or attaching) to, "" when unattached.
type AddressesAssigned struct {
	ENIID      string
	InstanceID string
	Prefixes   []netip.Prefix
}

// AddressesUnassigned: addresses or prefixes were removed from an ENI
// (including when an ENI is deleted).
type AddressesUnassigned struct {
	ENIID      string
	InstanceID string
	Prefixes   []netip.Prefix
}

func (InstanceRunning) isEvent()     {}
func (InstanceTerminated) isEvent()  {}
func (ENIAttached) isEvent()         {}
func (ENIDetached) isEvent()         {}
func (AddressesAssigned) isEvent()   {}
func (AddressesUnassigned) isEvent() {}

// BranchAssociated: a branch ENI was associated with a trunk ENI on a VLAN
// (AssociateTrunkInterface). The trunk's attachment decides which node
// carries it.
type BranchAssociated struct {
	AssociationID string
	BranchENIID   string
	TrunkENIID    string
	VLAN          int
	MAC           string
	PrimaryIP     netip.Addr
	SubnetCIDR    netip.Prefix
	Addresses     []netip.Prefix
}

// BranchDisassociated: the association ended (DisassociateTrunkInterface,
// or the branch or trunk was deleted).
type BranchDisassociated struct {
	AssociationID string
	BranchENIID   string
	TrunkENIID    string
	VLAN          int
}

func (BranchAssociated) isEvent()    {}
func (BranchDisassociated) isEvent() {}
