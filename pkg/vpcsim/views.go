package vpcsim

import (
	"maps"
	"net/netip"
	"slices"
	"sort"
)

// InstanceView is a snapshot of an instance as EC2 knows it.
type InstanceView struct {
	ID             string            `json:"id"`
	Type           string            `json:"type"`
	State          string            `json:"state"`
	AZ             string            `json:"az"`
	SubnetID       string            `json:"subnetId"`
	VPCID          string            `json:"vpcId"`
	PrimaryENI     string            `json:"primaryEni"`
	PrimaryIP      netip.Addr        `json:"primaryIp"`
	PublicIP       netip.Addr        `json:"publicIp,omitzero"`
	MAC            string            `json:"mac"`
	SecurityGroups []string          `json:"securityGroups"`
	Tags           map[string]string `json:"tags,omitempty"`
	IMDSv1Disabled bool              `json:"imdsV1Disabled,omitempty"`
	IMDSHopLimit   int               `json:"imdsHopLimit"`
	// ENIs attached in any attachment state, by card then device index.
	ENIs []ENIView `json:"enis"`
}

// ENIView is a snapshot of one ENI.
type ENIView struct {
	ID            string            `json:"id"`
	SubnetID      string            `json:"subnetId"`
	VPCID         string            `json:"vpcId"`
	AZ            string            `json:"az"`
	Description   string            `json:"description,omitempty"`
	InterfaceType string            `json:"interfaceType"`
	MAC           string            `json:"mac"`
	Status        string            `json:"status"`
	Groups        []string          `json:"groups"`
	Tags          map[string]string `json:"tags,omitempty"`
	PrimaryIP     netip.Addr        `json:"primaryIp"`
	PublicIP      netip.Addr        `json:"publicIp,omitzero"`
	SecondaryIPs  []netip.Addr      `json:"secondaryIps,omitempty"`
	Prefixes      []netip.Prefix    `json:"prefixes,omitempty"`
	IPv6          []netip.Addr      `json:"ipv6,omitempty"`
	IPv6Prefixes  []netip.Prefix    `json:"ipv6Prefixes,omitempty"`
	// SourceDestCheck: EC2 drops traffic whose source is not one of the
	// ENI's addresses (default true).
	SourceDestCheck bool            `json:"sourceDestCheck"`
	Attachment      *AttachmentView `json:"attachment,omitempty"`
}

// AttachmentView is an ENI's attachment.
type AttachmentView struct {
	ID                  string `json:"id"`
	InstanceID          string `json:"instanceId"`
	Status              string `json:"status"`
	DeviceIndex         int    `json:"deviceIndex"`
	NetworkCard         int    `json:"networkCard"`
	DeleteOnTermination bool   `json:"deleteOnTermination"`
}

// SubnetView is a snapshot of one subnet.
type SubnetView struct {
	ID                      string            `json:"id"`
	VPCID                   string            `json:"vpcId"`
	AZ                      string            `json:"az"`
	CIDR                    netip.Prefix      `json:"cidr"`
	IPv6CIDR                netip.Prefix      `json:"ipv6Cidr,omitzero"`
	AvailableIPAddressCount int               `json:"availableIpAddressCount"`
	Tags                    map[string]string `json:"tags,omitempty"`
}

// State is the whole account, for the admin endpoint and debugging.
type State struct {
	Instances         []InstanceView `json:"instances"`
	NetworkInterfaces []ENIView      `json:"networkInterfaces"`
	Subnets           []SubnetView   `json:"subnets"`
	// SecurityGroups with their rules, and the branch-trunk associations.
	SecurityGroups    []SecurityGroupView    `json:"securityGroups"`
	TrunkAssociations []TrunkAssociationView `json:"trunkAssociations"`
}

func (w *world) eniView(e *eni) ENIView {
	v := ENIView{
		ID: e.id, SubnetID: e.subnetID, VPCID: e.vpcID, AZ: e.az, Description: e.description,
		InterfaceType: e.interfaceType, MAC: e.mac, Status: e.status(), Groups: slices.Clone(e.groups),
		Tags: maps.Clone(e.tags), PrimaryIP: e.primaryIP, PublicIP: e.publicIP,
		SecondaryIPs: slices.Clone(e.secondary), Prefixes: slices.Clone(e.prefixes),
		IPv6: slices.Clone(e.ipv6), IPv6Prefixes: slices.Clone(e.ipv6Prefixes),
		SourceDestCheck: !e.noSrcDstCheck,
	}
	if w.branchAssoc(e.id) != nil {
		v.InterfaceType = "branch" // EC2 reports an associated ENI as a branch
	}
	if a := e.att; a != nil {
		v.Attachment = &AttachmentView{ID: a.id, InstanceID: a.instanceID, Status: a.status, DeviceIndex: a.deviceIndex, NetworkCard: a.card, DeleteOnTermination: a.deleteOnTermination}
	}
	return v
}

func (w *world) instanceView(in *instance) InstanceView {
	v := InstanceView{
		ID: in.id, Type: in.typ.Name, State: in.state, AZ: in.az, SubnetID: in.subnetID, VPCID: in.vpcID,
		PrimaryENI: in.primaryENI, PrimaryIP: in.primaryIP, PublicIP: in.publicIP, MAC: in.mac,
		SecurityGroups: slices.Clone(in.groups), Tags: maps.Clone(in.tags), IMDSv1Disabled: in.imdsV1Disabled,
		IMDSHopLimit: in.imdsHopLimit, ENIs: []ENIView{},
	}
	for _, e := range w.instanceENIs(in.id) {
		v.ENIs = append(v.ENIs, w.eniView(e))
	}
	return v
}

func (w *world) subnetView(s *subnet) SubnetView {
	return SubnetView{ID: s.id, VPCID: s.vpcID, AZ: s.az, CIDR: s.cidr, IPv6CIDR: s.ipv6, AvailableIPAddressCount: s.v4.Free(), Tags: maps.Clone(s.tags)}
}

func (w *world) state() State {
	st := State{Instances: []InstanceView{}, NetworkInterfaces: []ENIView{}, Subnets: []SubnetView{}}
	for _, id := range sortedKeys(w.instances) {
		st.Instances = append(st.Instances, w.instanceView(w.instances[id]))
	}
	for _, id := range sortedKeys(w.enis) {
		st.NetworkInterfaces = append(st.NetworkInterfaces, w.eniView(w.enis[id]))
	}
	for _, id := range sortedKeys(w.subnets) {
		st.Subnets = append(st.Subnets, w.subnetView(w.subnets[id]))
	}
	st.SecurityGroups = []SecurityGroupView{}
	for _, id := range sortedKeys(w.sgs) {
		st.SecurityGroups = append(st.SecurityGroups, w.groupView(w.sgs[id]))
	}
	st.TrunkAssociations = w.assocViews()
	return st
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
