package awsutils

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// Names the VPC resource controller puts on the trunk and branch ENIs it
// makes (docs/compatibility.md, "Security groups for pods (branch ENIs,
// resource controller)"): other tools find and clean them up by these.
const (
	TrunkDescription  = "aws-k8s-trunk-eni"
	BranchDescription = "aws-k8s-branch-eni"
	// TagVLANID and TagTrunkENIID are on every branch ENI, so the branch
	// state can be rebuilt from EC2 alone after a restart.
	TagVLANID     = "vpcresources.k8s.aws/vlan-id"
	TagTrunkENIID = "vpcresources.k8s.aws/trunk-eni-id"
	// ENIOwnerController is the eks:eni:owner value of controller ENIs.
	ENIOwnerController = "eks-vpc-resource-controller"
	// TagClusterOwnedPrefix + <cluster> = "owned" scopes an ENI to a cluster.
	TagClusterOwnedPrefix = "kubernetes.io/cluster/"
	// CodeAssociationNotFound: the trunk association is already gone.
	CodeAssociationNotFound = "InvalidAssociationID.NotFound"
)

// ControllerENITags are the tags of a trunk ENI; branch ENIs add the VLAN
// and trunk tags (BranchENITags).
func ControllerENITags(instanceID, clusterName string) map[string]string {
	t := map[string]string{
		TagInstanceID: instanceID,
		TagENIOwner:   ENIOwnerController,
	}
	if clusterName != "" {
		t[TagClusterOwnedPrefix+clusterName] = "owned"
	}
	return t
}

// BranchENITags are the tags of a branch ENI on trunkID with vlan.
func BranchENITags(instanceID, clusterName, trunkID string, vlan int) map[string]string {
	t := ControllerENITags(instanceID, clusterName)
	t[TagVLANID] = strconv.Itoa(vlan)
	t[TagTrunkENIID] = trunkID
	return t
}

// Subnet describes one subnet by id.
func (e *EC2) Subnet(ctx context.Context, id string) (Subnet, error) {
	if id == "" {
		return Subnet{}, errors.New("describing subnet: empty subnet id")
	}
	out, err := e.api.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{SubnetIds: []string{id}})
	if err != nil {
		return Subnet{}, fmt.Errorf("describing subnet %s: %w", id, err)
	}
	return single("subnet "+id, out.Subnets, parseSubnet)
}

// TrunkRequest describes the trunk ENI of one instance.
type TrunkRequest struct {
	InstanceID     string
	SubnetID       string
	SecurityGroups []string
	ClusterName    string
	DeviceIndex    int
}

// CreateTrunkENI creates a trunk ENI, attaches it at req.DeviceIndex with
// delete-on-termination, and waits until EC2 reports it attached. A step
// that fails undoes the earlier ones, so no trunk is left half made.
func (e *EC2) CreateTrunkENI(ctx context.Context, req TrunkRequest) (ENI, error) {
	if req.InstanceID == "" || req.SubnetID == "" || req.DeviceIndex <= 0 {
		return ENI{}, fmt.Errorf("trunk ENI request: instance %q, subnet %q and device index %d must all be set", req.InstanceID, req.SubnetID, req.DeviceIndex)
	}
	in := &ec2.CreateNetworkInterfaceInput{
		SubnetId:      aws.String(req.SubnetID),
		Description:   aws.String(TrunkDescription),
		InterfaceType: types.NetworkInterfaceCreationTypeTrunk,
		TagSpecifications: []types.TagSpecification{{
			ResourceType: types.ResourceTypeNetworkInterface,
			Tags:         sdkTags(ControllerENITags(req.InstanceID, req.ClusterName)),
		}},
	}
	if len(req.SecurityGroups) > 0 {
		in.Groups = slices.Clone(req.SecurityGroups)
	}
	out, err := e.api.CreateNetworkInterface(ctx, in)
	if err != nil {
		return ENI{}, fmt.Errorf("creating the trunk ENI of %s in subnet %s: %w", req.InstanceID, req.SubnetID, err)
	}
	if out.NetworkInterface == nil {
		return ENI{}, fmt.Errorf("creating the trunk ENI of %s: EC2 returned no interface", req.InstanceID)
	}
	eni, err := parseENI(*out.NetworkInterface)
	if err != nil {
		return ENI{}, err
	}
	attID, err := e.AttachENI(ctx, eni.ID, req.InstanceID, req.DeviceIndex, 0)
	if err != nil {
		att, uerr := e.undoAttach(ctx, eni.ID, req.InstanceID)
		if att == nil {
			return ENI{}, errors.Join(err, uerr)
		}
		attID = att.ID // EC2 attached it after all: finish the trunk
	}
	if err := e.SetDeleteOnTermination(ctx, eni.ID, attID); err != nil {
		rctx, cancel := rollbackContext(ctx)
		defer cancel()
		return ENI{}, errors.Join(err, e.FreeENI(rctx, eni.ID, attID))
	}
	att, err := e.WaitAttached(ctx, eni.ID)
	if err != nil {
		rctx, cancel := rollbackContext(ctx)
		defer cancel()
		return ENI{}, errors.Join(err, e.FreeENI(rctx, eni.ID, attID))
	}
	return att, nil
}

// WaitAttached polls an ENI until its attachment is "attached".
func (e *EC2) WaitAttached(ctx context.Context, eniID string) (ENI, error) {
	for attempt := 1; ; attempt++ {
		eni, err := e.DescribeENI(ctx, eniID)
		if err != nil {
			return ENI{}, fmt.Errorf("waiting for ENI %s to attach: %w", eniID, err)
		}
		if eni.Attachment != nil && eni.Attachment.Status == string(types.AttachmentStatusAttached) {
			return eni, nil
		}
		if err := sleepCtx(ctx, e.cfg.DetachPoll.Delay(attempt, 0.5)); err != nil {
			return ENI{}, fmt.Errorf("waiting for ENI %s to attach: %w", eniID, err)
		}
	}
}

// BranchRequest describes one branch ENI.
type BranchRequest struct {
	InstanceID     string
	TrunkID        string
	VLAN           int
	SubnetID       string
	SecurityGroups []string
	ClusterName    string
}

// CreateBranchENI creates a branch ENI tagged with its trunk and VLAN (not
// yet associated: AssociateBranch does that).
func (e *EC2) CreateBranchENI(ctx context.Context, req BranchRequest) (ENI, error) {
	if req.InstanceID == "" || req.TrunkID == "" || req.SubnetID == "" || req.VLAN <= 0 {
		return ENI{}, fmt.Errorf("branch ENI request: instance %q, trunk %q, subnet %q and VLAN %d must all be set",
			req.InstanceID, req.TrunkID, req.SubnetID, req.VLAN)
	}
	in := &ec2.CreateNetworkInterfaceInput{
		SubnetId:    aws.String(req.SubnetID),
		Description: aws.String(BranchDescription),
		TagSpecifications: []types.TagSpecification{{
			ResourceType: types.ResourceTypeNetworkInterface,
			Tags:         sdkTags(BranchENITags(req.InstanceID, req.ClusterName, req.TrunkID, req.VLAN)),
		}},
	}
	if len(req.SecurityGroups) > 0 {
		in.Groups = slices.Clone(req.SecurityGroups)
	}
	out, err := e.api.CreateNetworkInterface(ctx, in)
	if err != nil {
		return ENI{}, fmt.Errorf("creating a branch ENI in subnet %s with groups %v: %w", req.SubnetID, req.SecurityGroups, err)
	}
	if out.NetworkInterface == nil {
		return ENI{}, errors.New("creating a branch ENI: EC2 returned no interface")
	}
	return parseENI(*out.NetworkInterface)
}

// AssociateBranch associates a branch ENI with a trunk ENI on a VLAN and
// returns the association id.
func (e *EC2) AssociateBranch(ctx context.Context, branchID, trunkID string, vlan int) (string, error) {
	out, err := e.api.AssociateTrunkInterface(ctx, &ec2.AssociateTrunkInterfaceInput{
		BranchInterfaceId: aws.String(branchID),
		TrunkInterfaceId:  aws.String(trunkID),
		VlanId:            aws.Int32(int32(vlan)),
	})
	if err != nil {
		return "", fmt.Errorf("associating branch %s with trunk %s on VLAN %d: %w", branchID, trunkID, vlan, err)
	}
	if out.InterfaceAssociation == nil || aws.ToString(out.InterfaceAssociation.AssociationId) == "" {
		return "", fmt.Errorf("associating branch %s with trunk %s: EC2 returned no association id", branchID, trunkID)
	}
	return aws.ToString(out.InterfaceAssociation.AssociationId), nil
}

// DisassociateBranch removes a trunk association; one already gone counts
// as removed.
func (e *EC2) DisassociateBranch(ctx context.Context, associationID string) error {
	_, err := e.api.DisassociateTrunkInterface(ctx, &ec2.DisassociateTrunkInterfaceInput{AssociationId: aws.String(associationID)})
	if err != nil && Code(err) != CodeAssociationNotFound {
		return fmt.Errorf("disassociating trunk association %s: %w", associationID, err)
	}
	return nil
}

// BranchENIs lists the branch ENIs tagged with trunkID (every page).
func (e *EC2) BranchENIs(ctx context.Context, trunkID string) ([]ENI, error) {
	out, err := e.describeAll(ctx, []types.Filter{{Name: aws.String("tag:" + TagTrunkENIID), Values: []string{trunkID}}})
	if err != nil {
		return nil, fmt.Errorf("listing the branch ENIs of trunk %s: %w", trunkID, err)
	}
	return out, nil
}

// TaggedInstanceENIs lists the ENIs tagged with instanceID whose description is
// description (BranchDescription, TrunkDescription), every page, attached
// or not: a deleted node's branches outlive its trunk, and a trunk create
// whose answer was lost leaves one available.
func (e *EC2) TaggedInstanceENIs(ctx context.Context, instanceID, description string) ([]ENI, error) {
	out, err := e.describeAll(ctx, []types.Filter{
		{Name: aws.String("tag:" + TagInstanceID), Values: []string{instanceID}},
		{Name: aws.String("description"), Values: []string{description}},
	})
	if err != nil {
		return nil, fmt.Errorf("listing the ENIs %q of instance %s: %w", description, instanceID, err)
	}
	return out, nil
}

// describeAll describes the ENIs matching filters, every page.
func (e *EC2) describeAll(ctx context.Context, filters []types.Filter) ([]ENI, error) {
	p := ec2.NewDescribeNetworkInterfacesPaginator(e.api, &ec2.DescribeNetworkInterfacesInput{
		Filters:    filters,
		MaxResults: aws.Int32(1000),
	})
	var out []ENI
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		for _, ni := range page.NetworkInterfaces {
			eni, err := parseENI(ni)
			if err != nil {
				return nil, err
			}
			out = append(out, eni)
		}
	}
	return out, nil
}

// TrunkAssociation is one branch-to-trunk association.
type TrunkAssociation struct {
	ID       string
	BranchID string
	TrunkID  string
	VLAN     int
}

// TrunkAssociations lists the associations of a trunk ENI (every page).
func (e *EC2) TrunkAssociations(ctx context.Context, trunkID string) ([]TrunkAssociation, error) {
	in := &ec2.DescribeTrunkInterfaceAssociationsInput{
		Filters: []types.Filter{{Name: aws.String("trunk-interface-association.trunk-interface-id"), Values: []string{trunkID}}},
	}
	var out []TrunkAssociation
	for {
		page, err := e.api.DescribeTrunkInterfaceAssociations(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("listing the associations of trunk %s: %w", trunkID, err)
		}
		for _, a := range page.InterfaceAssociations {
			out = append(out, TrunkAssociation{
				ID: aws.ToString(a.AssociationId), BranchID: aws.ToString(a.BranchInterfaceId),
				TrunkID: aws.ToString(a.TrunkInterfaceId), VLAN: int(aws.ToInt32(a.VlanId)),
			})
		}
		if aws.ToString(page.NextToken) == "" {
			return out, nil
		}
		in.NextToken = page.NextToken
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
