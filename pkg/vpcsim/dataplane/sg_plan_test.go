package dataplane

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
)

func TestPlanSGRendersRulesPerENI(t *testing.T) {
	p := netip.MustParsePrefix
	sec := vpcsim.SecurityGroupsChanged{
		Groups: []vpcsim.SecurityGroupView{
			{ID: "sg-web", Rules: []vpcsim.SecurityGroupRuleView{
				{Protocol: "tcp", FromPort: 80, ToPort: 443, CIDR: p("10.0.0.0/16")},
				{Protocol: "icmp", FromPort: 8, ToPort: -1, Group: "sg-web"},
				{Protocol: "icmpv6", FromPort: -1, ToPort: -1, CIDR: p("::/0")},
				{Protocol: "udp", FromPort: 0, ToPort: 65535, Group: "sg-empty"},
				{Protocol: "-1", Egress: true, CIDR: p("0.0.0.0/0")},
			}},
			{ID: "sg-empty"},
		},
		ENIs: []vpcsim.ENISecurity{
			{ENIID: "eni-1", Groups: []string{"sg-web"}, Addresses: []netip.Prefix{p("10.0.1.5/32"), p("10.0.1.16/28"), p("10.0.1.17/32")}},
			{ENIID: "eni-2", Groups: []string{"sg-empty"}},
		},
	}
	plan := planSG(sec, []sgPort{{eniID: "eni-2", link: "n1-eth1"}, {eniID: "eni-1", link: "n1-eth0"}, {eniID: "eni-unknown", link: "n2-eth0"}}, []string{"in_eni_gone"})
	s := plan.script
	for _, want := range []string{
		"delete chain inet vpcsim-sg in_eni_gone",
		`iifname "n1-eth0" jump out_eni_1`,
		`oifname "n1-eth1" jump in_eni_2`,
		"ip saddr 10.0.0.0/16 tcp dport 80-443 return",
		// members, the /32 inside the /28 folded away (nft refuses overlaps)
		"ip saddr { 10.0.1.16/28, 10.0.1.5/32 } meta l4proto icmp icmp type 8 return",
		"ip6 saddr ::/0 meta l4proto ipv6-icmp return",
		"ip daddr 0.0.0.0/0 return",
		"counter name drop_in_eni_2 drop",
		"ct state established,related accept",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("plan lacks %q:\n%s", want, s)
		}
	}
	for _, bad := range []string{"n2-eth0", "meta l4proto udp"} {
		if strings.Contains(s, bad) {
			t.Errorf("plan has %q (an ENI EC2 does not know / a group without members):\n%s", bad, s)
		}
	}
	// the established rule comes before any jump: groups are stateful
	if strings.Index(s, "ct state established") > strings.Index(s, "jump") {
		t.Errorf("jumps precede the conntrack rule:\n%s", s)
	}
	if len(plan.chains) != 4 {
		t.Errorf("chains %v, want in/out for the two known ENIs", plan.chains)
	}
}
