package vpcsim

import (
	"maps"
	"sort"
)

// trunkAssoc is a branch ENI associated with a trunk ENI on one VLAN.
type trunkAssoc struct {
	id       string
	branchID string
	trunkID  string
	vlan     int
	token    string // ClientToken of the call that made it, "" if none
	tags     map[string]string
}

// Branch ENIs carry 802.1Q VLAN ids 1-4094 on their trunk.
const (
	minVLAN = 1
	maxVLAN = 4094
)

type associateReq struct {
	BranchID, TrunkID string
	VLAN              *int
	ClientToken       string
}

// trunkBranches lists the associations of a trunk, by VLAN.
func (w *world) trunkBranches(trunkID string) []*trunkAssoc {
	var out []*trunkAssoc
	for _, a := range w.assocs {
		if a.trunkID == trunkID {
			out = append(out, a)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].vlan < out[j].vlan })
	return out
}

// branchAssoc returns the association of a branch ENI, or nil.
func (w *world) branchAssoc(branchID string) *trunkAssoc {
	for _, a := range w.assocs {
		if a.branchID == branchID {
			return a
		}
	}
	return nil
}

// associateTrunk checks every rule EC2 applies to AssociateTrunkInterface.
// Error codes are listed in docs/compatibility.md, "vpcsim: fidelity to EC2".
func (w *world) associateTrunk(r associateReq) (*trunkAssoc, error) {
	switch {
	case r.BranchID == "":
		return nil, errMissing("BranchInterfaceId")
	case r.TrunkID == "":
		return nil, errMissing("TrunkInterfaceId")
	case r.VLAN == nil:
		return nil, errMissing("VlanId")
	}
	if r.ClientToken != "" {
		for _, a := range w.assocs {
			if a.token != r.ClientToken {
				continue
			}
			if a.branchID == r.BranchID && a.trunkID == r.TrunkID && a.vlan == *r.VLAN {
				return a, nil // a retried call answers what the first one did
			}
			return nil, errTokenMismatch(r.ClientToken)
		}
	}
	if *r.VLAN < minVLAN || *r.VLAN > maxVLAN {
		return nil, apiErr("InvalidParameterValue", "Value (%d) for parameter vlanId is invalid. Expecting a value between %d and %d.", *r.VLAN, minVLAN, maxVLAN)
	}
	trunk, err := w.eni(r.TrunkID)
	if err != nil {
		return nil, err
	}
	branch, err := w.eni(r.BranchID)
	if err != nil {
		return nil, err
	}
	if trunk.interfaceType != "trunk" {
		return nil, apiErr("InvalidParameterValue", "Network interface %s is not a trunk interface (its type is %s).", trunk.id, trunk.interfaceType)
	}
	if branch.interfaceType == "trunk" {
		return nil, apiErr("InvalidParameterValue", "Network interface %s is a trunk interface and cannot be a branch.", branch.id)
	}
	if branch.att != nil {
		return nil, apiErr("InvalidNetworkInterface.InUse", "Network interface %s is attached to instance %s and cannot be a branch.", branch.id, branch.att.instanceID)
	}
	if a := w.branchAssoc(branch.id); a != nil {
		return nil, apiErr("InvalidNetworkInterface.InUse", "Network interface %s is already associated with trunk %s (%s).", branch.id, a.trunkID, a.id)
	}
	if branch.vpcID != trunk.vpcID || branch.az != trunk.az {
		return nil, apiErr("InvalidParameterValue", "Branch %s and trunk %s must be in the same VPC and availability zone.", branch.id, trunk.id)
	}
	if trunk.att == nil || trunk.att.status != "attached" {
		return nil, apiErr("IncorrectState", "Trunk interface %s is not attached to an instance.", trunk.id)
	}
	in := w.instances[trunk.att.instanceID]
	branches := w.trunkBranches(trunk.id)
	for _, a := range branches {
		if a.vlan == *r.VLAN {
			return nil, apiErr("InvalidParameterValue", "VLAN ID %d is already in use on trunk interface %s (by %s).", a.vlan, trunk.id, a.branchID)
		}
	}
	if len(branches) >= in.typ.BranchENIs {
		return nil, apiErr("AttachmentLimitExceeded", "Trunk interface %s already has %d branch interfaces, the limit for %s.", trunk.id, len(branches), in.typ.Name)
	}
	a := &trunkAssoc{id: w.newID("trunk-assoc"), branchID: branch.id, trunkID: trunk.id, vlan: *r.VLAN, token: r.ClientToken, tags: map[string]string{}}
	w.assocs[a.id] = a
	branch.associated = true
	w.emit(w.branchEvent(a, true))
	return a, nil
}

// disassociateTrunk removes an association. A ClientToken makes it
// idempotent: a retry answers success though the association is gone.
func (w *world) disassociateTrunk(id, token string) error {
	if id == "" {
		return errMissing("AssociationId")
	}
	if prev, ok := w.disassocs[token]; ok && token != "" {
		if prev != id {
			return errTokenMismatch(token)
		}
		return nil
	}
	a, ok := w.assocs[id]
	if !ok {
		return apiErr("InvalidAssociationID.NotFound", "The association ID '%s' does not exist", id)
	}
	w.dropAssoc(a)
	if token != "" {
		w.disassocs[token] = id
	}
	return nil
}

func (w *world) dropAssoc(a *trunkAssoc) {
	delete(w.assocs, a.id)
	if b := w.enis[a.branchID]; b != nil {
		b.associated = false
	}
	w.emit(w.branchEvent(a, false))
}

// releaseTrunking ends every association an ENI that is going away takes
// part in: a deleted branch leaves its trunk, and a deleted trunk's branches
// are disassociated (they stay, available), so no branch outlives its trunk.
func (w *world) releaseTrunking(e *eni) {
	if a := w.branchAssoc(e.id); a != nil {
		w.dropAssoc(a)
	}
	if e.interfaceType == "trunk" {
		for _, a := range w.trunkBranches(e.id) {
			w.dropAssoc(a)
		}
	}
}

func (w *world) branchEvent(a *trunkAssoc, up bool) Event {
	b, t := w.enis[a.branchID], w.enis[a.trunkID]
	if !up {
		return BranchDisassociated{AssociationID: a.id, BranchENIID: a.branchID, TrunkENIID: a.trunkID, VLAN: a.vlan}
	}
	ev := BranchAssociated{AssociationID: a.id, BranchENIID: b.id, TrunkENIID: t.id, VLAN: a.vlan, MAC: b.mac, PrimaryIP: b.primaryIP, Addresses: b.allPrefixes()}
	if sn := w.subnets[b.subnetID]; sn != nil {
		ev.SubnetCIDR = sn.cidr
	}
	return ev
}

// TrunkAssociationView is one branch-trunk association.
type TrunkAssociationView struct {
	ID          string            `json:"id"`
	BranchENIID string            `json:"branchInterfaceId"`
	TrunkENIID  string            `json:"trunkInterfaceId"`
	VLAN        int               `json:"vlanId"`
	Tags        map[string]string `json:"tags,omitempty"`
}

func (w *world) assocViews() []TrunkAssociationView {
	out := []TrunkAssociationView{}
	for _, id := range sortedKeys(w.assocs) {
		a := w.assocs[id]
		out = append(out, TrunkAssociationView{ID: a.id, BranchENIID: a.branchID, TrunkENIID: a.trunkID, VLAN: a.vlan, Tags: maps.Clone(a.tags)})
	}
	return out
}

func assocField(v TrunkAssociationView, name string) ([]string, bool) {
	switch name {
	case "trunk-interface-association.branch-interface-id":
		return []string{v.BranchENIID}, true
	case "trunk-interface-association.trunk-interface-id":
		return []string{v.TrunkENIID}, true
	case "trunk-interface-association.association-id":
		return []string{v.ID}, true
	case "gre-key":
		return nil, true // VLAN associations have no GRE key
	}
	return tagField(v.Tags, name)
}
