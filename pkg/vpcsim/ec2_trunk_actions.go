package vpcsim

import "strconv"

type xmlTrunkAssoc struct {
	AssociationID     string   `xml:"associationId"`
	BranchInterfaceID string   `xml:"branchInterfaceId"`
	TrunkInterfaceID  string   `xml:"trunkInterfaceId"`
	InterfaceProtocol string   `xml:"interfaceProtocol"`
	VlanID            int      `xml:"vlanId"`
	TagSet            []xmlTag `xml:"tagSet>item"`
}

func trunkAssocXML(v TrunkAssociationView) xmlTrunkAssoc {
	return xmlTrunkAssoc{AssociationID: v.ID, BranchInterfaceID: v.BranchENIID, TrunkInterfaceID: v.TrunkENIID, InterfaceProtocol: "VLAN", VlanID: v.VLAN, TagSet: tagsXML(v.Tags)}
}

func (s *Sim) associateTrunkInterface(p *params) (any, error) {
	r := associateReq{BranchID: p.id(eniIDs, "BranchInterfaceId"), TrunkID: p.id(eniIDs, "TrunkInterfaceId"), ClientToken: p.str("ClientToken")}
	if p.has("VlanId") {
		raw := p.str("VlanId")
		n, err := strconv.Atoi(raw)
		if err != nil {
			return nil, errInvalid("VlanId", raw)
		}
		r.VLAN = &n
	}
	if p.has("GreKey") {
		return nil, apiErr("InvalidParameterValue", "GRE associations are not supported; use VlanId")
	}
	if p.err != nil {
		return nil, p.err
	}
	var out struct {
		Assoc       xmlTrunkAssoc `xml:"interfaceAssociation"`
		ClientToken string        `xml:"clientToken,omitempty"`
	}
	err := s.mutate(p, func(w *world) error {
		a, err := w.associateTrunk(r)
		if err != nil {
			return err
		}
		for _, v := range w.assocViews() {
			if v.ID == a.id {
				out.Assoc = trunkAssocXML(v)
			}
		}
		out.ClientToken = r.ClientToken
		return nil
	})
	return out, err
}

func (s *Sim) disassociateTrunkInterface(p *params) (any, error) {
	id, token := p.id(trunkAssocIDs, "AssociationId"), p.str("ClientToken")
	if p.err != nil {
		return nil, p.err
	}
	var out struct {
		Return      bool   `xml:"return"`
		ClientToken string `xml:"clientToken,omitempty"`
	}
	err := s.mutate(p, func(w *world) error { return w.disassociateTrunk(id, token) })
	out.Return, out.ClientToken = err == nil, token
	return out, err
}

func (s *Sim) describeTrunkInterfaceAssociations(p *params) (any, error) {
	var out struct {
		Assocs    []xmlTrunkAssoc `xml:"interfaceAssociationSet>item"`
		NextToken string          `xml:"nextToken,omitempty"`
	}
	var err error
	out.Assocs, out.NextToken, err = describe[TrunkAssociationView, xmlTrunkAssoc]{
		idParam: "AssociationId",
		idKind:  trunkAssocIDs,
		key:     func(v TrunkAssociationView) string { return v.ID },
		maxPage: 255,
		all:     func(w *world) []TrunkAssociationView { return w.assocViews() },
		byID: func(w *world, id string) (TrunkAssociationView, error) {
			return findByID(w.assocViews(), func(v TrunkAssociationView) string { return v.ID }, id, func(id string) error {
				return apiErr("InvalidAssociationID.NotFound", "The association ID '%s' does not exist", id)
			})
		},
		field:  assocField,
		render: func(_ *world, v TrunkAssociationView) xmlTrunkAssoc { return trunkAssocXML(v) },
	}.run(s, p)
	return out, err
}

// createNetworkInterfacePermission grants INSTANCE-ATTACH to an account, as
// the resource controller asks before attaching a trunk or associating a
// branch. One account owns everything here, so the grant is recorded only
// as an answer.
func (s *Sim) createNetworkInterfacePermission(p *params) (any, error) {
	id, acct, perm := p.id(eniIDs, "NetworkInterfaceId"), p.str("AwsAccountId"), p.str("Permission")
	switch {
	case p.err != nil:
		return nil, p.err
	case acct == "" && p.str("AwsService") == "":
		return nil, errMissing("AwsAccountId")
	case perm == "":
		return nil, errMissing("Permission")
	case perm != "INSTANCE-ATTACH" && perm != "EIP-ASSOCIATE":
		return nil, errInvalid("Permission", perm)
	}
	type state struct {
		State string `xml:"state"`
	}
	var out struct {
		Perm struct {
			ID      string `xml:"networkInterfacePermissionId"`
			ENIID   string `xml:"networkInterfaceId"`
			Account string `xml:"awsAccountId"`
			Perm    string `xml:"permission"`
			State   state  `xml:"permissionState"`
		} `xml:"interfacePermission"`
	}
	err := s.mutate(p, func(w *world) error {
		if _, err := w.eni(id); err != nil {
			return err
		}
		out.Perm.ID, out.Perm.ENIID, out.Perm.Account, out.Perm.Perm = w.newID("eni-perm"), id, acct, perm
		out.Perm.State.State = "GRANTED"
		return nil
	})
	return out, err
}
