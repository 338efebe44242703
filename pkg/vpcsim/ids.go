package vpcsim

import "strings"

// idKind is one kind of EC2 resource id. EC2 checks an id's shape before it
// looks the id up: an id not of the shape is answered with the kind's
// .Malformed code, a well-formed id that names nothing with .NotFound
// (docs/compatibility.md, "vpcsim: fidelity to EC2").
type idKind struct {
	prefix    string // without the '-'
	malformed string // error code for an id not of the shape
	notFound  string // error code for a well-formed id that names nothing
	noun      string // how the NotFound message names the kind
	// nouns, when set, names several ids, with "do not exist"
	nouns string
}

var (
	eniIDs        = idKind{"eni", "InvalidNetworkInterfaceID.Malformed", "InvalidNetworkInterfaceID.NotFound", "networkInterface ID", ""}
	instanceIDs   = idKind{"i", "InvalidInstanceID.Malformed", "InvalidInstanceID.NotFound", "instance ID", "instance IDs"}
	subnetIDs     = idKind{"subnet", "InvalidSubnetID.Malformed", "InvalidSubnetID.NotFound", "subnet ID", ""}
	groupIDs      = idKind{"sg", "InvalidGroupId.Malformed", "InvalidGroup.NotFound", "security group", ""}
	vpcIDs        = idKind{"vpc", "InvalidVpcID.Malformed", "InvalidVpcID.NotFound", "vpc ID", ""}
	attachmentIDs = idKind{"eni-attach", "InvalidNetworkInterfaceAttachmentId.Malformed", "InvalidAttachmentID.NotFound", "attachment ID", ""}
	trunkAssocIDs = idKind{"trunk-assoc", "InvalidAssociationID.Malformed", "InvalidAssociationID.NotFound", "association ID", ""}
	ruleIDs       = idKind{"sgr", "InvalidSecurityGroupRuleId.Malformed", "InvalidSecurityGroupRuleId.NotFound", "security group rule ID", ""}
)

// notFoundErr is the kind's .NotFound error for ids that name nothing. EC2
// names every such id of the request in one message, in the order asked
// (docs/compatibility.md, "vpcsim: fidelity to EC2").
func (k idKind) notFoundErr(ids []string) *APIError {
	if len(ids) > 1 && k.nouns != "" {
		return apiErr(k.notFound, "The %s '%s' do not exist", k.nouns, strings.Join(ids, ", "))
	}
	return apiErr(k.notFound, "The %s '%s' does not exist", k.noun, strings.Join(ids, ", "))
}

// kindOf is the taggable kind whose prefix id has, if any.
func kindOf(id string) (idKind, bool) {
	for _, k := range taggable {
		if strings.HasPrefix(id, k.prefix+"-") {
			return k, true
		}
	}
	return idKind{}, false
}

// wellFormed reports whether id is the prefix, '-', then 8 (older
// resources) or 17 lowercase hex digits.
func (k idKind) wellFormed(id string) bool {
	hex, ok := strings.CutPrefix(id, k.prefix+"-")
	if !ok || len(hex) != 8 && len(hex) != 17 {
		return false
	}
	for _, c := range hex {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// check is nil for "" (the caller decides whether the id is required) and
// for a well-formed id, else the kind's .Malformed error.
func (k idKind) check(id string) *APIError {
	if id == "" || k.wellFormed(id) {
		return nil
	}
	return k.malformedErr(id)
}

func (k idKind) malformedErr(id string) *APIError {
	return apiErr(k.malformed, "Invalid id: \"%s\" (expecting \"%s-...\")", id, k.prefix)
}

// id reads one id parameter, remembering a malformed one as the request's
// error so the action refuses it before any lookup.
func (p *params) id(k idKind, name string) string {
	v := p.str(name)
	if err := k.check(v); err != nil {
		p.fail(err)
	}
	if v != "" {
		p.refs = append(p.refs, idRef{kind: k, ids: []string{v}})
	}
	return v
}

// ids reads the id list prefix.1, prefix.2, ... as id does one id, except
// that an empty member is malformed: it was sent, so it is not missing.
func (p *params) ids(k idKind, prefix string) []string {
	vs := p.list(prefix)
	for _, v := range vs {
		if v == "" {
			p.fail(k.malformedErr(v))
		} else if err := k.check(v); err != nil {
			p.fail(err)
		}
	}
	if len(vs) > 0 {
		p.refs = append(p.refs, idRef{kind: k, ids: vs})
	}
	return vs
}

// taggable are the kinds CreateTags and DeleteTags address, longest
// prefix first so an attachment id is not read as an ENI id.
var taggable = []idKind{attachmentIDs, eniIDs, instanceIDs, subnetIDs, vpcIDs, groupIDs}

// resourceIDs reads CreateTags' and DeleteTags' ResourceId.N. EC2 answers a
// malformed resource id there with InvalidID, whatever its kind.
func (p *params) resourceIDs() []string {
	vs := p.list("ResourceId")
	for _, v := range vs {
		k, ok := kindOf(v)
		if !ok || !k.wellFormed(v) {
			p.fail(apiErr("InvalidID", "The ID '%s' is not valid", v))
		}
	}
	if len(vs) > 0 {
		p.refs = append(p.refs, idRef{ids: vs, anyKind: true})
	}
	return vs
}

// checkPreset refuses an id a scenario (or Sim.RunInstance) sets that EC2
// would never issue: the world would hold a resource no EC2 call can name,
// since every call answers such an id .Malformed.
func (k idKind) checkPreset(id string) error {
	if id == "" || k.wellFormed(id) {
		return nil
	}
	return apiErr("InvalidParameterValue", "id %q is not of EC2's shape: %s-, then 8 or 17 lowercase hex digits", id, k.prefix)
}
