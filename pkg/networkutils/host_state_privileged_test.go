package networkutils

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/google/go-cmp/cmp"
	"github.com/vishvananda/netlink"

	"github.com/vpc-cni/vpc-cni/pkg/testutil"
)

// newNode returns a namespace holding only the primary ENI (eth0, its peer
// in a second namespace), enough for state-only reconcile tests.
func newNode(t *testing.T) ns.NetNS {
	t.Helper()
	node, peer := testutil.NewNS(t), testutil.NewNS(t)
	veth(t, node, "eth0", primaryMAC, []string{nodeIP + "/24"}, peer, "vpc-eth0", nil)
	return node
}

func stateConfig(t *testing.T, path string, backend ConnmarkBackend) HostConfig {
	return HostConfig{
		PrimaryMAC:      mustMAC(t, primaryMAC),
		PrimaryIPv4:     netip.MustParseAddr(nodeIP),
		VPCCIDRs:        prefixes("10.0.0.0/16"),
		VethPrefix:      "eni",
		NodePortSupport: true,
		IPTablesPath:    path,
		ConnmarkBackend: backend,
	}
}

func reconcileIn(t *testing.T, node ns.NetNS, cfg HostConfig) HostResult {
	t.Helper()
	var res HostResult
	do(t, node, func() error {
		var err error
		res, err = New(nil).ReconcileHost(context.Background(), cfg)
		return err
	})
	return res
}

func TestPrivilegedHostRules(t *testing.T) {
	node := newNode(t)
	cfg := stateConfig(t, "iptables-nft", ConnmarkNFTables)
	cfg.PodENIStrict = true
	cfg.ENIMTU = 9001
	cfg.ExternalServiceCIDRs = prefixes("172.20.0.0/16", "172.21.0.1/32")
	// A stale service CIDR rule from an earlier config, and a foreign rule.
	sh(t, node, "ip", "rule", "add", "to", "172.22.0.0/16", "lookup", "main", "priority", "1535")
	sh(t, node, "ip", "rule", "add", "from", "192.0.2.99", "lookup", "main", "priority", "1535")

	reconcileIn(t, node, cfg)
	want := []string{
		"ipv4 20: from all lookup local",
		"ipv4 1024: from all fwmark 0x80/0x80 lookup main",
		"ipv4 1535: from 192.0.2.99/32 lookup main",
		"ipv4 1535: from all to 172.20.0.0/16 lookup main",
		"ipv4 1535: from all to 172.21.0.1/32 lookup main",
		"ipv4 32766: from all lookup main",
		"ipv4 32767: from all lookup 253",
	}
	do(t, node, func() error {
		if diff := cmp.Diff(want, ruleStrings(t, netlink.FAMILY_V4)); diff != "" {
			t.Errorf("ip rules (-want +got):\n%s", diff)
		}
		l, err := netlink.LinkByName("eth0")
		if err == nil && l.Attrs().MTU != 9001 {
			t.Errorf("primary MTU %d, want 9001", l.Attrs().MTU)
		}
		return err
	})
	if res := reconcileIn(t, node, cfg); len(res.Changes) != 0 {
		t.Errorf("second reconcile changed: %q", res.Changes)
	}

	// Re-sync: one service CIDR goes, the fwmark rule leaves with SNAT and
	// NodePort support, and the moved local rule stays where it is.
	cfg.ExternalServiceCIDRs = prefixes("172.21.0.1/32")
	cfg.ExternalSNAT, cfg.NodePortSupport = true, false
	reconcileIn(t, node, cfg)
	want = []string{
		"ipv4 20: from all lookup local",
		"ipv4 1535: from 192.0.2.99/32 lookup main",
		"ipv4 1535: from all to 172.21.0.1/32 lookup main",
		"ipv4 32766: from all lookup main",
		"ipv4 32767: from all lookup 253",
	}
	do(t, node, func() error {
		if diff := cmp.Diff(want, ruleStrings(t, netlink.FAMILY_V4)); diff != "" {
			t.Errorf("ip rules after re-sync (-want +got):\n%s", diff)
		}
		return nil
	})
}

func TestPrivilegedHostIPv6(t *testing.T) {
	node := newNode(t)
	cfg := stateConfig(t, "iptables-legacy", ConnmarkAuto)
	cfg.IPv6, cfg.PodENIStrict = true, true
	cfg.PrimaryIPv4, cfg.VPCCIDRs = netip.Addr{}, nil
	reconcileIn(t, node, cfg)
	do(t, node, func() error {
		want := []string{
			"ipv6 0: from fe80:ec2::1/128 ipproto 58 lookup local",
			"ipv6 20: from all lookup local",
			"ipv6 1024: from all fwmark 0x80/0x80 lookup main",
			"ipv6 32766: from all lookup main",
		}
		if diff := cmp.Diff(want, ruleStrings(t, netlink.FAMILY_V6)); diff != "" {
			t.Errorf("IPv6 rules (-want +got):\n%s", diff)
		}
		return nil
	})
	if out := sh(t, node, "iptables-legacy", "-S", "FORWARD"); !strings.Contains(out, `-A FORWARD -d 169.254.172.0/22 -m conntrack --ctstate NEW -m comment --comment "Block Node Local Pod access via IPv4" -j REJECT`) {
		t.Errorf("FORWARD:\n%s", out)
	}
	if out := sh(t, node, "ip6tables-legacy", "-t", "mangle", "-S", "PREROUTING"); strings.Count(out, "AWS, primary ENI") != 3 {
		t.Errorf("ip6tables mangle:\n%s", out)
	}
	if out := sh(t, node, "iptables-legacy", "-t", "nat", "-S"); strings.Contains(out, "AWS") {
		t.Errorf("IPv6 mode wrote IPv4 NAT rules:\n%s", out)
	}
	if res := reconcileIn(t, node, cfg); len(res.Changes) != 0 {
		t.Errorf("second reconcile changed: %q", res.Changes)
	}
}

// Stale state of ours is repaired or removed; the other backend's leftovers
// go on the first reconcile.
func TestPrivilegedHostRepairsOwnedState(t *testing.T) {
	node := newNode(t)
	ipt := func(args ...string) string { return sh(t, node, "iptables-nft", args...) }
	// Upstream's old multi-chain layout and an iptables connmark setup.
	ipt("-t", "nat", "-N", "AWS-SNAT-CHAIN-1")
	ipt("-t", "nat", "-A", "AWS-SNAT-CHAIN-1", "-j", "RETURN")
	ipt("-t", "nat", "-N", snatChain)
	ipt("-t", "nat", "-A", snatChain, "-d", "10.9.0.0/16", "-m", "comment", "--comment", commentSNATChain, "-j", "AWS-SNAT-CHAIN-1")
	ipt("-t", "nat", "-A", "POSTROUTING", "-m", "comment", "--comment", commentSNATChain, "-j", snatChain)
	reconcileIn(t, node, stateConfig(t, "iptables-nft", ConnmarkIPTables))
	if out := ipt("-t", "nat", "-S"); strings.Contains(out, "AWS-SNAT-CHAIN-1") || strings.Contains(out, "10.9.0.0") || strings.Count(out, "-j "+snatChain) != 1 {
		t.Errorf("stale layout survived:\n%s", out)
	}

	// Wrong order inside the owned chain is put right, in place.
	ipt("-t", "nat", "-D", snatChain, "1")
	ipt("-t", "nat", "-A", snatChain, "-d", "10.0.0.0/16", "-m", "comment", "--comment", commentSNATChain, "-j", "RETURN")
	before := ipt("-t", "nat", "-S", snatChain)
	res := reconcileIn(t, node, stateConfig(t, "iptables-nft", ConnmarkIPTables))
	after := ipt("-t", "nat", "-S", snatChain)
	if !strings.Contains(after, "-A "+snatChain+" -d 10.0.0.0/16") || strings.Index(after, "RETURN") > strings.Index(after, "SNAT --to-source") {
		t.Errorf("order not repaired:\nbefore:\n%s\nafter:\n%s\nchanges %q", before, after, res.Changes)
	}

	// Switch to nftables: the iptables connmark rules and chain go.
	res = reconcileIn(t, node, stateConfig(t, "iptables-nft", ConnmarkNFTables))
	if out := ipt("-t", "nat", "-S"); strings.Contains(out, connmarkChain) || strings.Contains(out, commentConnmark) {
		t.Errorf("iptables connmark leftovers after switching to nftables:\n%s\nchanges %q", out, res.Changes)
	}
	sh(t, node, "nft", "list", "table", "ip", nftTable)

	// A foreign rule added to our nft chain, and a tampered base chain.
	sh(t, node, "nft", "add", "rule", "ip", nftTable, nftMarkChain, "ip", "daddr", "8.8.8.8", "return")
	res = reconcileIn(t, node, stateConfig(t, "iptables-nft", ConnmarkNFTables))
	if out := sh(t, node, "nft", "list", "table", "ip", nftTable); strings.Contains(out, "8.8.8.8") {
		t.Errorf("extra nft rule survived (changes %q):\n%s", res.Changes, out)
	}
	sh(t, node, "nft", "delete", "chain", "ip", nftTable, nftBaseChain)
	sh(t, node, "nft", "add", "chain", "ip", nftTable, nftBaseChain, "{ type nat hook prerouting priority 0; policy accept; }")
	reconcileIn(t, node, stateConfig(t, "iptables-nft", ConnmarkNFTables))
	if out := sh(t, node, "nft", "list", "chain", "ip", nftTable, nftBaseChain); !strings.Contains(out, "priority dstnat + 10") || !strings.Contains(out, "jump snat-mark") {
		t.Errorf("base chain not rebuilt:\n%s", out)
	}
	if res := reconcileIn(t, node, stateConfig(t, "iptables-nft", ConnmarkNFTables)); len(res.Changes) != 0 {
		t.Errorf("not converged: %q", res.Changes)
	}

	// And back to iptables: the nft table goes.
	reconcileIn(t, node, stateConfig(t, "iptables-nft", ConnmarkIPTables))
	if out := sh(t, node, "nft", "list", "tables"); strings.Contains(out, nftTable) {
		t.Errorf("nft table left after switching to iptables:\n%s", out)
	}
}

func TestPrivilegedHostErrors(t *testing.T) {
	node := newNode(t)
	n := New(nil)
	n.linkPatience = 0 // one look
	cfg := stateConfig(t, "iptables-nft", ConnmarkNFTables)
	cfg.PrimaryMAC = mustMAC(t, "02:00:00:00:77:77")
	var err error
	do(t, node, func() error { _, err = n.ReconcileHost(context.Background(), cfg); return nil })
	if err == nil || !strings.Contains(err.Error(), "primary ENI") || !strings.Contains(err.Error(), "02:00:00:00:77:77") {
		t.Errorf("missing primary link: %v", err)
	}
	cfg = stateConfig(t, "/nonexistent/iptables", ConnmarkAuto)
	do(t, node, func() error { _, err = n.ReconcileHost(context.Background(), cfg); return nil })
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/iptables") {
		t.Errorf("missing iptables binary: %v", err)
	}
	cfg = stateConfig(t, "iptables-nft", ConnmarkNFTables)
	cfg.VethPrefix = ""
	do(t, node, func() error { _, err = n.ReconcileHost(context.Background(), cfg); return nil })
	if err == nil || !strings.Contains(err.Error(), "VETHPREFIX") {
		t.Errorf("invalid config: %v", err)
	}
}
