package resourcecontroller

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"sync"

	"github.com/aws/smithy-go"

	"github.com/vpc-cni/vpc-cni/pkg/awsutils"
)

// memEC2 is an in-memory EC2 behind the controller's EC2 interface, for
// tests that run before (or without) the simulator: it keeps ENIs, trunk
// associations and instances, and answers EC2's error codes for misuse.
type memEC2 struct {
	mu        sync.Mutex
	next      int
	instances map[string]awsutils.InstanceInfo
	types     map[string]awsutils.InstanceTypeInfo
	subnets   map[string]awsutils.Subnet
	groups    map[string]bool
	enis      map[string]awsutils.ENI
	assoc     map[string]string // association id → branch id
	// failCreateBranch fails the next n CreateBranchENI calls.
	failCreateBranch int
}

func newMemEC2() *memEC2 {
	return &memEC2{
		instances: map[string]awsutils.InstanceInfo{}, types: map[string]awsutils.InstanceTypeInfo{},
		subnets: map[string]awsutils.Subnet{}, groups: map[string]bool{}, enis: map[string]awsutils.ENI{}, assoc: map[string]string{},
	}
}

func apiErr(code, format string, args ...any) error {
	return &smithy.GenericAPIError{Code: code, Message: fmt.Sprintf(format, args...)}
}

func (m *memEC2) addInstance(id, typ string, maxENIs int, subnet awsutils.Subnet, groups ...string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.subnets[subnet.ID] = subnet
	for _, g := range groups {
		m.groups[g] = true
	}
	m.types[typ] = awsutils.InstanceTypeInfo{Type: typ, MaxENIs: maxENIs}
	primary := m.newENI(subnet.ID, groups, "interface", nil)
	primary.Attachment = &awsutils.Attachment{ID: "attach-" + primary.ID, InstanceID: id, Status: "attached"}
	m.enis[primary.ID] = primary
	m.instances[id] = awsutils.InstanceInfo{ID: id, Type: typ, SubnetID: subnet.ID, PrimaryENI: primary.ID, SecurityGroups: groups,
		ENIs: []awsutils.AttachedENI{{ID: primary.ID, AttachmentID: primary.Attachment.ID}}}
}

func (m *memEC2) newENI(subnet string, groups []string, typ string, tags map[string]string) awsutils.ENI {
	m.next++
	id := fmt.Sprintf("eni-%017x", m.next)
	sn := m.subnets[subnet]
	ip := sn.CIDR.Addr()
	for range m.next + 3 {
		ip = ip.Next()
	}
	return awsutils.ENI{ID: id, MAC: fmt.Sprintf("02:00:00:00:%02x:%02x", m.next>>8, m.next&0xff), SubnetID: subnet,
		InterfaceType: typ, Status: "available", PrivateIPv4: ip, SecurityGroups: slices.Clone(groups), Tags: tags}
}

func (m *memEC2) Instance(_ context.Context, id string) (awsutils.InstanceInfo, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	in, ok := m.instances[id]
	if !ok {
		return in, apiErr("InvalidInstanceID.NotFound", "The instance ID '%s' does not exist", id)
	}
	in.ENIs = slices.Clone(in.ENIs)
	return in, nil
}

func (m *memEC2) InstanceType(_ context.Context, typ string) (awsutils.InstanceTypeInfo, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.types[typ], nil
}

func (m *memEC2) Subnet(_ context.Context, id string) (awsutils.Subnet, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.subnets[id]
	if !ok {
		return s, apiErr("InvalidSubnetID.NotFound", "The subnet ID '%s' does not exist", id)
	}
	return s, nil
}

func (m *memEC2) DescribeENIs(_ context.Context, ids []string) ([]awsutils.ENI, []string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []awsutils.ENI
	var gone []string
	for _, id := range ids {
		if e, ok := m.enis[id]; ok {
			out = append(out, e)
		} else {
			gone = append(gone, id)
		}
	}
	return out, gone, nil
}

func (m *memEC2) checkGroups(groups []string) error {
	for _, g := range groups {
		if !m.groups[g] {
			return apiErr("InvalidGroup.NotFound", "The security group '%s' does not exist", g)
		}
	}
	if len(groups) > 5 {
		return apiErr("SecurityGroupsPerInterfaceLimitExceeded", "at most 5 groups per interface")
	}
	return nil
}

func (m *memEC2) CreateTrunkENI(_ context.Context, req awsutils.TrunkRequest) (awsutils.ENI, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.checkGroups(req.SecurityGroups); err != nil {
		return awsutils.ENI{}, err
	}
	in := m.instances[req.InstanceID]
	e := m.newENI(req.SubnetID, req.SecurityGroups, "trunk", awsutils.ControllerENITags(req.InstanceID, req.ClusterName))
	e.Attachment = &awsutils.Attachment{ID: "attach-" + e.ID, InstanceID: req.InstanceID, DeviceIndex: req.DeviceIndex, Status: "attached", DeleteOnTermination: true}
	e.Status = "in-use"
	m.enis[e.ID] = e
	in.ENIs = append(in.ENIs, awsutils.AttachedENI{ID: e.ID, AttachmentID: e.Attachment.ID, DeviceIndex: req.DeviceIndex})
	m.instances[req.InstanceID] = in
	return e, nil
}

func (m *memEC2) CreateBranchENI(_ context.Context, req awsutils.BranchRequest) (awsutils.ENI, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failCreateBranch > 0 {
		m.failCreateBranch--
		return awsutils.ENI{}, apiErr("InternalError", "injected")
	}
	if err := m.checkGroups(req.SecurityGroups); err != nil {
		return awsutils.ENI{}, err
	}
	if _, ok := m.subnets[req.SubnetID]; !ok {
		return awsutils.ENI{}, apiErr("InvalidSubnetID.NotFound", "The subnet ID '%s' does not exist", req.SubnetID)
	}
	e := m.newENI(req.SubnetID, req.SecurityGroups, "branch", awsutils.BranchENITags(req.InstanceID, req.ClusterName, req.TrunkID, req.VLAN))
	m.enis[e.ID] = e
	return e, nil
}

func (m *memEC2) AssociateBranch(_ context.Context, branchID, trunkID string, vlan int) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.enis[trunkID].InterfaceType != "trunk" {
		return "", apiErr("InvalidParameterValue", "%s is not a trunk interface", trunkID)
	}
	for _, b := range m.assoc {
		if m.enis[b].Tags[awsutils.TagVLANID] == strconv.Itoa(vlan) && m.enis[b].Tags[awsutils.TagTrunkENIID] == trunkID {
			return "", apiErr("InvalidParameterValue", "VLAN %d is in use on %s", vlan, trunkID)
		}
	}
	id := "trunk-assoc-" + branchID[4:]
	m.assoc[id] = branchID
	e := m.enis[branchID]
	e.Status = "in-use"
	m.enis[branchID] = e
	return id, nil
}

func (m *memEC2) DisassociateBranch(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.assoc, id)
	return nil
}

func (m *memEC2) DeleteENI(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.enis, id)
	for a, b := range m.assoc {
		if b == id {
			delete(m.assoc, a)
		}
	}
	return nil
}

func (m *memEC2) BranchENIs(_ context.Context, trunkID string) ([]awsutils.ENI, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []awsutils.ENI
	for _, e := range m.enis {
		if e.Tags[awsutils.TagTrunkENIID] == trunkID {
			out = append(out, e)
		}
	}
	return out, nil
}

// branches lists the branch ENIs (test assertions).
func (m *memEC2) branches() []awsutils.ENI {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []awsutils.ENI
	for _, e := range m.enis {
		if e.InterfaceType == "branch" {
			out = append(out, e)
		}
	}
	slices.SortFunc(out, func(a, b awsutils.ENI) int { return int(a.PrivateIPv4.Compare(b.PrivateIPv4)) })
	return out
}

func (m *memEC2) trunks() []awsutils.ENI {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []awsutils.ENI
	for _, e := range m.enis {
		if e.InterfaceType == "trunk" {
			out = append(out, e)
		}
	}
	return out
}

var _ EC2 = (*memEC2)(nil)

func mustPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }
