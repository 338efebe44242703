package networkutils

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vpc-cni/vpc-cni/pkg/hostcontract"
)

// Chain names, comments and addresses shared with upstream: a node must be
// able to move between upstream and vpc-cni with its rules in place.
const (
	snatChain     = "AWS-SNAT-CHAIN-0"
	connmarkChain = "AWS-CONNMARK-CHAIN-0"

	snatChainPrefix     = "AWS-SNAT-CHAIN"
	connmarkChainPrefix = "AWS-CONNMARK-CHAIN"

	commentSNATChain     = "AWS SNAT CHAIN"
	commentSNATExclusion = "AWS SNAT CHAIN EXCLUSION"
	commentSNAT          = "AWS, SNAT"
	commentPrimaryENI    = "AWS, primary ENI"
	commentOutbound      = "AWS, outbound connections"
	commentConnmark      = "AWS, CONNMARK"
	commentConnmarkChain = "AWS CONNMARK CHAIN"
	commentBlockV4       = "Block Node Local Pod access via IPv4"
	commentBlockV6       = "Block Node Local Pod access via IPv6"

	nftTable           = "aws-cni"
	nftBaseChain       = "nat-prerouting"
	nftMarkChain       = "snat-mark"
	nftBaseChainPrio   = -90 // dstnat+10: after kube-proxy's DNAT
	icmpv6Proto        = 58
	v4EgressRange      = "169.254.172.0/22"
	v6EgressRange      = "fd00::ac:0/118"
	ipv6LinkLocalRoute = "fe80:ec2::1/128"
)

// hostEnv holds the facts about the node the desired state depends on,
// gathered before planning so that planning stays pure.
type hostEnv struct {
	PrimaryLink string          // name of the link carrying the primary MAC
	RandomFully bool            // iptables supports --random-fully
	Backend     ConnmarkBackend // resolved connmark backend (never auto)
}

// hostState is the complete state ReconcileHost owns.
type hostState struct {
	PrimaryLink string
	PrimaryMTU  int
	Rules       []ruleSpec // owned ip rules that must exist
	AbsentRules []ruleSpec // rules that must not exist (the priority-0 local rule in strict mode)
	StrictLocal bool       // the relocated local rules are owned
	IPv4        iptState   // iptables
	IPv6        iptState   // ip6tables
	NFT         *nftState  // nil: table `ip aws-cni` must not exist
}

// iptState is the owned part of one iptables family.
type iptState struct {
	Chains []iptChain // owned chains: exactly these rules, in order
	Shared []iptChain // built-in chains: only our rules, in this relative order
}

type iptChain struct {
	Table, Name string
	Top         bool // shared chain whose rules sit at the top (inserted at 1)
	Rules       []iptRule
}

// iptRule is a rule spec as `iptables -S` prints it (without "-A CHAIN"),
// so that specs read back from the kernel compare equal token by token.
type iptRule []string

func (r iptRule) String() string {
	var b strings.Builder
	for i, t := range r {
		if i > 0 {
			b.WriteByte(' ')
		}
		if t == "" || strings.ContainsAny(t, " \t\"") {
			b.WriteString(`"` + strings.ReplaceAll(t, `"`, `\"`) + `"`)
		} else {
			b.WriteString(t)
		}
	}
	return b.String()
}

// nftState describes table `ip aws-cni`.
type nftState struct {
	VethPrefix string
	Mark       uint32
	Exempt     []netip.Prefix
}

// desiredHost computes the host state cfg asks for. cfg must be validated
// and defaulted.
func desiredHost(cfg HostConfig, env hostEnv) hostState {
	s := hostState{PrimaryLink: env.PrimaryLink, PrimaryMTU: cfg.ENIMTU}
	mark := cfg.Connmark
	fam := netlink.FAMILY_V4
	if cfg.IPv6 {
		fam = netlink.FAMILY_V6
	}

	// ip rules
	if cfg.NodePortSupport || !cfg.ExternalSNAT {
		s.Rules = append(s.Rules, ruleSpec{Family: fam, Priority: hostcontract.PriorityFwmark, Mark: mark, Mask: mark, Table: hostcontract.MainTable})
	}
	for _, p := range cfg.ExternalServiceCIDRs {
		if p.Bits() == 0 {
			// The kernel keeps a /0 destination as none and reads it
			// back so: want it that way, or it never compares equal.
			p = netip.Prefix{}
		}
		s.Rules = append(s.Rules, ruleSpec{Family: netlink.FAMILY_V4, Priority: hostcontract.PriorityExternalService, Dst: p, Table: hostcontract.MainTable})
	}
	if cfg.PodENIStrict {
		s.StrictLocal = true
		s.Rules = append(s.Rules, ruleSpec{Family: fam, Priority: hostcontract.PriorityLocal, Table: localTable})
		s.AbsentRules = append(s.AbsentRules, ruleSpec{Family: fam, Priority: 0, Table: localTable})
		if cfg.IPv6 {
			// Branch interfaces must still resolve their gateway.
			s.Rules = append(s.Rules, ruleSpec{Family: fam, Priority: 0, Src: netip.MustParsePrefix(ipv6LinkLocalRoute), IPProto: icmpv6Proto, Table: localTable})
		}
	}

	// The mangle rules that make NodePort replies and pod traffic restore
	// their connmark; they live in the cluster's family.
	var mangle []iptRule
	m := fmt.Sprintf("%#x", mark)
	if cfg.NodePortSupport {
		mangle = append(mangle, iptRule{"-i", env.PrimaryLink, "-m", "comment", "--comment", commentPrimaryENI,
			"-m", "addrtype", "--dst-type", "LOCAL", "--limit-iface-in", "-j", "CONNMARK", "--set-xmark", m + "/" + m})
	}
	if cfg.NodePortSupport || !cfg.ExternalSNAT {
		mangle = append(mangle, iptRule{"-i", cfg.VethPrefix + "+", "-m", "comment", "--comment", commentPrimaryENI,
			"-j", "CONNMARK", "--restore-mark", "--nfmask", m, "--ctmask", m})
	}
	if cfg.NodePortSupport {
		mangle = append(mangle, iptRule{"-i", "vlan+", "-m", "comment", "--comment", commentPrimaryENI,
			"-j", "CONNMARK", "--restore-mark", "--nfmask", m, "--ctmask", m})
	}

	var forward4, forward6, post, pre []iptRule
	if cfg.IPv6 {
		forward4 = append(forward4, blockRule(v4EgressRange, commentBlockV4, "icmp-port-unreachable"))
	} else if cfg.V6Egress {
		forward6 = append(forward6, blockRule(v6EgressRange, commentBlockV6, "icmp6-port-unreachable"))
	}

	if !cfg.IPv6 {
		// SNAT: the chain stays (empty) with external SNAT, as upstream leaves it.
		snat := iptChain{Table: "nat", Name: snatChain}
		exempt := slices.Concat(cfg.VPCCIDRs, cfg.ExcludeSNATCIDRs)
		if !cfg.ExternalSNAT {
			post = append(post, iptRule{"-m", "comment", "--comment", commentSNATChain, "-j", snatChain})
			var returns []iptRule
			for _, p := range cfg.VPCCIDRs {
				returns = append(returns, returnRule(p, commentSNATChain))
			}
			for _, p := range cfg.ExcludeSNATCIDRs {
				returns = append(returns, returnRule(p, commentSNATExclusion))
			}
			// Upstream inserts each RETURN at position 1, so they read reversed.
			slices.Reverse(returns)
			snat.Rules = append(returns, snatRule(cfg, env))
		}
		s.IPv4.Chains = append(s.IPv4.Chains, snat)

		switch {
		case cfg.ExternalSNAT:
		case env.Backend == ConnmarkIPTables:
			pre = append(pre,
				iptRule{"-i", cfg.VethPrefix + "+", "-m", "comment", "--comment", commentOutbound, "-j", connmarkChain},
				iptRule{"-m", "comment", "--comment", commentConnmark, "-j", "CONNMARK", "--restore-mark", "--nfmask", m, "--ctmask", m})
			cm := iptChain{Table: "nat", Name: connmarkChain}
			for _, p := range normalizePrefixes(exempt) {
				cm.Rules = append(cm.Rules, returnRule(p, commentConnmarkChain))
			}
			slices.Reverse(cm.Rules)
			cm.Rules = append(cm.Rules, iptRule{"-m", "comment", "--comment", commentConnmark, "-j", "CONNMARK", "--set-xmark", m + "/" + m})
			s.IPv4.Chains = append(s.IPv4.Chains, cm)
		case env.Backend == ConnmarkNFTables:
			s.NFT = &nftState{VethPrefix: cfg.VethPrefix, Mark: mark, Exempt: normalizePrefixes(exempt)}
		}
	}

	mangle4, mangle6 := mangle, []iptRule(nil)
	if cfg.IPv6 {
		mangle4, mangle6 = nil, mangle
	}
	// Every shared chain is listed, even with no rules wanted, so that stale
	// rules of ours in it are found and removed.
	s.IPv4.Shared = []iptChain{
		{Table: "mangle", Name: "PREROUTING", Rules: mangle4},
		{Table: "nat", Name: "PREROUTING", Rules: pre},
		{Table: "nat", Name: "POSTROUTING", Rules: post},
		{Table: "filter", Name: "FORWARD", Top: true, Rules: forward4},
	}
	s.IPv6.Shared = []iptChain{
		{Table: "mangle", Name: "PREROUTING", Rules: mangle6},
		{Table: "filter", Name: "FORWARD", Top: true, Rules: forward6},
	}
	return s
}

func blockRule(dst, comment, with string) iptRule {
	return iptRule{"-d", dst, "-m", "conntrack", "--ctstate", "NEW", "-m", "comment", "--comment", comment, "-j", "REJECT", "--reject-with", with}
}

// returnRule is a RETURN for dst; 0.0.0.0/0 is written without -d.
func returnRule(dst netip.Prefix, comment string) iptRule {
	if dst.Bits() == 0 {
		return iptRule{"-m", "comment", "--comment", comment, "-j", "RETURN"}
	}
	return iptRule{"-d", dst.String(), "-m", "comment", "--comment", comment, "-j", "RETURN"}
}

func snatRule(cfg HostConfig, env hostEnv) iptRule {
	r := iptRule{"!", "-o", "vlan+", "-m", "comment", "--comment", commentSNAT, "-m", "addrtype", "!", "--dst-type", "LOCAL",
		"-j", "SNAT", "--to-source", cfg.PrimaryIPv4.String()}
	switch cfg.RandomizeSNAT {
	case RandomizePRNG:
		if env.RandomFully {
			return append(r, "--random-fully")
		}
		return append(r, "--random")
	case RandomizeHashRandom:
		return append(r, "--random")
	}
	return r
}

// ownedChain reports whether a user chain belongs to us.
func ownedChain(name string) bool {
	return strings.HasPrefix(name, snatChainPrefix) || strings.HasPrefix(name, connmarkChainPrefix)
}

// ownedComments are the comments we (and upstream) write on rules in
// shared chains. Only these mark a rule as ours: other AWS tooling writes
// "AWS…" comments too, and its rules are not ours to delete.
var ownedComments = map[string]bool{
	commentSNATChain:     true,
	commentSNATExclusion: true,
	commentSNAT:          true,
	commentPrimaryENI:    true,
	commentOutbound:      true,
	commentConnmark:      true,
	commentConnmarkChain: true,
	commentBlockV4:       true,
	commentBlockV6:       true,
}

// ownedRule reports whether a rule found in a shared chain belongs to us:
// it carries exactly one of our comments or jumps to one of our chains.
func ownedRule(r iptRule) bool {
	for i := 0; i+1 < len(r); i++ {
		switch r[i] {
		case "--comment":
			if ownedComments[r[i+1]] {
				return true
			}
		case "-j", "-g":
			if ownedChain(r[i+1]) {
				return true
			}
		}
	}
	return false
}

// ownedIPRule reports whether the kernel rule r is ours to delete when it is
// not desired.
func (s hostState) ownedIPRule(r ruleSpec) bool {
	plain := !r.Src.IsValid() && r.IPProto == 0 && r.IifName == "" && r.OifName == "" && !r.Invert
	switch {
	case r.Priority == hostcontract.PriorityFwmark && plain && r.Mark != 0 && r.Mark == r.Mask && !r.Dst.IsValid() &&
		r.Table == hostcontract.MainTable:
		// `fwmark <mark>/<mark> lookup main`, whatever the mark: an
		// earlier AWS_VPC_K8S_CNI_CONNMARK's rule goes. Other fwmark
		// rules at 1024 (another table, a partial mask, a selector)
		// belong to other software.
		return true
	case r.Priority == hostcontract.PriorityExternalService && r.Table == hostcontract.MainTable && plain && r.Mark == 0:
		// `to <cidr> lookup main`, or with 0.0.0.0/0 just `lookup main`.
		return true
	}
	if s.StrictLocal {
		return slices.Contains(s.Rules, r) || slices.Contains(s.AbsentRules, r)
	}
	return false
}

// String renders the state as text, for tests and debug logs.
func (s hostState) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "link %s mtu %d\n", s.PrimaryLink, s.PrimaryMTU)
	for _, r := range s.Rules {
		fmt.Fprintf(&b, "rule %s\n", r)
	}
	for _, r := range s.AbsentRules {
		fmt.Fprintf(&b, "no rule %s\n", r)
	}
	for _, f := range []struct {
		name string
		st   iptState
	}{{"iptables", s.IPv4}, {"ip6tables", s.IPv6}} {
		for _, c := range f.st.Shared {
			if len(c.Rules) == 0 {
				continue
			}
			where := "appended"
			if c.Top {
				where = "at top"
			}
			fmt.Fprintf(&b, "%s -t %s %s (shared, ours %s):\n", f.name, c.Table, c.Name, where)
			for _, r := range c.Rules {
				fmt.Fprintf(&b, "  %s\n", r)
			}
		}
		for _, c := range f.st.Chains {
			fmt.Fprintf(&b, "%s -t %s -N %s:\n", f.name, c.Table, c.Name)
			for _, r := range c.Rules {
				fmt.Fprintf(&b, "  %s\n", r)
			}
		}
	}
	if s.NFT != nil {
		b.WriteString(s.NFT.String())
	}
	return b.String()
}

// String renders the table the way `nft list table ip aws-cni` shows it.
func (t nftState) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "table ip %s {\n", nftTable)
	fmt.Fprintf(&b, "  chain %s {\n    type nat hook prerouting priority %d; policy accept;\n", nftBaseChain, nftBaseChainPrio)
	fmt.Fprintf(&b, "    fib daddr type local return\n")
	fmt.Fprintf(&b, "    iifname \"%s*\" counter jump %s\n", t.VethPrefix, nftMarkChain)
	fmt.Fprintf(&b, "    counter meta mark set ct mark & %#x\n  }\n", t.Mark)
	fmt.Fprintf(&b, "  chain %s {\n", nftMarkChain)
	for _, p := range t.Exempt {
		fmt.Fprintf(&b, "    counter ip daddr %s return\n", p)
	}
	fmt.Fprintf(&b, "    counter ct mark set ct mark | %#x\n  }\n}\n", t.Mark)
	return b.String()
}
