package networkutils

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/vishvananda/netlink"
	"github.com/vpc-cni/vpc-cni/pkg/hostcontract"
)

func TestSubnetGateway(t *testing.T) {
	for in, want := range map[string]string{
		"10.0.1.0/24":          "10.0.1.1",
		"10.0.1.77/24":         "10.0.1.1", // not masked by the caller
		"100.64.128.0/17":      "100.64.128.1",
		"2600:1f14:aa:bb::/64": "fe80:ec2::1",
	} {
		if got := SubnetGateway(netip.MustParsePrefix(in)); got.String() != want {
			t.Errorf("SubnetGateway(%s) = %s, want %s", in, got, want)
		}
	}
	if got := SubnetGateway(netip.Prefix{}); got.IsValid() {
		t.Errorf("SubnetGateway(invalid) = %s, want the zero Addr", got)
	}
}

func TestValidateNamesTheBadInput(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*HostConfig)
		want string
	}{
		{"no MAC", func(c *HostConfig) { c.PrimaryMAC = nil }, "primary ENI MAC"},
		{"IPv6 VPC CIDR", func(c *HostConfig) { c.VPCCIDRs = prefixes("2600::/56") }, `VPC CIDRs: "2600::/56"`},
		{"IPv6 exclusion", func(c *HostConfig) { c.ExcludeSNATCIDRs = prefixes("fd00::/8") }, "AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS"},
		{"bad service CIDR", func(c *HostConfig) { c.ExternalServiceCIDRs = []netip.Prefix{{}} }, "AWS_EXTERNAL_SERVICE_CIDRS"},
		{"no SNAT source", func(c *HostConfig) { c.PrimaryIPv4 = netip.Addr{} }, "primary IPv4"},
		{"no VPC CIDRs", func(c *HostConfig) { c.VPCCIDRs = nil }, "no VPC CIDRs"},
		{"randomize", func(c *HostConfig) { c.RandomizeSNAT = "fully" }, `AWS_VPC_K8S_CNI_RANDOMIZESNAT "fully"`},
		{"empty veth prefix", func(c *HostConfig) { c.VethPrefix = "" }, "AWS_VPC_K8S_CNI_VETHPREFIX"},
		{"veth prefix wildcard", func(c *HostConfig) { c.VethPrefix = "eni+" }, `AWS_VPC_K8S_CNI_VETHPREFIX "eni+"`},
		{"MTU", func(c *HostConfig) { c.ENIMTU = 10000 }, "AWS_VPC_ENI_MTU 10000"},
		{"backend", func(c *HostConfig) { c.ConnmarkBackend = "ebpf" }, `connmark backend "ebpf"`},
		{"v6 egress in v6", func(c *HostConfig) { c.IPv6 = true; c.V6Egress = true }, "ENABLE_V6_EGRESS"},
	} {
		c := baseConfig()
		tc.mod(&c)
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Validate() = %v, want an error containing %q", tc.name, err, tc.want)
		}
	}
	if err := baseConfig().Validate(); err != nil {
		t.Errorf("valid config rejected: %v", err)
	}
	ext := baseConfig()
	ext.ExternalSNAT, ext.PrimaryIPv4, ext.VPCCIDRs = true, netip.Addr{}, nil
	if err := ext.Validate(); err != nil {
		t.Errorf("external SNAT needs neither SNAT source nor VPC CIDRs, got %v", err)
	}
}

func TestENIValidate(t *testing.T) {
	good := ENI{MAC: []byte{2, 0, 0, 0, 1, 1}, PrimaryIP: netip.MustParseAddr("10.0.1.20"), Subnet: netip.MustParsePrefix("10.0.1.0/24")}
	for _, tc := range []struct {
		card, dev int
		want      string // "" = accepted
	}{
		{0, 1, ""},
		{1, 0, ""}, // first ENI on card 1: table 10100
		{3, 0, ""},
		{0, 0, "primary ENI"},
		{0, -1, "device number -1"},
		{1, -1, "device number -1"},
		{-1, 1, "network card -1"},
	} {
		e := good
		e.NetworkCard, e.DeviceNumber = tc.card, tc.dev
		err := e.Validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("card %d device %d: Validate() = %v, want accepted", tc.card, tc.dev, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("card %d device %d: Validate() = %v, want an error containing %q", tc.card, tc.dev, err, tc.want)
		}
	}
}

func TestSplitRule(t *testing.T) {
	got, err := splitRule(`-A POSTROUTING -m comment --comment "AWS, SNAT \"x\"" -j AWS-SNAT-CHAIN-0`)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"-A", "POSTROUTING", "-m", "comment", "--comment", `AWS, SNAT "x"`, "-j", "AWS-SNAT-CHAIN-0"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("splitRule (-want +got):\n%s", diff)
	}
	if back := iptRule(got).String(); back != `-A POSTROUTING -m comment --comment "AWS, SNAT \"x\"" -j AWS-SNAT-CHAIN-0` {
		t.Errorf("round trip: %s", back)
	}
	for _, bad := range []string{`-A X "open`, `-A`} {
		if _, err := splitRule(bad); err == nil {
			t.Errorf("splitRule(%q) accepted", bad)
		}
	}
}

func TestOwnership(t *testing.T) {
	for spec, want := range map[string]bool{
		`-m comment --comment "AWS SNAT CHAIN" -j AWS-SNAT-CHAIN-0`:   true,
		`-m comment --comment "AWS, primary ENI" -i eth0 -j CONNMARK`: true,
		`-j AWS-SNAT-CHAIN-1`:             true, // old layout, no comment
		`-i eni+ -j AWS-CONNMARK-CHAIN-0`: true,
		`-d 169.254.172.0/22 -m comment --comment "Block Node Local Pod access via IPv4" -j REJECT`: true,
		`-s 192.0.2.99/32 -j RETURN`:                                                       false,
		`-m comment --comment "kube-proxy AWS-ish" -j KUBE-POSTROUTING`:                    false,
		`-m comment --comment "cilium: AWS" -j ACCEPT`:                                     false,
		`-s 192.0.2.98/32 -m comment --comment "AWS, something else" -j RETURN`:            false, // other AWS tooling
		`-m comment --comment "AWS SNAT CHAIN EXCLUSION" -j RETURN`:                        true,
		`-m comment --comment "AWS, CONNMARK" -j CONNMARK --restore-mark`:                  true,
		`-i eni+ -m comment --comment "AWS, outbound connections" -j AWS-CONNMARK-CHAIN-0`: true,
		`-m comment --comment "AWS, SNAT" -j SNAT --to-source 10.0.0.10`:                   true,
		`-m comment --comment "AWS CONNMARK CHAIN" -j RETURN`:                              true,
		`-m comment --comment "AWS, SNAT-ish" -j ACCEPT`:                                   false,
	} {
		toks, err := splitRule("-A X " + spec)
		if err != nil {
			t.Fatal(err)
		}
		if got := ownedRule(iptRule(toks[2:])); got != want {
			t.Errorf("ownedRule(%s) = %v, want %v", spec, got, want)
		}
	}
	for name, want := range map[string]bool{"AWS-SNAT-CHAIN-0": true, "AWS-CONNMARK-CHAIN-3": true, "KUBE-SERVICES": false, "AWS": false} {
		if got := ownedChain(name); got != want {
			t.Errorf("ownedChain(%s) = %v, want %v", name, got, want)
		}
	}

	strict := baseConfig()
	strict.PodENIStrict = true
	plain := desiredHost(baseConfig().withDefaults(), legacyEnv)
	st := desiredHost(strict.withDefaults(), legacyEnv)
	v4 := netlink.FAMILY_V4
	for _, tc := range []struct {
		s    hostState
		r    ruleSpec
		want bool
	}{
		{plain, ruleSpec{Family: v4, Priority: 1024, Mark: 0x40, Mask: 0x40, Table: hostcontract.MainTable}, true},
		{plain, ruleSpec{Family: v4, Priority: 1024, Src: netip.MustParsePrefix("192.0.2.99/32"), Table: hostcontract.MainTable}, false},
		{plain, ruleSpec{Family: v4, Priority: 1535, Dst: netip.MustParsePrefix("172.20.0.0/16"), Table: hostcontract.MainTable}, true},
		{plain, ruleSpec{Family: v4, Priority: 1535, Dst: netip.MustParsePrefix("172.20.0.0/16"), Table: 5}, false},
		{plain, ruleSpec{Family: v4, Priority: 0, Table: localTable}, false},
		{plain, ruleSpec{Family: v4, Priority: 20, Table: localTable}, false},
		{st, ruleSpec{Family: v4, Priority: 0, Table: localTable}, true},
		{st, ruleSpec{Family: v4, Priority: 20, Table: localTable}, true},
		{st, ruleSpec{Family: v4, Priority: 512, Dst: netip.MustParsePrefix("10.0.1.5/32"), Table: hostcontract.MainTable}, false},
	} {
		if got := tc.s.ownedIPRule(tc.r); got != tc.want {
			t.Errorf("strict=%v ownedIPRule(%s) = %v, want %v", tc.s.StrictLocal, tc.r, got, tc.want)
		}
	}
}
