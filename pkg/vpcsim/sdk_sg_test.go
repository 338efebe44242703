package vpcsim_test

import (
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/simtest"
)

func describeGroup(t *testing.T, c *ec2.Client, id string) types.SecurityGroup {
	t.Helper()
	out := must[*ec2.DescribeSecurityGroupsOutput](t)(c.DescribeSecurityGroups(ctx(t), &ec2.DescribeSecurityGroupsInput{GroupIds: []string{id}}))
	return out.SecurityGroups[0]
}

func tcp(port int32, cidr string) types.IpPermission {
	return types.IpPermission{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(port), ToPort: aws.Int32(port), IpRanges: []types.IpRange{{CidrIp: aws.String(cidr)}}}
}

func TestSecurityGroupRuleLifeCycle(t *testing.T) {
	env := simtest.Start(t, simtest.Basic())
	c := newEC2(env.EC2URL)
	cg := must[*ec2.CreateSecurityGroupOutput](t)(c.CreateSecurityGroup(ctx(t), &ec2.CreateSecurityGroupInput{GroupName: aws.String("db"), Description: aws.String("database"), VpcId: aws.String(simtest.VPCID)}))
	db := aws.ToString(cg.GroupId)

	// a new group: no ingress, all egress (IPv4 and, in an IPv6 VPC, IPv6)
	g := describeGroup(t, c, db)
	if len(g.IpPermissions) != 0 || len(g.IpPermissionsEgress) != 1 || aws.ToString(g.IpPermissionsEgress[0].IpProtocol) != "-1" {
		t.Fatalf("new group rules: in %+v out %+v", g.IpPermissions, g.IpPermissionsEgress)
	}

	// ingress from a CIDR, an IPv6 CIDR and a referenced group
	auth := must[*ec2.AuthorizeSecurityGroupIngressOutput](t)(c.AuthorizeSecurityGroupIngress(ctx(t), &ec2.AuthorizeSecurityGroupIngressInput{GroupId: aws.String(db), IpPermissions: []types.IpPermission{
		tcp(5432, "10.0.0.0/20"),
		{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(5432), ToPort: aws.Int32(5432), Ipv6Ranges: []types.Ipv6Range{{CidrIpv6: aws.String("2600:1f14:abc:de00::/64")}},
			UserIdGroupPairs: []types.UserIdGroupPair{{GroupId: aws.String(simtest.SecurityGroup2ID), Description: aws.String("db clients")}}},
		{IpProtocol: aws.String("icmp"), FromPort: aws.Int32(-1), ToPort: aws.Int32(-1), IpRanges: []types.IpRange{{CidrIp: aws.String("10.0.0.0/16")}}},
	}}))
	if !aws.ToBool(auth.Return) || len(auth.SecurityGroupRules) != 4 {
		t.Fatalf("authorize: return %v, %d rules, want 4", aws.ToBool(auth.Return), len(auth.SecurityGroupRules))
	}
	g = describeGroup(t, c, db)
	var tcpPerm *types.IpPermission
	for i, p := range g.IpPermissions {
		if aws.ToString(p.IpProtocol) == "tcp" {
			tcpPerm = &g.IpPermissions[i]
		}
	}
	if tcpPerm == nil || aws.ToInt32(tcpPerm.FromPort) != 5432 || len(tcpPerm.IpRanges) != 1 || len(tcpPerm.Ipv6Ranges) != 1 ||
		len(tcpPerm.UserIdGroupPairs) != 1 || aws.ToString(tcpPerm.UserIdGroupPairs[0].GroupId) != simtest.SecurityGroup2ID {
		t.Fatalf("tcp/5432 permission after authorize: %+v", tcpPerm)
	}

	// the same rule again is a duplicate; a missing one cannot be revoked
	_, err := c.AuthorizeSecurityGroupIngress(ctx(t), &ec2.AuthorizeSecurityGroupIngressInput{GroupId: aws.String(db), IpPermissions: []types.IpPermission{tcp(5432, "10.0.0.0/20")}})
	wantCode(t, err, "InvalidPermission.Duplicate")
	_, err = c.RevokeSecurityGroupIngress(ctx(t), &ec2.RevokeSecurityGroupIngressInput{GroupId: aws.String(db), IpPermissions: []types.IpPermission{tcp(5433, "10.0.0.0/20")}})
	wantCode(t, err, "InvalidPermission.NotFound")

	// revoke by permission and by rule id
	must[*ec2.RevokeSecurityGroupIngressOutput](t)(c.RevokeSecurityGroupIngress(ctx(t), &ec2.RevokeSecurityGroupIngressInput{GroupId: aws.String(db), IpPermissions: []types.IpPermission{tcp(5432, "10.0.0.0/20")}}))
	rules := must[*ec2.DescribeSecurityGroupRulesOutput](t)(c.DescribeSecurityGroupRules(ctx(t), &ec2.DescribeSecurityGroupRulesInput{
		Filters: []types.Filter{{Name: aws.String("group-id"), Values: []string{db}}}}))
	var icmp string
	ingress := 0
	for _, r := range rules.SecurityGroupRules {
		if !aws.ToBool(r.IsEgress) {
			ingress++
		}
		if aws.ToString(r.IpProtocol) == "icmp" {
			icmp = aws.ToString(r.SecurityGroupRuleId)
		}
	}
	if ingress != 3 || icmp == "" {
		t.Fatalf("after one revoke: %d ingress rules (want 3), icmp rule %q", ingress, icmp)
	}
	must[*ec2.RevokeSecurityGroupIngressOutput](t)(c.RevokeSecurityGroupIngress(ctx(t), &ec2.RevokeSecurityGroupIngressInput{GroupId: aws.String(db), SecurityGroupRuleIds: []string{icmp}}))
	_, err = c.RevokeSecurityGroupIngress(ctx(t), &ec2.RevokeSecurityGroupIngressInput{GroupId: aws.String(db), SecurityGroupRuleIds: []string{icmp}})
	wantCode(t, err, "InvalidSecurityGroupRuleId.NotFound")

	// egress: revoke the default, add one port
	must[*ec2.RevokeSecurityGroupEgressOutput](t)(c.RevokeSecurityGroupEgress(ctx(t), &ec2.RevokeSecurityGroupEgressInput{GroupId: aws.String(db), IpPermissions: []types.IpPermission{
		{IpProtocol: aws.String("-1"), IpRanges: []types.IpRange{{CidrIp: aws.String("0.0.0.0/0")}}, Ipv6Ranges: []types.Ipv6Range{{CidrIpv6: aws.String("::/0")}}}}}))
	must[*ec2.AuthorizeSecurityGroupEgressOutput](t)(c.AuthorizeSecurityGroupEgress(ctx(t), &ec2.AuthorizeSecurityGroupEgressInput{GroupId: aws.String(db), IpPermissions: []types.IpPermission{tcp(443, "0.0.0.0/0")}}))
	g = describeGroup(t, c, db)
	if len(g.IpPermissionsEgress) != 1 || aws.ToInt32(g.IpPermissionsEgress[0].ToPort) != 443 {
		t.Fatalf("egress after revoke+authorize: %+v", g.IpPermissionsEgress)
	}

	// the referenced group cannot go while referenced; db goes once unused
	_, err = c.DeleteSecurityGroup(ctx(t), &ec2.DeleteSecurityGroupInput{GroupId: aws.String(simtest.SecurityGroup2ID)})
	wantCode(t, err, "DependencyViolation")
	_, err = c.DeleteSecurityGroup(ctx(t), &ec2.DeleteSecurityGroupInput{GroupId: aws.String(simtest.SecurityGroupID)})
	wantCode(t, err, "CannotDelete")
	must[*ec2.DeleteSecurityGroupOutput](t)(c.DeleteSecurityGroup(ctx(t), &ec2.DeleteSecurityGroupInput{GroupId: aws.String(db)}))
	_, err = c.DescribeSecurityGroups(ctx(t), &ec2.DescribeSecurityGroupsInput{GroupIds: []string{db}})
	wantCode(t, err, "InvalidGroup.NotFound")
}

func TestSecurityGroupMisuseErrorCodes(t *testing.T) {
	env := simtest.Start(t, simtest.Basic())
	c := newEC2(env.EC2URL)
	sg := aws.String(simtest.SecurityGroup2ID)
	for _, tc := range []struct {
		name string
		perm types.IpPermission
		code string
	}{
		{"unknown protocol", types.IpPermission{IpProtocol: aws.String("tcpx"), IpRanges: []types.IpRange{{CidrIp: aws.String("10.0.0.0/8")}}}, "InvalidParameterValue"},
		{"port out of range", tcp(70000, "10.0.0.0/8"), "InvalidParameterValue"},
		{"reversed ports", types.IpPermission{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(90), ToPort: aws.Int32(80), IpRanges: []types.IpRange{{CidrIp: aws.String("10.0.0.0/8")}}}, "InvalidParameterValue"},
		{"tcp without ports", types.IpPermission{IpProtocol: aws.String("tcp"), IpRanges: []types.IpRange{{CidrIp: aws.String("10.0.0.0/8")}}}, "InvalidParameterValue"},
		{"bad CIDR", tcp(80, "10.0.0.0/33"), "InvalidParameterValue"},
		{"unknown referenced group", types.IpPermission{IpProtocol: aws.String("-1"), UserIdGroupPairs: []types.UserIdGroupPair{{GroupId: aws.String("sg-0123456789abcdef0")}}}, "InvalidGroup.NotFound"},
	} {
		_, err := c.AuthorizeSecurityGroupIngress(ctx(t), &ec2.AuthorizeSecurityGroupIngressInput{GroupId: sg, IpPermissions: []types.IpPermission{tc.perm}})
		if err == nil {
			t.Errorf("%s: authorized", tc.name)
			continue
		}
		wantCode(t, err, tc.code)
	}
	_, err := c.AuthorizeSecurityGroupIngress(ctx(t), &ec2.AuthorizeSecurityGroupIngressInput{GroupId: aws.String("sg-0123456789abcdef0"), IpPermissions: []types.IpPermission{tcp(80, "10.0.0.0/8")}})
	wantCode(t, err, "InvalidGroup.NotFound")
	_, err = c.AuthorizeSecurityGroupIngress(ctx(t), &ec2.AuthorizeSecurityGroupIngressInput{GroupId: aws.String("nope"), IpPermissions: []types.IpPermission{tcp(80, "10.0.0.0/8")}})
	wantCode(t, err, "InvalidGroupId.Malformed")
	_, err = c.CreateSecurityGroup(ctx(t), &ec2.CreateSecurityGroupInput{GroupName: aws.String("pods"), Description: aws.String("again"), VpcId: aws.String(simtest.VPCID)})
	wantCode(t, err, "InvalidGroup.Duplicate")
	_, err = c.CreateSecurityGroup(ctx(t), &ec2.CreateSecurityGroupInput{GroupName: aws.String("x"), Description: aws.String("x"), VpcId: aws.String("vpc-0123456789abcdef0")})
	wantCode(t, err, "InvalidVpcID.NotFound")
	// a group in use by an ENI cannot be deleted
	createENI(t, c, &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(simtest.NodeSubnetID), Groups: []string{simtest.SecurityGroup2ID}})
	_, err = c.DeleteSecurityGroup(ctx(t), &ec2.DeleteSecurityGroupInput{GroupId: sg})
	wantCode(t, err, "DependencyViolation")
}

// A scenario group without rules allows all traffic from the VPC and all
// traffic out, so worlds written before groups filtered keep working.
func TestScenarioGroupDefaults(t *testing.T) {
	env := simtest.Start(t, simtest.Basic())
	c := newEC2(env.EC2URL)
	g := describeGroup(t, c, simtest.SecurityGroupID)
	var in []string
	for _, p := range g.IpPermissions {
		if aws.ToString(p.IpProtocol) != "-1" {
			t.Fatalf("default ingress protocol %q", aws.ToString(p.IpProtocol))
		}
		for _, r := range p.IpRanges {
			in = append(in, aws.ToString(r.CidrIp))
		}
		for _, r := range p.Ipv6Ranges {
			in = append(in, aws.ToString(r.CidrIpv6))
		}
	}
	if len(in) != 3 || in[0] != "10.0.0.0/16" || in[1] != "100.64.0.0/16" || in[2] != "2600:1f14:abc:de00::/56" {
		t.Fatalf("default ingress sources %v, want the VPC's CIDRs", in)
	}
	if len(g.IpPermissionsEgress) != 1 || len(g.IpPermissionsEgress[0].IpRanges) != 1 || len(g.IpPermissionsEgress[0].Ipv6Ranges) != 1 {
		t.Fatalf("default egress %+v, want all traffic to 0.0.0.0/0 and ::/0", g.IpPermissionsEgress)
	}
}

func TestScenarioGroupRules(t *testing.T) {
	sc := simtest.Basic()
	sc.VPCs[0].SecurityGroups = append(sc.VPCs[0].SecurityGroups,
		// references a group listed after it
		vpcsim.SecurityGroupSpec{ID: "sg-000000000000000db", Name: "db", Ingress: []vpcsim.RuleSpec{
			{Protocol: "tcp", FromPort: aws.Int(5432), ToPort: aws.Int(5432), Group: "sg-000000000000000cc"}},
			Egress: []vpcsim.RuleSpec{{Protocol: "-1", CIDR: "0.0.0.0/0"}}},
		vpcsim.SecurityGroupSpec{ID: "sg-000000000000000cc", Name: "db-clients", Egress: []vpcsim.RuleSpec{}})
	env := simtest.Start(t, sc)
	c := newEC2(env.EC2URL)
	g := describeGroup(t, c, "sg-000000000000000db")
	if len(g.IpPermissions) != 1 || aws.ToString(g.IpPermissions[0].UserIdGroupPairs[0].GroupId) != "sg-000000000000000cc" || len(g.IpPermissionsEgress) != 1 {
		t.Fatalf("db rules: in %+v out %+v", g.IpPermissions, g.IpPermissionsEgress)
	}
	if cl := describeGroup(t, c, "sg-000000000000000cc"); len(cl.IpPermissions)+len(cl.IpPermissionsEgress) != 0 {
		t.Fatalf("a group given empty egress has rules: %+v %+v", cl.IpPermissions, cl.IpPermissionsEgress)
	}
	for name, r := range map[string]vpcsim.RuleSpec{
		"cidr and group":  {Protocol: "-1", CIDR: "10.0.0.0/8", Group: "sg-00000000000000001"},
		"bad protocol":    {Protocol: "tcpx", CIDR: "10.0.0.0/8"},
		"unknown group":   {Protocol: "-1", Group: "sg-00000000000000bad"},
		"malformed cidr":  {Protocol: "-1", CIDR: "10.0.0/8"},
		"ports for tcp":   {Protocol: "tcp", CIDR: "10.0.0.0/8"},
		"neither address": {Protocol: "-1"},
	} {
		bad := simtest.Basic()
		bad.VPCs[0].SecurityGroups[1].Ingress = []vpcsim.RuleSpec{r}
		_, err := vpcsim.New(bad)
		if err == nil || !strings.Contains(err.Error(), "securityGroups[1]") || !strings.Contains(err.Error(), "ingress[0]") {
			t.Errorf("%s: error %v, want one naming securityGroups[1] ingress[0]", name, err)
		}
	}
}

// GroupNames address the default VPC's groups only; a vpcsim world has no
// default VPC, so EC2 answers VPCIdNotSpecified even for a name a group in
// another VPC carries, and that group is found by the group-name filter.
func TestDescribeSecurityGroupsByNameNeedsTheDefaultVPC(t *testing.T) {
	env := simtest.Start(t, simtest.Basic())
	c := newEC2(env.EC2URL)
	must[*ec2.CreateSecurityGroupOutput](t)(c.CreateSecurityGroup(ctx(t), &ec2.CreateSecurityGroupInput{GroupName: aws.String("db"), Description: aws.String("database"), VpcId: aws.String(simtest.VPCID)}))
	for _, name := range []string{"db", "no-such-group"} {
		out, err := c.DescribeSecurityGroups(ctx(t), &ec2.DescribeSecurityGroupsInput{GroupNames: []string{name}})
		if err == nil {
			t.Errorf("GroupNames=[%s]: %d groups, want VPCIdNotSpecified", name, len(out.SecurityGroups))
			continue
		}
		wantCode(t, err, "VPCIdNotSpecified")
	}
	out := must[*ec2.DescribeSecurityGroupsOutput](t)(c.DescribeSecurityGroups(ctx(t), &ec2.DescribeSecurityGroupsInput{Filters: []types.Filter{{Name: aws.String("group-name"), Values: []string{"db"}}}}))
	if len(out.SecurityGroups) != 1 || aws.ToString(out.SecurityGroups[0].GroupName) != "db" {
		t.Fatalf("group-name filter: %+v, want the one group db", out.SecurityGroups)
	}
}
