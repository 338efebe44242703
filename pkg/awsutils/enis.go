package awsutils

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// parseENI converts an SDK network interface into our ENI, rejecting
// addresses EC2 should never send.
func parseENI(ni types.NetworkInterface) (ENI, error) {
	id := aws.ToString(ni.NetworkInterfaceId)
	e := ENI{
		ID:             id,
		MAC:            aws.ToString(ni.MacAddress),
		SubnetID:       aws.ToString(ni.SubnetId),
		VPCID:          aws.ToString(ni.VpcId),
		AZ:             aws.ToString(ni.AvailabilityZone),
		Description:    aws.ToString(ni.Description),
		InterfaceType:  string(ni.InterfaceType),
		Status:         string(ni.Status),
		Tags:           tagMap(ni.TagSet),
		SecurityGroups: groupIDs(ni.Groups),
	}
	if a := ni.Attachment; a != nil && aws.ToString(a.AttachmentId) != "" {
		e.Attachment = &Attachment{
			ID:                  aws.ToString(a.AttachmentId),
			InstanceID:          aws.ToString(a.InstanceId),
			DeviceIndex:         int(aws.ToInt32(a.DeviceIndex)),
			NetworkCard:         int(aws.ToInt32(a.NetworkCardIndex)),
			DeleteOnTermination: aws.ToBool(a.DeleteOnTermination),
			Status:              string(a.Status),
		}
	}
	what := "ENI " + id
	var errs []error
	if s := aws.ToString(ni.PrivateIpAddress); s != "" {
		a, err := parseAddr(what, s)
		errs = append(errs, err)
		e.PrivateIPv4 = a
	}
	for _, p := range ni.PrivateIpAddresses {
		a, err := parseAddr(what, aws.ToString(p.PrivateIpAddress))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if aws.ToBool(p.Primary) {
			e.PrivateIPv4 = a
			continue
		}
		e.SecondaryIPv4 = append(e.SecondaryIPv4, a)
	}
	var err4, err6a, err6p error
	e.IPv4Prefixes, err4 = parseEach(what, ni.Ipv4Prefixes,
		func(p types.Ipv4PrefixSpecification) string { return aws.ToString(p.Ipv4Prefix) }, parsePrefix)
	e.IPv6, err6a = parseEach(what, ni.Ipv6Addresses,
		func(a types.NetworkInterfaceIpv6Address) string { return aws.ToString(a.Ipv6Address) }, parseAddr)
	e.IPv6Prefixes, err6p = parseEach(what, ni.Ipv6Prefixes,
		func(p types.Ipv6PrefixSpecification) string { return aws.ToString(p.Ipv6Prefix) }, parsePrefix)
	if err := errors.Join(append(errs, err4, err6a, err6p)...); err != nil {
		return ENI{}, err
	}
	return e, nil
}

func groupIDs(gs []types.GroupIdentifier) []string {
	out := make([]string, 0, len(gs))
	for _, g := range gs {
		out = append(out, aws.ToString(g.GroupId))
	}
	slices.Sort(out)
	return out
}

var eniIDPattern = regexp.MustCompile(`eni-[0-9a-zA-Z]+`)

// missingENIIDs extracts the ENI ids an InvalidNetworkInterfaceID.NotFound
// message names ("The networkInterface ID 'eni-…' does not exist"), keeping
// only ids that were asked for.
func missingENIIDs(msg string, asked []string) []string {
	var out []string
	for _, id := range eniIDPattern.FindAllString(msg, -1) {
		if slices.Contains(asked, id) && !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out
}

// DescribeENIs describes the given ENIs in one call. ENIs that no longer
// exist are dropped (EC2 fails the whole call for them, naming the id; we
// remove it and ask again) and returned in vanished. No ids: no call.
func (e *EC2) DescribeENIs(ctx context.Context, ids []string) (enis []ENI, vanished []string, err error) {
	ids = slices.Clone(ids)
	for len(ids) > 0 {
		out, err := e.api.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: ids})
		if Code(err) == CodeENINotFound {
			gone := missingENIIDs(errorMessage(err), ids)
			if len(gone) == 0 {
				return nil, vanished, fmt.Errorf("describing ENIs %v: cannot tell which id is missing: %w", ids, err)
			}
			vanished = append(vanished, gone...)
			ids = slices.DeleteFunc(ids, func(id string) bool { return slices.Contains(gone, id) })
			continue
		}
		if err != nil {
			return nil, vanished, fmt.Errorf("describing ENIs %v: %w", ids, err)
		}
		for _, ni := range out.NetworkInterfaces {
			eni, err := parseENI(ni)
			if err != nil {
				return nil, vanished, err
			}
			enis = append(enis, eni)
		}
		return enis, vanished, nil
	}
	return nil, vanished, nil
}

// DescribeENI describes one ENI; a missing ENI gives an error for which
// IsNotFound is true.
func (e *EC2) DescribeENI(ctx context.Context, id string) (ENI, error) {
	out, err := e.api.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{id}})
	if err != nil {
		return ENI{}, fmt.Errorf("describing ENI %s: %w", id, err)
	}
	return single("ENI "+id, out.NetworkInterfaces, parseENI)
}

// CreateENIRequest describes a new ENI. At most one of the four counts may
// be set; none gives an ENI with only its primary address.
type CreateENIRequest struct {
	InstanceID     string
	SubnetID       string
	SecurityGroups []string
	// Description defaults to "aws-K8S-<InstanceID>".
	Description        string
	SecondaryIPv4Count int
	IPv4PrefixCount    int
	IPv6PrefixCount    int
	IPv6AddressCount   int
}

func (r CreateENIRequest) validate() error {
	var errs []error
	if r.InstanceID == "" {
		errs = append(errs, errors.New("InstanceID is empty"))
	}
	if r.SubnetID == "" {
		errs = append(errs, errors.New("SubnetID is empty"))
	}
	set := 0
	for name, n := range map[string]int{"SecondaryIPv4Count": r.SecondaryIPv4Count, "IPv4PrefixCount": r.IPv4PrefixCount, "IPv6PrefixCount": r.IPv6PrefixCount, "IPv6AddressCount": r.IPv6AddressCount} {
		if n < 0 {
			errs = append(errs, fmt.Errorf("%s %d is negative", name, n))
		}
		if n > 0 {
			set++
		}
	}
	if set > 1 {
		errs = append(errs, errors.New("set at most one of SecondaryIPv4Count, IPv4PrefixCount, IPv6PrefixCount, IPv6AddressCount"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("create ENI request: %w", err)
	}
	return nil
}

// CreateENI creates an (unattached) ENI tagged per upstream: instance id,
// creation time, cluster tags and additional tags.
func (e *EC2) CreateENI(ctx context.Context, req CreateENIRequest) (ENI, error) {
	if err := req.validate(); err != nil {
		return ENI{}, err
	}
	desc := req.Description
	if desc == "" {
		desc = ENIDescription(req.InstanceID)
	}
	sgs := slices.Sorted(slices.Values(req.SecurityGroups))
	in := &ec2.CreateNetworkInterfaceInput{
		SubnetId:    aws.String(req.SubnetID),
		Description: aws.String(desc),
		Groups:      sgs,
		TagSpecifications: []types.TagSpecification{{
			ResourceType: types.ResourceTypeNetworkInterface,
			Tags:         sdkTags(ENITags(req.InstanceID, e.cfg.ClusterName, e.cfg.AdditionalTags, e.cfg.Now())),
		}},
	}
	switch {
	case req.SecondaryIPv4Count > 0:
		in.SecondaryPrivateIpAddressCount = aws.Int32(int32(req.SecondaryIPv4Count))
	case req.IPv4PrefixCount > 0:
		in.Ipv4PrefixCount = aws.Int32(int32(req.IPv4PrefixCount))
	case req.IPv6PrefixCount > 0:
		in.Ipv6PrefixCount = aws.Int32(int32(req.IPv6PrefixCount))
	case req.IPv6AddressCount > 0:
		in.Ipv6AddressCount = aws.Int32(int32(req.IPv6AddressCount))
	}
	out, err := e.api.CreateNetworkInterface(ctx, in)
	if err != nil {
		return ENI{}, fmt.Errorf("creating ENI in subnet %s for %s: %w", req.SubnetID, req.InstanceID, err)
	}
	if out.NetworkInterface == nil {
		return ENI{}, fmt.Errorf("creating ENI in subnet %s: EC2 returned no interface", req.SubnetID)
	}
	return parseENI(*out.NetworkInterface)
}

// AttachENI attaches an ENI at a device index of a network card and returns
// the attachment id.
func (e *EC2) AttachENI(ctx context.Context, eniID, instanceID string, deviceIndex, card int) (string, error) {
	out, err := e.api.AttachNetworkInterface(ctx, &ec2.AttachNetworkInterfaceInput{
		NetworkInterfaceId: aws.String(eniID),
		InstanceId:         aws.String(instanceID),
		DeviceIndex:        aws.Int32(int32(deviceIndex)),
		NetworkCardIndex:   aws.Int32(int32(card)),
	})
	if err != nil {
		return "", fmt.Errorf("attaching ENI %s to %s at device %d card %d: %w", eniID, instanceID, deviceIndex, card, err)
	}
	return aws.ToString(out.AttachmentId), nil
}

// SetDeleteOnTermination makes EC2 delete the ENI with its instance, so a
// node that dies does not leak it.
func (e *EC2) SetDeleteOnTermination(ctx context.Context, eniID, attachmentID string) error {
	_, err := e.api.ModifyNetworkInterfaceAttribute(ctx, &ec2.ModifyNetworkInterfaceAttributeInput{
		NetworkInterfaceId: aws.String(eniID),
		Attachment: &types.NetworkInterfaceAttachmentChanges{
			AttachmentId:        aws.String(attachmentID),
			DeleteOnTermination: aws.Bool(true),
		},
	})
	if err != nil {
		return fmt.Errorf("setting delete-on-termination on ENI %s (attachment %s): %w", eniID, attachmentID, err)
	}
	return nil
}

// ModifySecurityGroups replaces the security groups of an ENI.
func (e *EC2) ModifySecurityGroups(ctx context.Context, eniID string, groups []string) error {
	if len(groups) == 0 {
		return fmt.Errorf("setting security groups of ENI %s: empty group list", eniID)
	}
	_, err := e.api.ModifyNetworkInterfaceAttribute(ctx, &ec2.ModifyNetworkInterfaceAttributeInput{
		NetworkInterfaceId: aws.String(eniID),
		Groups:             slices.Sorted(slices.Values(groups)),
	})
	if code := Code(err); code == CodeENINotFound && e.cfg.Observer != nil {
		// The caller holds an ENI EC2 no longer has: upstream counts that
		// as its view being out of sync (docs/compatibility.md, "Metrics").
		e.cfg.Observer.ObserveAPIError(APIErrIMDSOutOfSync, code)
	}
	if err != nil {
		return fmt.Errorf("setting security groups %v on ENI %s: %w", groups, eniID, err)
	}
	return nil
}

// DetachENI detaches an attachment (not forced).
func (e *EC2) DetachENI(ctx context.Context, attachmentID string) error {
	_, err := e.api.DetachNetworkInterface(ctx, &ec2.DetachNetworkInterfaceInput{AttachmentId: aws.String(attachmentID)})
	if err != nil {
		return fmt.Errorf("detaching attachment %s: %w", attachmentID, err)
	}
	return nil
}

// DeleteENI deletes an ENI. An ENI that is already gone counts as deleted.
func (e *EC2) DeleteENI(ctx context.Context, eniID string) error {
	_, err := e.api.DeleteNetworkInterface(ctx, &ec2.DeleteNetworkInterfaceInput{NetworkInterfaceId: aws.String(eniID)})
	if err != nil && Code(err) != CodeENINotFound {
		return fmt.Errorf("deleting ENI %s: %w", eniID, err)
	}
	return nil
}

// AllocateENIRequest is a CreateENIRequest plus where to attach the ENI.
type AllocateENIRequest struct {
	CreateENIRequest
	NetworkCard int
	// DeviceIndex 0 means: the lowest free index on NetworkCard (one
	// DescribeInstances call).
	DeviceIndex int
}

// AllocateENI creates an ENI, attaches it to the instance and sets
// delete-on-termination. When create or attach fails the ENI is deleted
// again, so none is left behind; the returned error then joins the cause
// and any failure of the undo. An attach that answered an error but that
// EC2 applied is kept: the ENI is returned as if the attach had answered. When only delete-on-termination fails, the
// attached ENI is returned with an error wrapping
// ErrDeleteOnTerminationUnset.
func (e *EC2) AllocateENI(ctx context.Context, req AllocateENIRequest) (ENI, error) {
	if err := req.validate(); err != nil {
		return ENI{}, err
	}
	dev := req.DeviceIndex
	if dev == 0 {
		var err error
		if dev, err = e.FreeDeviceIndex(ctx, req.InstanceID, req.NetworkCard); err != nil {
			return ENI{}, err
		}
	}
	eni, err := e.CreateENI(ctx, req.CreateENIRequest)
	if err != nil {
		return ENI{}, err
	}
	attID, err := e.AttachENI(ctx, eni.ID, req.InstanceID, dev, req.NetworkCard)
	if err != nil {
		att, uerr := e.undoAttach(ctx, eni.ID, req.InstanceID)
		if att == nil {
			if uerr != nil {
				// Upstream labels it with the attach's error.
				e.unhandled(UnhandledAllocENIDelete, err)
			}
			return ENI{}, errors.Join(err, uerr)
		}
		eni.Attachment = att // EC2 attached it after all: the caller keeps it
	} else {
		eni.Attachment = &Attachment{
			ID:          attID,
			InstanceID:  req.InstanceID,
			DeviceIndex: dev,
			NetworkCard: req.NetworkCard,
		}
	}
	attID = eni.Attachment.ID
	if err := e.SetDeleteOnTermination(ctx, eni.ID, attID); err != nil {
		// The ENI is attached and usable: undoing it would cost a detach, a
		// wait and a delete that can fail as well (leaving an attached ENI
		// the caller does not know), and a new ENI after that. The caller
		// keeps it and sets delete-on-termination later.
		return eni, fmt.Errorf("%w: %w", ErrDeleteOnTerminationUnset, err)
	}
	eni.Attachment.DeleteOnTermination = true
	return eni, nil
}

// undoAttach rolls back an ENI whose attach answered an error. Mostly EC2
// refused and one delete does it. But EC2 may have applied the attach and
// lost the answer (a timeout, a reset, a 5xx whose retry then hears InUse):
// the delete answers InUse, and one describe tells. An ENI attached to
// instanceID is kept and its attachment returned, so no attached ENI is
// left that the caller does not know of (holding an ENI slot and a device
// index the caller would count free). Any other attachment (one still
// detaching, say) is freed: detach, bounded wait, delete.
func (e *EC2) undoAttach(ctx context.Context, eniID, instanceID string) (*Attachment, error) {
	rctx, cancel := rollbackContext(ctx)
	defer cancel()
	err := e.DeleteENI(rctx, eniID)
	if Code(err) != CodeENIInUse {
		return nil, err
	}
	cur, derr := e.DescribeENI(rctx, eniID)
	switch {
	case Code(derr) == CodeENINotFound:
		return nil, nil
	case derr != nil:
		return nil, errors.Join(err, derr)
	case cur.Attachment != nil && cur.Attachment.InstanceID == instanceID &&
		(cur.Attachment.Status == string(types.AttachmentStatusAttached) || cur.Attachment.Status == string(types.AttachmentStatusAttaching)):
		return cur.Attachment, nil
	}
	switch {
	case cur.Attachment == nil:
		return nil, e.DeleteENI(rctx, eniID)
	case cur.Attachment.Status == string(types.AttachmentStatusDetaching):
		return nil, e.deleteDetached(rctx, eniID)
	}
	return nil, e.FreeENI(rctx, eniID, cur.Attachment.ID)
}

// ErrDeleteOnTerminationUnset is returned (wrapped) by AllocateENI together
// with an ENI that is attached but whose delete-on-termination could not be
// set: the ENI is the caller's to use, and to retry SetDeleteOnTermination
// on.
var ErrDeleteOnTerminationUnset = errors.New("ENI attached, but delete-on-termination is not set")

// FreeENI detaches an ENI (if attached) and deletes it. An ENI that does
// not exist is already free. With the attachment id known (ipamd learns it
// when it attaches or adopts the ENI) the whole free is two calls: detach,
// then, after the time a detach usually takes, delete. Without it, one
// describe comes first. There is no describe loop waiting for the detach:
// the delete itself is the check (EC2 answers InUse while the ENI is still
// detaching), re-checked with one describe after the first InUse and
// retried with back-off (docs/compatibility.md, "ipamd: failed ENI calls").
func (e *EC2) FreeENI(ctx context.Context, eniID, attachmentID string) error {
	if attachmentID == "" {
		eni, err := e.DescribeENI(ctx, eniID)
		if Code(err) == CodeENINotFound {
			return nil
		}
		if err != nil {
			e.unhandled(UnhandledFreeENIAttachID, err)
			return fmt.Errorf("freeing ENI %s: %w", eniID, err)
		}
		if eni.Attachment == nil {
			return e.deleteFreed(ctx, eniID)
		}
		if eni.Attachment.Status == string(types.AttachmentStatusDetaching) {
			// Someone (an earlier FreeENI cut short) already asked.
			return e.deleteDetached(ctx, eniID)
		}
		attachmentID = eni.Attachment.ID
	}
	if err := e.DetachENI(ctx, attachmentID); err != nil && !IsNotFound(err) {
		return fmt.Errorf("freeing ENI %s: %w", eniID, err)
	}
	return e.deleteDetached(ctx, eniID)
}

// deleteFreed is FreeENI's delete of an unattached ENI.
func (e *EC2) deleteFreed(ctx context.Context, eniID string) error {
	err := e.DeleteENI(ctx, eniID)
	if err != nil {
		e.unhandled(UnhandledFreeENIDelete, err)
	}
	return err
}

// deleteDetached deletes an ENI whose detach was asked for: it waits the
// usual detach time, then deletes; while EC2 answers InUse it looks once at
// the attachment (a detach that did not take is asked again) and retries
// with back-off until ctx ends.
func (e *EC2) deleteDetached(ctx context.Context, eniID string) error {
	wait := e.cfg.DetachWait
	for attempt := 1; ; attempt++ {
		if err := sleepCtx(ctx, wait); err != nil {
			return fmt.Errorf("freeing ENI %s: waiting for the detach: %w", eniID, err)
		}
		err := e.DeleteENI(ctx, eniID)
		if err == nil || Code(err) != CodeENIInUse {
			if err != nil {
				e.unhandled(UnhandledFreeENIDelete, err)
			}
			return err
		}
		if attempt == 1 {
			if err := e.redetach(ctx, eniID); err != nil {
				return err
			}
		}
		wait = e.cfg.DetachPoll.Delay(attempt, 0.5)
	}
}

// redetach is deleteDetached's single re-check: an ENI still attached (not
// detaching) is detached again; a vanished one needs nothing.
func (e *EC2) redetach(ctx context.Context, eniID string) error {
	eni, err := e.DescribeENI(ctx, eniID)
	switch {
	case Code(err) == CodeENINotFound:
		return nil
	case err != nil:
		return fmt.Errorf("freeing ENI %s: re-checking the detach: %w", eniID, err)
	case eni.Attachment != nil && eni.Attachment.Status != string(types.AttachmentStatusDetaching) &&
		eni.Attachment.Status != string(types.AttachmentStatusDetached):
		if err := e.DetachENI(ctx, eni.Attachment.ID); err != nil && !IsNotFound(err) {
			return fmt.Errorf("freeing ENI %s: %w", eniID, err)
		}
	}
	return nil
}

func errorMessage(err error) string {
	var m interface{ ErrorMessage() string }
	if errors.As(err, &m) {
		return m.ErrorMessage()
	}
	return strings.TrimSpace(err.Error())
}

// InstanceENIs describes every ENI attached to an instance (any network
// card, any attachment state), ordered by card and device index, with one
// DescribeNetworkInterfaces filtered on attachment.instance-id. The answer
// holds everything DescribeInstances tells about the instance's network
// (subnet, VPC, primary ENI and its security groups) and the ENIs' tags
// besides, so a caller needing both makes one call instead of two.
func (e *EC2) InstanceENIs(ctx context.Context, instanceID string) ([]ENI, error) {
	if instanceID == "" {
		return nil, fmt.Errorf("describing the ENIs of an instance: empty instance id")
	}
	p := ec2.NewDescribeNetworkInterfacesPaginator(e.api, &ec2.DescribeNetworkInterfacesInput{
		Filters: []types.Filter{{Name: aws.String("attachment.instance-id"), Values: []string{instanceID}}},
	})
	var out []ENI
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("describing the ENIs of instance %s: %w", instanceID, err)
		}
		for _, ni := range page.NetworkInterfaces {
			eni, err := parseENI(ni)
			if err != nil {
				return nil, err
			}
			if eni.Attachment == nil || eni.Attachment.InstanceID != instanceID {
				continue // detached between the filter and the answer
			}
			out = append(out, eni)
		}
	}
	slices.SortFunc(out, func(a, b ENI) int {
		return cmp.Or(cmp.Compare(a.Attachment.NetworkCard, b.Attachment.NetworkCard),
			cmp.Compare(a.Attachment.DeviceIndex, b.Attachment.DeviceIndex))
	})
	return out, nil
}
