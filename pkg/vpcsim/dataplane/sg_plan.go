package dataplane

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
)

// sgTable is the VPC namespace's nftables table that enforces security
// groups (docs/compatibility.md, "Security groups for pods").
const sgTable = "vpcsim-sg"

// sgPort is one plugged ENI as the security plan sees it.
type sgPort struct {
	eniID string
	link  string // VPC-side link name
}

// sgPlan is the rendered table: the nft script and the chains it defines.
type sgPlan struct {
	script string
	chains []string
}

// nftName makes an ENI id usable in chain and counter names.
func nftName(s string) string { return strings.ReplaceAll(s, "-", "_") }

func dropCounter(eniID string, egress bool) string {
	if egress {
		return "drop_out_" + nftName(eniID)
	}
	return "drop_in_" + nftName(eniID)
}

// planSG renders the whole security-group table (pure). Each plugged ENI
// gets an egress chain (packets it sends: iif is its link) and an ingress
// chain (packets to it: oif is its link); a packet no rule of the ENI's
// groups allows hits the chain's last rule, which counts and drops it.
// Established and related packets pass first, which makes groups stateful.
// stale lists chains of an earlier plan that must go.
func planSG(sec vpcsim.SecurityGroupsChanged, ports []sgPort, stale []string) sgPlan {
	groups := map[string]vpcsim.SecurityGroupView{}
	for _, g := range sec.Groups {
		groups[g.ID] = g
	}
	member4, member6 := map[string][]netip.Prefix{}, map[string][]netip.Prefix{}
	eniGroups := map[string][]string{}
	for _, e := range sec.ENIs {
		eniGroups[e.ENIID] = e.Groups
		for _, g := range e.Groups {
			for _, a := range e.Addresses {
				if a.Addr().Is4() {
					member4[g] = append(member4[g], a)
				} else {
					member6[g] = append(member6[g], a)
				}
			}
		}
	}
	sort.Slice(ports, func(i, j int) bool { return ports[i].eniID < ports[j].eniID })
	var b strings.Builder
	var chains []string
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	w("add table inet %s", sgTable)
	w("flush table inet %s", sgTable)
	for _, c := range stale {
		w("delete chain inet %s %s", sgTable, c)
	}
	w("table inet %s {", sgTable)
	for _, p := range ports {
		if _, ok := eniGroups[p.eniID]; !ok {
			continue // not known to EC2 (yet): unfiltered
		}
		w("\tcounter %s { }", dropCounter(p.eniID, false))
		w("\tcounter %s { }", dropCounter(p.eniID, true))
	}
	// IMDS and the EC2 endpoint are link-local services no group filters.
	w("\tchain forward {\n\t\ttype filter hook forward priority filter; policy accept;")
	w("\t\tct state established,related accept")
	var jumps []string
	for _, p := range ports {
		if _, ok := eniGroups[p.eniID]; !ok {
			continue
		}
		out, in := "out_"+nftName(p.eniID), "in_"+nftName(p.eniID)
		chains = append(chains, out, in)
		w("\t\tiifname %q jump %s", p.link, out)
		w("\t\toifname %q jump %s", p.link, in)
		jumps = append(jumps, fmt.Sprintf("\t\tiifname %q jump %s", p.link, out))
	}
	w("\t}")
	// Traffic to addresses served by the VPC namespace itself (an in-VPC
	// echo server, say) leaves the ENI: its egress rules apply.
	w("\tchain input {\n\t\ttype filter hook input priority filter; policy accept;")
	w("\t\tct state established,related accept")
	w("\t\tip daddr 169.254.0.0/16 accept")
	for _, j := range jumps {
		w("%s", j)
	}
	w("\t}")
	for _, p := range ports {
		gs, ok := eniGroups[p.eniID]
		if !ok {
			continue
		}
		for _, egress := range []bool{true, false} {
			name := "in_" + nftName(p.eniID)
			if egress {
				name = "out_" + nftName(p.eniID)
			}
			w("\tchain %s {", name)
			for _, gid := range gs {
				for _, r := range groups[gid].Rules {
					if r.Egress != egress {
						continue
					}
					for _, m := range ruleMatches(r, egress, member4, member6) {
						w("\t\t%s return", m)
					}
				}
			}
			w("\t\tcounter name %s drop", dropCounter(p.eniID, egress))
			w("\t}")
		}
	}
	w("}")
	return sgPlan{script: b.String(), chains: chains}
}

// ruleMatches renders one rule as nft matches, one per address family it
// covers; none when it can match nothing (a group without members).
func ruleMatches(r vpcsim.SecurityGroupRuleView, egress bool, member4, member6 map[string][]netip.Prefix) []string {
	dir := "saddr"
	if egress {
		dir = "daddr"
	}
	var addrs []string
	switch {
	case r.Group != "":
		if s := nftSet(member4[r.Group]); s != "" {
			addrs = append(addrs, "ip "+dir+" "+s)
		}
		if s := nftSet(member6[r.Group]); s != "" {
			addrs = append(addrs, "ip6 "+dir+" "+s)
		}
	case r.CIDR.Addr().Is4():
		addrs = append(addrs, "ip "+dir+" "+r.CIDR.String())
	case r.CIDR.IsValid():
		addrs = append(addrs, "ip6 "+dir+" "+r.CIDR.String())
	}
	var out []string
	for _, a := range addrs {
		v6 := strings.HasPrefix(a, "ip6 ")
		p, ok := protoMatch(r, v6)
		if !ok {
			continue
		}
		out = append(out, strings.TrimSpace(a+" "+p))
	}
	return out
}

// protoMatch renders protocol and ports; ok=false when the protocol cannot
// occur in this family (ICMP over IPv6, ICMPv6 over IPv4).
func protoMatch(r vpcsim.SecurityGroupRuleView, v6 bool) (string, bool) {
	switch r.Protocol {
	case "-1":
		return "", true
	case "tcp", "udp":
		if r.FromPort <= 0 && r.ToPort >= 65535 {
			return "meta l4proto " + r.Protocol, true
		}
		if r.FromPort == r.ToPort {
			return fmt.Sprintf("%s dport %d", r.Protocol, r.FromPort), true
		}
		return fmt.Sprintf("%s dport %d-%d", r.Protocol, r.FromPort, r.ToPort), true
	case "icmp", "icmpv6":
		if (r.Protocol == "icmp") == v6 {
			return "", false
		}
		kw, l4 := "icmp", "icmp"
		if v6 {
			kw, l4 = "icmpv6", "ipv6-icmp"
		}
		s := "meta l4proto " + l4
		if r.FromPort >= 0 {
			s += fmt.Sprintf(" %s type %d", kw, r.FromPort)
			if r.ToPort >= 0 {
				s += fmt.Sprintf(" %s code %d", kw, r.ToPort)
			}
		}
		return s, true
	}
	return "meta l4proto " + r.Protocol, true
}

// nftSet renders prefixes as an anonymous set, dropping any prefix another
// one covers (nft refuses overlapping intervals).
func nftSet(ps []netip.Prefix) string {
	if len(ps) == 0 {
		return ""
	}
	sort.Slice(ps, func(i, j int) bool {
		if ps[i].Bits() != ps[j].Bits() {
			return ps[i].Bits() < ps[j].Bits()
		}
		return ps[i].Addr().Less(ps[j].Addr())
	})
	var keep []string
	var kept []netip.Prefix
	for _, p := range ps {
		p = p.Masked()
		covered := false
		for _, k := range kept {
			if k.Bits() <= p.Bits() && k.Contains(p.Addr()) {
				covered = true
				break
			}
		}
		if !covered {
			kept = append(kept, p)
			keep = append(keep, p.String())
		}
	}
	return "{ " + strings.Join(keep, ", ") + " }"
}
