package vpcsim

import (
	"net/netip"
	"sort"
	"strings"
)

// unattachedIPv4Limit / unattachedIPv6Limit bound an ENI that is not attached
// to an instance (the largest per-ENI limit of any type); on attach the
// instance type's limit is enforced.
const (
	unattachedIPv4Limit = 50
	unattachedIPv6Limit = 50
)

type createENIReq struct {
	ID              string // scenario-provided id, else generated
	SubnetID        string
	Description     string
	Groups          []string
	InterfaceType   string
	PrimaryIP       netip.Addr
	SecondaryIPs    []netip.Addr
	SecondaryCount  int
	PrefixCount     int
	Prefixes        []netip.Prefix
	IPv6Count       int
	IPv6s           []netip.Addr
	IPv6PrefixCount int
	IPv6Prefixes    []netip.Prefix
	Tags            map[string]string
	// ClientToken makes the call idempotent: a retry with the same token
	// answers the ENI the first call made (while it exists); the token
	// reused with any other parameter is refused (sameCreateENI).
	ClientToken string
	// Wire is every parameter as sent except the action, version and token,
	// encoded in key order, so a token also covers parameters vpcsim does
	// not model (EnablePrimaryIpv6, ConnectionTrackingSpecification, …).
	Wire string
}

func (w *world) eni(id string) (*eni, error) {
	if id == "" {
		return nil, errMissing("NetworkInterfaceId")
	}
	if !strings.HasPrefix(id, "eni-") {
		return nil, apiErr("InvalidNetworkInterfaceID.Malformed", "Invalid id: \"%s\" (expecting \"eni-...\")", id)
	}
	e, ok := w.enis[id]
	if !ok {
		return nil, errENINotFound(id)
	}
	return e, nil
}

func (w *world) subnet(id string) (*subnet, error) {
	if id == "" {
		return nil, errMissing("SubnetId")
	}
	s, ok := w.subnets[id]
	if !ok {
		return nil, apiErr("InvalidSubnetID.NotFound", "The subnet ID '%s' does not exist", id)
	}
	return s, nil
}

// resolveGroups checks that every group exists in vpcID; none means the VPC's
// "default" group (or its first group).
func (w *world) resolveGroups(vpcID string, ids []string) ([]string, error) {
	if len(ids) == 0 {
		var all []*secGroup
		for _, g := range w.sgs {
			if g.vpcID == vpcID {
				all = append(all, g)
			}
		}
		sort.Slice(all, func(i, j int) bool { return all[i].id < all[j].id })
		for _, g := range all {
			if g.name == "default" {
				return []string{g.id}, nil
			}
		}
		if len(all) > 0 {
			return []string{all[0].id}, nil
		}
		return nil, nil
	}
	var out, missing []string
	for _, id := range dedupe(ids) {
		if g, ok := w.sgs[id]; !ok || g.vpcID != vpcID {
			missing = append(missing, id)
			continue
		}
		out = append(out, id)
	}
	if len(missing) > 0 {
		return nil, apiErr(groupIDs.notFound, "The security group '%s' does not exist in VPC '%s'", strings.Join(missing, ", "), vpcID)
	}
	return out, nil
}

func (w *world) createENI(r createENIReq) (*eni, error) {
	asked := r // as sent, before defaults fill it in
	if r.ClientToken != "" {
		for _, e := range w.enis {
			if e.token != r.ClientToken {
				continue
			}
			if !sameCreateENI(e.request, r) {
				return nil, errTokenMismatch(r.ClientToken)
			}
			return e, nil
		}
	}
	sn, err := w.subnet(r.SubnetID)
	if err != nil {
		return nil, err
	}
	switch r.InterfaceType {
	case "", "interface":
		r.InterfaceType = "interface"
	case "trunk", "branch":
	default:
		return nil, errInvalid("InterfaceType", r.InterfaceType)
	}
	if (r.SecondaryCount > 0 || len(r.SecondaryIPs) > 0) && (r.PrefixCount > 0 || len(r.Prefixes) > 0) {
		return nil, apiErr("InvalidParameterCombination", "Secondary private IP addresses and IPv4 prefixes cannot be specified together")
	}
	if r.SecondaryCount > 0 && len(r.SecondaryIPs) > 0 || r.PrefixCount > 0 && len(r.Prefixes) > 0 ||
		r.IPv6Count > 0 && len(r.IPv6s) > 0 || r.IPv6PrefixCount > 0 && len(r.IPv6Prefixes) > 0 {
		return nil, apiErr("InvalidParameterCombination", "A count and a list of the same kind of address cannot be specified together")
	}
	if r.SecondaryCount < 0 || r.PrefixCount < 0 || r.IPv6Count < 0 || r.IPv6PrefixCount < 0 {
		return nil, apiErr("InvalidParameterValue", "Address and prefix counts must not be negative")
	}
	if 1+r.SecondaryCount+len(r.SecondaryIPs)+r.PrefixCount+len(r.Prefixes) > unattachedIPv4Limit {
		return nil, apiErr("PrivateIpAddressLimitExceeded", "Number of private addresses will exceed limit.")
	}
	if r.IPv6Count+len(r.IPv6s)+r.IPv6PrefixCount+len(r.IPv6Prefixes) > unattachedIPv6Limit {
		return nil, apiErr("InvalidParameterValue", "Number of IPv6 addresses will exceed limit.")
	}
	groups, err := w.resolveGroups(sn.vpcID, r.Groups)
	if err != nil {
		return nil, err
	}
	id := r.ID
	if id == "" {
		id = w.newID("eni")
	}
	e := &eni{
		id: id, subnetID: sn.id, vpcID: sn.vpcID, az: sn.az, description: r.Description,
		interfaceType: r.InterfaceType, mac: w.newMAC(), groups: groups, tags: copyTags(r.Tags),
		token: r.ClientToken,
	}
	if r.ClientToken != "" {
		e.request = asked
	}
	tx := &undo{}
	if r.PrimaryIP.IsValid() {
		if err := sn.v4.take(r.PrimaryIP); err != nil {
			return nil, err
		}
		e.primaryIP = r.PrimaryIP
		tx.add(func() { sn.v4.release(r.PrimaryIP) })
	} else {
		a, ok := sn.v4.allocN(1)
		if !ok {
			return nil, errNoFreeAddresses(sn)
		}
		e.primaryIP = a[0]
		tx.add(func() { sn.v4.release(a[0]) })
	}
	if err := w.addIPv4(e, sn, r.SecondaryCount, r.SecondaryIPs, r.PrefixCount, r.Prefixes, tx); err != nil {
		tx.run()
		return nil, err
	}
	if err := w.addIPv6(e, sn, r.IPv6Count, r.IPv6s, r.IPv6PrefixCount, r.IPv6Prefixes, tx); err != nil {
		tx.run()
		return nil, err
	}
	w.enis[id] = e
	w.sgChanged()
	if news := e.allPrefixes(); len(news) > 0 {
		w.emit(AddressesAssigned{ENIID: id, Prefixes: news})
	}
	return e, nil
}

// undo collects rollback steps so a failed operation leaves no trace.
type undo struct{ fns []func() }

func (u *undo) add(f func()) { u.fns = append(u.fns, f) }
func (u *undo) run() {
	for i := len(u.fns) - 1; i >= 0; i-- {
		u.fns[i]()
	}
}

func (w *world) instance(id string) (*instance, error) {
	if id == "" {
		return nil, errMissing("InstanceId")
	}
	if !strings.HasPrefix(id, "i-") {
		return nil, apiErr("InvalidInstanceID.Malformed", "Invalid id: \"%s\" (expecting \"i-...\")", id)
	}
	in, ok := w.instances[id]
	if !ok {
		return nil, errInstanceNotFound(id)
	}
	return in, nil
}

// attachENI attaches an available ENI. immediate skips the attach delay
// (used at launch and for scenario ENIs).
func (w *world) attachENI(eniID, instanceID string, deviceIndex, card int, immediate bool) (*attachment, error) {
	e, err := w.eni(eniID)
	if err != nil {
		return nil, err
	}
	in, err := w.instance(instanceID)
	if err != nil {
		return nil, err
	}
	if in.state != "running" {
		return nil, apiErr("IncorrectInstanceState", "The instance '%s' is not in a valid state for this operation.", in.id)
	}
	if e.att != nil {
		return nil, apiErr("InvalidNetworkInterface.InUse", "Interface: [%s] in use.", e.id)
	}
	if a := w.branchAssoc(e.id); a != nil {
		return nil, apiErr("InvalidNetworkInterface.InUse", "Interface %s is a branch of trunk %s and cannot be attached.", e.id, a.trunkID)
	}
	if e.interfaceType == "branch" {
		return nil, apiErr("InvalidParameterValue", "Interface %s is a branch interface; associate it with a trunk instead.", e.id)
	}
	if e.vpcID != in.vpcID {
		return nil, apiErr("InvalidParameterValue", "Network interface %s and instance %s are not in the same VPC", e.id, in.id)
	}
	if e.az != in.az {
		return nil, apiErr("InvalidParameterValue", "Network interface %s and instance %s are not in the same availability zone", e.id, in.id)
	}
	if deviceIndex < 0 || deviceIndex > 99 {
		return nil, apiErr("InvalidParameterValue", "Value (%d) for parameter deviceIndex is invalid.", deviceIndex)
	}
	var cardMax = -1
	for _, c := range in.typ.Cards {
		if c.Index == card {
			cardMax = c.MaxENIs
		}
	}
	if cardMax < 0 {
		return nil, apiErr("InvalidParameterValue", "Network card index %d is not valid for instance type %s", card, in.typ.Name)
	}
	total, onCard := 0, 0
	for _, o := range w.instanceENIs(in.id) {
		total++
		if o.att.card == card {
			onCard++
			if o.att.deviceIndex == deviceIndex {
				return nil, apiErr("InvalidParameterValue", "Instance '%s' already has an interface attached at device index '%d'.", in.id, deviceIndex)
			}
		}
	}
	if total >= in.typ.MaxENIs || onCard >= cardMax {
		return nil, apiErr("AttachmentLimitExceeded", "Interface count %d exceeds the limit for %s", total+1, in.typ.Name)
	}
	if e.ipv4Count() > in.typ.IPv4PerENI {
		return nil, apiErr("PrivateIpAddressLimitExceeded", "Network interface %s has more private addresses than %s allows per interface", e.id, in.typ.Name)
	}
	if e.ipv6Count() > in.typ.IPv6PerENI {
		return nil, apiErr("InvalidParameterValue", "Network interface %s has more IPv6 addresses than %s allows per interface", e.id, in.typ.Name)
	}
	if len(e.prefixes) > 0 && !in.typ.PrefixDelegation() {
		return nil, apiErr("InvalidParameterValue", "Instance type %s does not support IPv4 prefixes", in.typ.Name)
	}
	if e.interfaceType == "trunk" && !in.typ.Trunking {
		return nil, apiErr("InvalidParameterValue", "Instance type %s does not support trunk interfaces", in.typ.Name)
	}
	now := w.now()
	att := &attachment{
		id: w.newID("eni-attach"), instanceID: in.id, deviceIndex: deviceIndex, card: card,
		status: "attaching", attachTime: now, due: now.Add(w.attachDelay),
	}
	e.att = att
	w.attachments[att.id] = e
	if immediate || w.attachDelay <= 0 {
		w.completeAttach(e)
	} else {
		w.pending[att.id] = e
	}
	return att, nil
}

func (w *world) completeAttach(e *eni) {
	e.att.status = "attached"
	sn := w.subnets[e.subnetID]
	ev := ENIAttached{
		InstanceID: e.att.instanceID, ENIID: e.id, MAC: e.mac, DeviceIndex: e.att.deviceIndex,
		NetworkCard: e.att.card, PrimaryIP: e.primaryIP, PublicIP: e.publicIP,
		SubnetCIDR: sn.cidr, SubnetIPv6CIDR: sn.ipv6, Addresses: e.allPrefixes(),
	}
	w.emit(ev)
}

// instanceENIs returns the ENIs attached (in any attachment state) to an
// instance, by card then device index.
func (w *world) instanceENIs(instanceID string) []*eni {
	var out []*eni
	for _, e := range w.attachments {
		if e.att.instanceID == instanceID {
			out = append(out, e)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i].att, out[j].att
		if a.card != b.card {
			return a.card < b.card
		}
		return a.deviceIndex < b.deviceIndex
	})
	return out
}

func (w *world) detachENI(attachmentID string, immediate bool) error {
	if attachmentID == "" {
		return errMissing("AttachmentId")
	}
	e, ok := w.attachments[attachmentID]
	if !ok {
		return apiErr("InvalidAttachmentID.NotFound", "The attachment ID '%s' does not exist", attachmentID)
	}
	if e.att.deviceIndex == 0 && e.att.card == 0 && !immediate {
		return apiErr("OperationNotPermitted", "The network interface at device index 0 cannot be detached.")
	}
	if e.att.status == "detaching" && !immediate {
		return nil
	}
	delete(w.pending, attachmentID)
	e.att.status = "detaching"
	e.att.due = w.now().Add(w.detachDelay)
	if immediate || w.detachDelay <= 0 {
		w.completeDetach(e)
	} else {
		w.pending[attachmentID] = e
	}
	return nil
}

func (w *world) completeDetach(e *eni) {
	att := e.att
	e.att = nil
	delete(w.attachments, att.id)
	delete(w.pending, att.id)
	w.emit(ENIDetached{InstanceID: att.instanceID, ENIID: e.id, MAC: e.mac, DeviceIndex: att.deviceIndex, NetworkCard: att.card, Addresses: e.allPrefixes()})
}

func (w *world) deleteENI(id string) error {
	e, err := w.eni(id)
	if err != nil {
		return err
	}
	if e.att != nil {
		return apiErr("InvalidNetworkInterface.InUse", "The network interface '%s' is currently in use.", id)
	}
	w.destroyENI(e)
	return nil
}

// destroyENI frees every address of a detached ENI and forgets it.
func (w *world) destroyENI(e *eni) {
	w.releaseTrunking(e)
	sn := w.subnets[e.subnetID]
	gone := e.allPrefixes()
	sn.v4.release(e.primaryIP)
	for _, a := range e.secondary {
		sn.v4.release(a)
	}
	for _, p := range e.prefixes {
		sn.v4.releaseBlock(p)
	}
	if sn.v6 != nil {
		for _, a := range e.ipv6 {
			sn.v6.release(a)
		}
		for _, p := range e.ipv6Prefixes {
			sn.v6.releaseBlock(p)
		}
	}
	if e.publicIP.IsValid() {
		w.public.release(e.publicIP)
	}
	delete(w.enis, e.id)
	w.sgChanged()
	w.emit(AddressesUnassigned{ENIID: e.id, Prefixes: gone})
}

type modifyENIReq struct {
	ENIID               string
	AttachmentID        string
	DeleteOnTermination *bool
	Groups              []string
	Description         *string
	SourceDestCheck     *bool
}

// checkAttribute refuses a request that names no attribute, several, or an
// attachment change without both of its parameters: checks of the request
// alone, made before any lookup.
func (r modifyENIReq) checkAttribute() error {
	n := 0
	if r.AttachmentID != "" || r.DeleteOnTermination != nil {
		n++
	}
	if r.Groups != nil {
		n++
	}
	if r.Description != nil {
		n++
	}
	if r.SourceDestCheck != nil {
		n++
	}
	switch {
	case n == 0:
		return errMissing("Attribute")
	case n > 1:
		return apiErr("InvalidParameterCombination", "Only one attribute can be modified at a time")
	case r.DeleteOnTermination != nil || r.AttachmentID != "":
		if r.AttachmentID == "" {
			return errMissing("Attachment.AttachmentId")
		}
		if r.DeleteOnTermination == nil {
			return errMissing("Attachment.DeleteOnTermination")
		}
	case r.Groups != nil && len(r.Groups) == 0:
		return errMissing("SecurityGroupId")
	}
	return nil
}

func (w *world) modifyENI(r modifyENIReq) error {
	if err := r.checkAttribute(); err != nil {
		return err
	}
	e, err := w.eni(r.ENIID)
	if err != nil {
		return err
	}
	switch {
	case r.DeleteOnTermination != nil || r.AttachmentID != "":
		if e.att == nil || e.att.id != r.AttachmentID {
			return apiErr("InvalidAttachmentID.NotFound", "The attachment ID '%s' does not exist", r.AttachmentID)
		}
		e.att.deleteOnTermination = *r.DeleteOnTermination
	case r.Groups != nil:
		g, err := w.resolveGroups(e.vpcID, r.Groups)
		if err != nil {
			return err
		}
		e.groups = g
		w.touch(e.instanceID())
		w.sgChanged()
	case r.Description != nil:
		e.description = *r.Description
	case r.SourceDestCheck != nil:
		e.noSrcDstCheck = !*r.SourceDestCheck
	}
	return nil
}
