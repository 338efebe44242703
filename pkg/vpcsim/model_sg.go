package vpcsim

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// sgRule is one security group rule: traffic of a protocol and port range
// from (ingress) or to (egress) a CIDR or the members of a group.
type sgRule struct {
	id      string
	groupID string
	egress  bool
	proto   string       // "-1" (all), "tcp", "udp", "icmp", "icmpv6" or a number
	from    int          // first port (ICMP: type); -1 when not applicable
	to      int          // last port (ICMP: code); -1 when not applicable
	cidr    netip.Prefix // zero when ref is set
	ref     string       // referenced group id
	desc    string
}

// key identifies a rule for duplicate and revoke matching: everything but
// the id and description.
func (r *sgRule) key() string {
	return fmt.Sprintf("%t|%s|%d|%d|%s|%s", r.egress, r.proto, r.from, r.to, r.cidr, r.ref)
}

// permission is one IpPermission of an Authorize/Revoke call, expanded to
// one rule per source.
type permission struct {
	Proto      string
	From, To   *int
	CIDRs      []netip.Prefix
	Groups     []string
	Desc       []string // per source, in CIDRs-then-Groups order
	SourceList string   // for error messages
}

// normProto maps EC2's protocol spellings to one name.
func normProto(p string) (string, error) {
	switch strings.ToLower(p) {
	case "-1", "all":
		return "-1", nil
	case "tcp", "6":
		return "tcp", nil
	case "udp", "17":
		return "udp", nil
	case "icmp", "1":
		return "icmp", nil
	case "icmpv6", "58":
		return "icmpv6", nil
	}
	n, err := strconv.Atoi(p)
	if err != nil || n < 0 || n > 255 {
		return "", apiErr("InvalidParameterValue", "Invalid value '%s' for IP protocol. Unknown protocol.", p)
	}
	return strconv.Itoa(n), nil
}

// ruleShape validates protocol and ports and returns the stored from/to.
func ruleShape(proto string, from, to *int) (string, int, int, error) {
	pr, err := normProto(proto)
	if err != nil {
		return "", 0, 0, err
	}
	get := func(p *int) int {
		if p == nil {
			return -1
		}
		return *p
	}
	f, t := get(from), get(to)
	switch pr {
	case "tcp", "udp":
		if from == nil || to == nil {
			return "", 0, 0, apiErr("InvalidParameterValue", "Invalid value: %s rules need both FromPort and ToPort", pr)
		}
		if f < 0 || t > 65535 || f > t {
			return "", 0, 0, apiErr("InvalidParameterValue", "Invalid port range %d-%d for %s: want 0-65535 with FromPort <= ToPort", f, t, pr)
		}
		return pr, f, t, nil
	case "icmp", "icmpv6":
		if f < -1 || f > 255 || t < -1 || t > 255 {
			return "", 0, 0, apiErr("InvalidParameterValue", "Invalid ICMP type %d or code %d", f, t)
		}
		return pr, f, t, nil
	}
	return pr, -1, -1, nil // every port of other protocols
}

func (w *world) group(id string) (*secGroup, error) {
	if id == "" {
		return nil, errMissing("GroupId")
	}
	if !strings.HasPrefix(id, "sg-") {
		return nil, apiErr("InvalidGroupId.Malformed", "Invalid id: \"%s\" (expecting \"sg-...\")", id)
	}
	g, ok := w.sgs[id]
	if !ok {
		return nil, apiErr("InvalidGroup.NotFound", "The security group '%s' does not exist", id)
	}
	return g, nil
}

// expand turns permissions into rules of g, checking each source.
func (w *world) expand(g *secGroup, egress bool, perms []permission) ([]*sgRule, error) {
	var out []*sgRule
	for _, p := range perms {
		pr, f, t, err := ruleShape(p.Proto, p.From, p.To)
		if err != nil {
			return nil, err
		}
		if len(p.CIDRs)+len(p.Groups) == 0 {
			return nil, apiErr("InvalidParameterValue", "An IpPermission needs at least one of IpRanges, Ipv6Ranges or Groups")
		}
		desc := func(i int) string {
			if i < len(p.Desc) {
				return p.Desc[i]
			}
			return ""
		}
		for i, c := range p.CIDRs {
			out = append(out, &sgRule{groupID: g.id, egress: egress, proto: pr, from: f, to: t, cidr: c.Masked(), desc: desc(i)})
		}
		for i, ref := range p.Groups {
			rg, err := w.group(ref)
			if err != nil {
				return nil, err
			}
			if rg.vpcID != g.vpcID {
				return nil, apiErr("InvalidGroup.NotFound", "The security group '%s' does not exist in VPC '%s'", ref, g.vpcID)
			}
			out = append(out, &sgRule{groupID: g.id, egress: egress, proto: pr, from: f, to: t, ref: ref, desc: desc(len(p.CIDRs) + i)})
		}
	}
	return out, nil
}

// authorize adds rules; any duplicate (existing or within the call) fails
// the whole call, as on EC2.
func (w *world) authorize(groupID string, egress bool, perms []permission) ([]*sgRule, error) {
	g, err := w.group(groupID)
	if err != nil {
		return nil, err
	}
	if len(perms) == 0 {
		return nil, errMissing("IpPermissions")
	}
	rules, err := w.expand(g, egress, perms)
	if err != nil {
		return nil, err
	}
	have := map[string]bool{}
	for _, r := range g.rules {
		have[r.key()] = true
	}
	for _, r := range rules {
		if have[r.key()] {
			return nil, apiErr("InvalidPermission.Duplicate", "the specified rule \"peer: %s, %s, %s\" already exists", r.peer(), r.proto, r.portText())
		}
		have[r.key()] = true
	}
	for _, r := range rules {
		r.id = w.newID("sgr")
		w.rules[r.id] = r
		g.rules = append(g.rules, r)
	}
	w.sgChanged()
	return rules, nil
}

// revoke removes rules named by permissions or by id; a rule that does not
// exist fails the whole call.
func (w *world) revoke(groupID string, egress bool, perms []permission, byID []string) ([]*sgRule, error) {
	g, err := w.group(groupID)
	if err != nil {
		return nil, err
	}
	if len(perms) == 0 && len(byID) == 0 {
		return nil, errMissing("IpPermissions")
	}
	var gone []*sgRule
	var missing []string
	for _, id := range dedupe(byID) {
		r, ok := w.rules[id]
		if !ok || r.groupID != g.id || r.egress != egress {
			missing = append(missing, id)
			continue
		}
		gone = append(gone, r)
	}
	if len(missing) > 0 {
		return nil, ruleIDs.notFoundErr(missing)
	}
	want, err := w.expand(g, egress, perms)
	if err != nil {
		return nil, err
	}
	for _, x := range want {
		i := slices.IndexFunc(g.rules, func(r *sgRule) bool { return r.key() == x.key() })
		if i < 0 {
			return nil, apiErr("InvalidPermission.NotFound", "The specified rule does not exist in this security group (peer: %s, %s, %s).", x.peer(), x.proto, x.portText())
		}
		gone = append(gone, g.rules[i])
	}
	for _, r := range gone {
		delete(w.rules, r.id)
	}
	g.rules = slices.DeleteFunc(g.rules, func(r *sgRule) bool { _, ok := w.rules[r.id]; return !ok })
	w.sgChanged()
	return gone, nil
}

func (r *sgRule) peer() string {
	if r.ref != "" {
		return r.ref
	}
	return r.cidr.String()
}

func (r *sgRule) portText() string {
	if r.from < 0 && r.to < 0 {
		return "ALL"
	}
	return fmt.Sprintf("%d-%d", r.from, r.to)
}

// defaultRules are the rules of a new group: egress to everywhere (IPv4).
func (w *world) addDefaultEgress(g *secGroup, ipv6 bool) {
	add := func(c netip.Prefix) {
		r := &sgRule{id: w.newID("sgr"), groupID: g.id, egress: true, proto: "-1", from: -1, to: -1, cidr: c}
		w.rules[r.id] = r
		g.rules = append(g.rules, r)
	}
	add(netip.MustParsePrefix("0.0.0.0/0"))
	if ipv6 {
		add(netip.MustParsePrefix("::/0"))
	}
}

type createGroupReq struct {
	ID, Name, Desc, VPCID string
	Tags                  map[string]string
}

// check refuses a request EC2 refuses before any lookup.
func (r createGroupReq) check() error {
	switch {
	case r.Name == "":
		return errMissing("GroupName")
	case r.Desc == "":
		return errMissing("GroupDescription")
	case r.VPCID == "":
		return apiErr("VPCIdNotSpecified", "No default VPC for this user")
	case len(r.Name) > 255 || strings.HasPrefix(strings.ToLower(r.Name), "sg-"):
		return apiErr("InvalidParameterValue", "Invalid value '%s' for groupName.", r.Name)
	}
	return nil
}

func (w *world) createGroup(r createGroupReq) (*secGroup, error) {
	if err := r.check(); err != nil {
		return nil, err
	}
	v, ok := w.vpcs[r.VPCID]
	if !ok {
		return nil, apiErr("InvalidVpcID.NotFound", "The vpc ID '%s' does not exist", r.VPCID)
	}
	for _, g := range w.sgs {
		if g.vpcID == v.id && g.name == r.Name {
			return nil, apiErr("InvalidGroup.Duplicate", "The security group '%s' already exists for VPC '%s'", r.Name, v.id)
		}
	}
	id := r.ID
	if id == "" {
		id = w.newID("sg")
	}
	g := &secGroup{id: id, name: r.Name, desc: r.Desc, vpcID: v.id, tags: copyTags(r.Tags)}
	w.sgs[id] = g
	w.addDefaultEgress(g, v.ipv6.IsValid())
	w.sgChanged()
	return g, nil
}

func (w *world) deleteGroup(id string) error {
	g, err := w.group(id)
	if err != nil {
		return err
	}
	if g.name == "default" {
		return apiErr("CannotDelete", "the specified group: \"%s\" name: \"default\" cannot be deleted by a user", id)
	}
	for _, eid := range sortedKeys(w.enis) {
		if slices.Contains(w.enis[eid].groups, id) {
			return apiErr("DependencyViolation", "resource %s has a dependent object (%s)", id, eid)
		}
	}
	for _, r := range w.rules {
		if r.ref == id && r.groupID != id {
			return apiErr("DependencyViolation", "resource %s has a dependent object (rule %s of %s)", id, r.id, r.groupID)
		}
	}
	for _, r := range g.rules {
		delete(w.rules, r.id)
	}
	delete(w.sgs, id)
	w.sgChanged()
	return nil
}

// sgChanged marks the security configuration changed; Sim.do then emits
// one SecurityGroupsChanged for the whole operation.
func (w *world) sgChanged() { w.sgDirty = true }

// refsUsed reports whether any rule names a group: only then do address
// changes alter what the rules match.
func (w *world) refsUsed() bool {
	for _, r := range w.rules {
		if r.ref != "" {
			return true
		}
	}
	return false
}

// SecurityGroupRuleView is one rule of a group.
type SecurityGroupRuleView struct {
	ID       string       `json:"id"`
	GroupID  string       `json:"groupId"`
	Egress   bool         `json:"egress"`
	Protocol string       `json:"protocol"` // "-1" all, "tcp", "udp", "icmp", "icmpv6" or a number
	FromPort int          `json:"fromPort"` // -1: any
	ToPort   int          `json:"toPort"`   // -1: any
	CIDR     netip.Prefix `json:"cidr,omitzero"`
	// Group: the rule matches the addresses of this group's members.
	Group       string `json:"referencedGroupId,omitempty"`
	Description string `json:"description,omitempty"`
}

// SecurityGroupView is a group with its rules.
type SecurityGroupView struct {
	ID          string                  `json:"id"`
	Name        string                  `json:"name"`
	VPCID       string                  `json:"vpcId"`
	Description string                  `json:"description,omitempty"`
	Rules       []SecurityGroupRuleView `json:"rules"`
}

func ruleView(r *sgRule) SecurityGroupRuleView {
	return SecurityGroupRuleView{ID: r.id, GroupID: r.groupID, Egress: r.egress, Protocol: r.proto, FromPort: r.from, ToPort: r.to, CIDR: r.cidr, Group: r.ref, Description: r.desc}
}

func (w *world) groupView(g *secGroup) SecurityGroupView {
	v := SecurityGroupView{ID: g.id, Name: g.name, VPCID: g.vpcID, Description: g.desc, Rules: []SecurityGroupRuleView{}}
	for _, r := range g.rules {
		v.Rules = append(v.Rules, ruleView(r))
	}
	return v
}

// ENISecurity is what the data plane needs to enforce one ENI's groups.
type ENISecurity struct {
	ENIID     string         `json:"eniId"`
	Groups    []string       `json:"groups"`
	Addresses []netip.Prefix `json:"addresses"`
}

// SecurityGroupsChanged carries the whole security configuration after a
// change: every group with its rules and every ENI's groups and addresses
// (to resolve rules that reference a group).
type SecurityGroupsChanged struct {
	Groups []SecurityGroupView
	ENIs   []ENISecurity
}

func (SecurityGroupsChanged) isEvent() {}

func (w *world) sgSnapshot() SecurityGroupsChanged {
	var ev SecurityGroupsChanged
	for _, id := range sortedKeys(w.sgs) {
		ev.Groups = append(ev.Groups, w.groupView(w.sgs[id]))
	}
	for _, id := range sortedKeys(w.enis) {
		e := w.enis[id]
		ev.ENIs = append(ev.ENIs, ENISecurity{ENIID: id, Groups: slices.Clone(e.groups), Addresses: e.allPrefixes()})
	}
	return ev
}

// scenarioRules builds a scenario group's rules. A group the scenario gives
// no rules gets "all traffic from the VPC, all traffic out", so that worlds
// written before groups filtered keep working (docs/compatibility.md,
// "vpcsim: fidelity to EC2").
func (w *world) scenarioRules(g *secGroup, v *vpc, gs SecurityGroupSpec) error {
	if gs.Ingress == nil && gs.Egress == nil {
		var perms []permission
		for _, c := range v.cidrs {
			perms = append(perms, permission{Proto: "-1", CIDRs: []netip.Prefix{c}})
		}
		if v.ipv6.IsValid() {
			perms = append(perms, permission{Proto: "-1", CIDRs: []netip.Prefix{v.ipv6}})
		}
		if _, err := w.authorize(g.id, false, perms); err != nil {
			return err
		}
		w.addDefaultEgress(g, v.ipv6.IsValid())
		return nil
	}
	for _, x := range []struct {
		egress bool
		specs  []RuleSpec
	}{{false, gs.Ingress}, {true, gs.Egress}} {
		for i, rs := range x.specs {
			p, err := rs.permission()
			if err != nil {
				return fmt.Errorf("%s[%d]: %w", map[bool]string{false: "ingress", true: "egress"}[x.egress], i, err)
			}
			if _, err := w.authorize(g.id, x.egress, []permission{p}); err != nil {
				return fmt.Errorf("%s[%d]: %w", map[bool]string{false: "ingress", true: "egress"}[x.egress], i, err)
			}
		}
	}
	return nil
}

// RuleSpec is one scenario security group rule. Exactly one of CIDR and
// Group is set.
type RuleSpec struct {
	Protocol    string `json:"protocol"` // "-1"/"all", "tcp", "udp", "icmp", "icmpv6" or a number
	FromPort    *int   `json:"fromPort,omitempty"`
	ToPort      *int   `json:"toPort,omitempty"`
	CIDR        string `json:"cidr,omitempty"`
	Group       string `json:"group,omitempty"` // a security group id of the same VPC
	Description string `json:"description,omitempty"`
}

func (rs RuleSpec) permission() (permission, error) {
	p := permission{Proto: rs.Protocol, From: rs.FromPort, To: rs.ToPort}
	switch {
	case (rs.CIDR == "") == (rs.Group == ""):
		return p, fmt.Errorf("want exactly one of cidr and group")
	case rs.CIDR != "":
		c, err := netip.ParsePrefix(rs.CIDR)
		if err != nil {
			return p, fmt.Errorf("cidr %q: %w", rs.CIDR, err)
		}
		p.CIDRs = []netip.Prefix{c}
	default:
		p.Groups = []string{rs.Group}
	}
	p.Desc = []string{rs.Description}
	return p, nil
}
