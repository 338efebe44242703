package vpcsim

import (
	"fmt"
	"net/netip"
	"strconv"
)

// signedInt reads an optional integer that may be -1 (ports, ICMP types).
func (p *params) signedInt(k string) *int {
	if !p.has(k) {
		return nil
	}
	s := p.str(k)
	n, err := strconv.Atoi(s)
	if err != nil || n < -1 || n > 65535 {
		p.fail(errInvalid(k, s))
		return nil
	}
	return &n
}

// permissions reads IpPermissions.N.* and the legacy top-level
// IpProtocol/FromPort/ToPort/CidrIp form.
func (p *params) permissions() []permission {
	var out []permission
	for _, n := range p.indices("IpPermissions") {
		base := "IpPermissions." + strconv.Itoa(n) + "."
		perm := permission{Proto: p.str(base + "IpProtocol"), From: p.signedInt(base + "FromPort"), To: p.signedInt(base + "ToPort")}
		if perm.Proto == "" {
			p.fail(errMissing(base + "IpProtocol"))
		}
		for _, m := range p.indices(base + "IpRanges") {
			k := base + "IpRanges." + strconv.Itoa(m) + "."
			perm.CIDRs = append(perm.CIDRs, p.cidr(k+"CidrIp", true))
			perm.Desc = append(perm.Desc, p.str(k+"Description"))
		}
		for _, m := range p.indices(base + "Ipv6Ranges") {
			k := base + "Ipv6Ranges." + strconv.Itoa(m) + "."
			perm.CIDRs = append(perm.CIDRs, p.cidr(k+"CidrIpv6", false))
			perm.Desc = append(perm.Desc, p.str(k+"Description"))
		}
		for _, m := range p.indices(base + "Groups") {
			k := base + "Groups." + strconv.Itoa(m) + "."
			g := p.id(groupIDs, k+"GroupId")
			if g == "" {
				p.fail(apiErr("InvalidParameterValue", "Groups need a GroupId (%sGroupId); group names are not supported in a VPC", k))
			}
			perm.Groups = append(perm.Groups, g)
			perm.Desc = append(perm.Desc, p.str(k+"Description"))
		}
		if len(p.indices(base+"PrefixListIds")) > 0 {
			p.fail(apiErr("InvalidParameterValue", "Prefix lists are not supported by this simulator (%sPrefixListIds)", base))
		}
		out = append(out, perm)
	}
	if p.has("IpProtocol") || p.has("CidrIp") {
		perm := permission{Proto: p.str("IpProtocol"), From: p.signedInt("FromPort"), To: p.signedInt("ToPort")}
		if p.has("CidrIp") {
			perm.CIDRs = []netip.Prefix{p.cidr("CidrIp", true)}
		}
		out = append(out, perm)
	}
	return out
}

func (p *params) cidr(k string, want4 bool) netip.Prefix {
	s := p.str(k)
	c, err := netip.ParsePrefix(s)
	if err != nil || c.Addr().Is4() != want4 || c.Addr().Zone() != "" {
		p.fail(apiErr("InvalidParameterValue", "CIDR block %s is malformed (parameter %s)", s, k))
		return netip.Prefix{}
	}
	return c
}

type xmlIPRange struct {
	CidrIP      string `xml:"cidrIp"`
	Description string `xml:"description,omitempty"`
}

type xmlIPv6Range struct {
	CidrIPv6    string `xml:"cidrIpv6"`
	Description string `xml:"description,omitempty"`
}

type xmlGroupPair struct {
	GroupID     string `xml:"groupId"`
	UserID      string `xml:"userId"`
	Description string `xml:"description,omitempty"`
}

type xmlIPPermission struct {
	IPProtocol string         `xml:"ipProtocol"`
	FromPort   *int           `xml:"fromPort,omitempty"`
	ToPort     *int           `xml:"toPort,omitempty"`
	Groups     []xmlGroupPair `xml:"groups>item"`
	IPRanges   []xmlIPRange   `xml:"ipRanges>item"`
	IPv6Ranges []xmlIPv6Range `xml:"ipv6Ranges>item"`
}

// permissionsXML groups rules with the same protocol and ports into one
// IpPermission, as DescribeSecurityGroups does.
func permissionsXML(account string, rules []*sgRule, egress bool) []xmlIPPermission {
	out := []xmlIPPermission{}
	idx := map[string]int{}
	for _, r := range rules {
		if r.egress != egress {
			continue
		}
		k := fmt.Sprintf("%s|%d|%d", r.proto, r.from, r.to)
		i, ok := idx[k]
		if !ok {
			x := xmlIPPermission{IPProtocol: r.proto}
			if r.proto != "-1" {
				f, t := r.from, r.to
				x.FromPort, x.ToPort = &f, &t
			}
			out = append(out, x)
			i = len(out) - 1
			idx[k] = i
		}
		x := &out[i]
		switch {
		case r.ref != "":
			x.Groups = append(x.Groups, xmlGroupPair{GroupID: r.ref, UserID: account, Description: r.desc})
		case r.cidr.Addr().Is4():
			x.IPRanges = append(x.IPRanges, xmlIPRange{CidrIP: r.cidr.String(), Description: r.desc})
		default:
			x.IPv6Ranges = append(x.IPv6Ranges, xmlIPv6Range{CidrIPv6: r.cidr.String(), Description: r.desc})
		}
	}
	return out
}

type xmlRefGroup struct {
	GroupID string `xml:"groupId"`
	UserID  string `xml:"userId"`
}

type xmlSGRule struct {
	ID          string       `xml:"securityGroupRuleId"`
	GroupID     string       `xml:"groupId"`
	OwnerID     string       `xml:"groupOwnerId"`
	IsEgress    bool         `xml:"isEgress"`
	IPProtocol  string       `xml:"ipProtocol"`
	FromPort    int          `xml:"fromPort"`
	ToPort      int          `xml:"toPort"`
	CidrIPv4    string       `xml:"cidrIpv4,omitempty"`
	CidrIPv6    string       `xml:"cidrIpv6,omitempty"`
	Ref         *xmlRefGroup `xml:"referencedGroupInfo,omitempty"`
	Description string       `xml:"description,omitempty"`
	Arn         string       `xml:"securityGroupRuleArn"`
	TagSet      []xmlTag     `xml:"tagSet>item"`
}

func (s *Sim) ruleXML(w *world, r *sgRule) xmlSGRule {
	x := xmlSGRule{ID: r.id, GroupID: r.groupID, OwnerID: w.account, IsEgress: r.egress, IPProtocol: r.proto, FromPort: r.from, ToPort: r.to, Description: r.desc,
		Arn: fmt.Sprintf("arn:aws:ec2:%s:%s:security-group-rule/%s", w.region, w.account, r.id), TagSet: []xmlTag{}}
	switch {
	case r.ref != "":
		x.Ref = &xmlRefGroup{GroupID: r.ref, UserID: w.account}
	case r.cidr.Addr().Is4():
		x.CidrIPv4 = r.cidr.String()
	default:
		x.CidrIPv6 = r.cidr.String()
	}
	return x
}

func (s *Sim) authorizeSG(p *params, egress bool) (any, error) {
	id := p.id(groupIDs, "GroupId")
	if id == "" && p.str("GroupName") != "" {
		return nil, apiErr("InvalidParameterValue", "Use GroupId: group names address EC2-Classic and default-VPC groups only")
	}
	perms := p.permissions()
	if p.err != nil {
		return nil, p.err
	}
	if err := needGroupAndRules(id, len(perms)); err != nil {
		return nil, err
	}
	var out struct {
		Return bool        `xml:"return"`
		Rules  []xmlSGRule `xml:"securityGroupRuleSet>item"`
	}
	err := s.mutate(p, func(w *world) error {
		rules, err := w.authorize(id, egress, perms)
		for _, r := range rules {
			out.Rules = append(out.Rules, s.ruleXML(w, r))
		}
		return err
	})
	out.Return = err == nil
	return out, err
}

func (s *Sim) revokeSG(p *params, egress bool) (any, error) {
	id := p.id(groupIDs, "GroupId")
	perms := p.permissions()
	rules := p.ids(ruleIDs, "SecurityGroupRuleId")
	if p.err != nil {
		return nil, p.err
	}
	if err := needGroupAndRules(id, len(perms)+len(rules)); err != nil {
		return nil, err
	}
	type revoked struct {
		RuleID  string `xml:"securityGroupRuleId"`
		GroupID string `xml:"groupId"`
		Egress  bool   `xml:"isEgress"`
	}
	var out struct {
		Return bool      `xml:"return"`
		Rules  []revoked `xml:"revokedSecurityGroupRuleSet>item"`
	}
	err := s.mutate(p, func(w *world) error {
		gone, err := w.revoke(id, egress, perms, rules)
		for _, r := range gone {
			out.Rules = append(out.Rules, revoked{RuleID: r.id, GroupID: r.groupID, Egress: r.egress})
		}
		return err
	})
	out.Return = err == nil
	return out, err
}

// needGroupAndRules refuses an Authorize*/Revoke* that names no group or no
// rule, before any lookup, so a dry run is refused too.
func needGroupAndRules(groupID string, rules int) error {
	if groupID == "" {
		return errMissing("GroupId")
	}
	if rules == 0 {
		return errMissing("IpPermissions")
	}
	return nil
}

func (s *Sim) authorizeSecurityGroupIngress(p *params) (any, error) { return s.authorizeSG(p, false) }
func (s *Sim) authorizeSecurityGroupEgress(p *params) (any, error)  { return s.authorizeSG(p, true) }
func (s *Sim) revokeSecurityGroupIngress(p *params) (any, error)    { return s.revokeSG(p, false) }
func (s *Sim) revokeSecurityGroupEgress(p *params) (any, error)     { return s.revokeSG(p, true) }

func (s *Sim) createSecurityGroup(p *params) (any, error) {
	r := createGroupReq{Name: p.str("GroupName"), Desc: p.str("GroupDescription"), VPCID: p.id(vpcIDs, "VpcId"), Tags: p.tagSpecs("security-group")}
	if p.err != nil {
		return nil, p.err
	}
	if err := r.check(); err != nil {
		return nil, err
	}
	var out struct {
		GroupID string   `xml:"groupId"`
		Arn     string   `xml:"securityGroupArn"`
		TagSet  []xmlTag `xml:"tagSet>item"`
	}
	err := s.mutate(p, func(w *world) error {
		g, err := w.createGroup(r)
		if err != nil {
			return err
		}
		out.GroupID, out.TagSet = g.id, tagsXML(g.tags)
		out.Arn = fmt.Sprintf("arn:aws:ec2:%s:%s:security-group/%s", w.region, w.account, g.id)
		return nil
	})
	return out, err
}

func (s *Sim) deleteSecurityGroup(p *params) (any, error) {
	id := p.id(groupIDs, "GroupId")
	if id == "" && p.str("GroupName") != "" {
		return nil, apiErr("InvalidParameterValue", "Use GroupId: group names address EC2-Classic and default-VPC groups only")
	}
	var out struct {
		Return  bool   `xml:"return"`
		GroupID string `xml:"groupId"`
	}
	if p.err != nil {
		return nil, p.err
	}
	if id == "" {
		return nil, errMissing("GroupId")
	}
	err := s.mutate(p, func(w *world) error { return w.deleteGroup(id) })
	out.Return, out.GroupID = err == nil, id
	return out, err
}

func ruleField(r *sgRule, name string) ([]string, bool) {
	if r == nil {
		r = &sgRule{}
	}
	switch name {
	case "group-id":
		return []string{r.groupID}, true
	case "security-group-rule-id":
		return []string{r.id}, true
	}
	return nil, false
}

func (s *Sim) describeSecurityGroupRules(p *params) (any, error) {
	var out struct {
		Rules     []xmlSGRule `xml:"securityGroupRuleSet>item"`
		NextToken string      `xml:"nextToken,omitempty"`
	}
	all := func(w *world) []*sgRule {
		var rules []*sgRule
		for _, gid := range sortedKeys(w.sgs) {
			rules = append(rules, w.sgs[gid].rules...)
		}
		return rules
	}
	var err error
	out.Rules, out.NextToken, err = describe[*sgRule, xmlSGRule]{
		idParam: "SecurityGroupRuleId",
		idKind:  ruleIDs,
		all:     all,
		byID: func(w *world, id string) (*sgRule, error) {
			return findByID(all(w), func(r *sgRule) string { return r.id }, id, func(id string) error {
				return apiErr("InvalidSecurityGroupRuleId.NotFound", "The security group rule ID '%s' does not exist", id)
			})
		},
		field:  ruleField,
		render: s.ruleXML,
	}.run(s, p)
	return out, err
}
