package networkutils

import (
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/containernetworking/plugins/pkg/ns"

	"github.com/vpc-cni/vpc-cni/pkg/testutil"
)

// transitionConfigs are the configurations an ipamd may restart with on a
// node that ran another of them before.
func transitionConfigs(t *testing.T) map[string]HostConfig {
	base := stateConfig(t, "iptables-nft", ConnmarkAuto)
	base.ExcludeSNATCIDRs = prefixes("203.0.113.0/24", "198.51.100.0/24")
	base.ENIMTU = 1500
	out := map[string]HostConfig{"base": base}
	add := func(name string, f func(c *HostConfig)) {
		c := base
		f(&c)
		out[name] = c
	}
	add("legacy", func(c *HostConfig) { c.IPTablesPath = "iptables-legacy" })
	add("legacy-external-snat", func(c *HostConfig) { c.IPTablesPath, c.ExternalSNAT = "iptables-legacy", true })
	add("iptables-connmark", func(c *HostConfig) { c.ConnmarkBackend = ConnmarkIPTables })
	add("external-snat", func(c *HostConfig) { c.ExternalSNAT = true })
	add("no-nodeport", func(c *HostConfig) { c.NodePortSupport = false })
	add("external-snat-no-nodeport", func(c *HostConfig) { c.ExternalSNAT, c.NodePortSupport = true, false })
	add("connmark-0x100", func(c *HostConfig) { c.Connmark = 0x100 })
	add("exclude-shrunk", func(c *HostConfig) { c.ExcludeSNATCIDRs = prefixes("203.0.113.0/24") })
	add("veth-prefix", func(c *HostConfig) { c.VethPrefix = "abc" })
	add("no-random", func(c *HostConfig) { c.RandomizeSNAT = RandomizeNone })
	add("service-cidrs", func(c *HostConfig) { c.ExternalServiceCIDRs = prefixes("172.20.0.0/16") })
	add("v6-egress", func(c *HostConfig) { c.V6Egress = true })
	add("strict", func(c *HostConfig) { c.PodENIStrict = true })
	add("ipv6", func(c *HostConfig) {
		c.IPv6, c.PrimaryIPv4, c.VPCCIDRs, c.ExcludeSNATCIDRs = true, netip.Addr{}, nil, nil
	})
	ipv6 := out["ipv6"]
	ipv6.IPTablesPath = "iptables-legacy"
	out["ipv6-legacy"] = ipv6
	return out
}

var (
	saveCounters = regexp.MustCompile(`\[\d+:\d+\]`)
	nftCounters  = regexp.MustCompile(`counter packets \d+ bytes \d+`)
	builtinChain = regexp.MustCompile(`^:(PREROUTING|INPUT|FORWARD|OUTPUT|POSTROUTING) ACCEPT`)
)

// hostSnapshot is every piece of host state ReconcileHost may touch, in
// both iptables flavours, normalised so that two nodes compare equal.
func hostSnapshot(t *testing.T, node ns.NetNS) string {
	t.Helper()
	var b strings.Builder
	for _, bin := range []string{"iptables-legacy-save", "iptables-nft-save", "ip6tables-legacy-save", "ip6tables-nft-save"} {
		fmt.Fprintf(&b, "== %s\n", bin)
		for _, l := range strings.Split(sh(t, node, bin), "\n") {
			// Tables and built-in chains iptables creates on first use
			// are not state; user chains and rules are.
			if strings.HasPrefix(l, "#") || strings.HasPrefix(l, "*") || l == "" || l == "COMMIT" ||
				builtinChain.MatchString(l) {
				continue
			}
			b.WriteString(saveCounters.ReplaceAllString(l, "[]") + "\n")
		}
	}
	// The iptables-nft tables are in the *-nft-save output already.
	if strings.Contains(sh(t, node, "nft", "list", "tables"), "table ip "+nftTable+"\n") {
		b.WriteString("== nft\n")
		b.WriteString(nftCounters.ReplaceAllString(sh(t, node, "nft", "list", "table", "ip", nftTable), "counter"))
	}
	b.WriteString("== rules\n")
	b.WriteString(sh(t, node, "ip", "-4", "rule"))
	b.WriteString(sh(t, node, "ip", "-6", "rule"))
	return b.String()
}

// TestPrivilegedHostTransitions: a node reconciled with one configuration
// and then another ends up exactly as a fresh node reconciled with the
// second one: no stale SNAT, connmark or rule of the first survives.
func TestPrivilegedHostTransitions(t *testing.T) {
	testutil.Privileged(t)
	cfgs := transitionConfigs(t)
	names := make([]string, 0, len(cfgs))
	for n := range cfgs {
		names = append(names, n)
	}
	slices.Sort(names)
	fresh := map[string]string{}
	for _, to := range names {
		node := newNode(t)
		reconcileIn(t, node, cfgs[to])
		fresh[to] = hostSnapshot(t, node)
	}
	// Every configuration from and to base, and every pair among those
	// that move state between backends, flavours and families.
	movers := []string{"base", "legacy", "iptables-connmark", "external-snat", "ipv6", "ipv6-legacy"}
	for _, from := range names {
		for _, to := range names {
			if from == to || from != "base" && to != "base" && !(slices.Contains(movers, from) && slices.Contains(movers, to)) {
				continue
			}
			if from == "strict" {
				// Deliberate: the local rule stays at priority 20 when
				// strict mode is turned off (TestPrivilegedHostRules).
				continue
			}
			t.Run(from+"->"+to, func(t *testing.T) {
				node := newNode(t)
				reconcileIn(t, node, cfgs[from])
				reconcileIn(t, node, cfgs[to])
				if got := hostSnapshot(t, node); got != fresh[to] {
					t.Errorf("after %s then %s the node differs from a fresh %s node:\n%s", from, to, to, lineDiff(fresh[to], got))
				}
			})
		}
	}
}

// lineDiff lists the lines only in want (-) and only in got (+).
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	for _, l := range w {
		if !slices.Contains(g, l) {
			b.WriteString("- " + l + "\n")
		}
	}
	for _, l := range g {
		if !slices.Contains(w, l) {
			b.WriteString("+ " + l + "\n")
		}
	}
	if b.Len() == 0 {
		return "(same lines, different order)\n" + got
	}
	return b.String()
}
