package networkutils

import (
	"context"
	"errors"
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
	"github.com/vpc-cni/vpc-cni/pkg/hostcontract"
)

// setRule leaves want as the only rule among those matching slot: every
// other matching rule is deleted, and want is added unless present.
func setRule(want ruleSpec, slot func(ruleSpec) bool) error {
	return setRules(want.Family, []ruleSpec{want}, slot)
}

// setRules leaves exactly wants among the rules of family fam matching
// slot, after one listing: each wanted rule is added unless present, and
// then every other matching rule (and any duplicate of a wanted one) is
// deleted. Adding first means an address whose rule moves to another
// table (a pod restored onto another ENI, an ENI at another device index)
// always has one.
func setRules(fam int, wants []ruleSpec, slot func(ruleSpec) bool) error {
	rules, err := listRules(fam)
	if err != nil {
		return fmt.Errorf("list rules: %w", err)
	}
	var errs []error
	kept := make([]bool, len(wants))
	index := make(map[ruleSpec]int, len(wants)) // first index of each wanted rule
	for i, w := range wants {
		if _, ok := index[w]; !ok {
			index[w] = i
		}
	}
	var stale []netlink.Rule
	for _, r := range rules {
		k := ruleKeyOf(r)
		if !slot(k) {
			continue
		}
		if i, ok := index[k]; ok && !kept[i] {
			kept[i] = true
			continue
		}
		stale = append(stale, r)
	}
	for i, w := range wants {
		if kept[i] {
			continue
		}
		if err := netlink.RuleAdd(w.netlinkRule()); err != nil {
			errs = append(errs, fmt.Errorf("add rule %s: %w", w, err))
		}
	}
	for _, r := range stale {
		if err := delRule(&r); err != nil {
			errs = append(errs, fmt.Errorf("delete rule %s: %w", ruleKeyOf(r), err))
		}
	}
	return errors.Join(errs...)
}

// deleteRules deletes every rule of family fam matching slot.
func deleteRules(fam int, slot func(ruleSpec) bool) error {
	rules, err := listRules(fam)
	if err != nil {
		return fmt.Errorf("list rules: %w", err)
	}
	var errs []error
	for _, r := range rules {
		if k := ruleKeyOf(r); slot(k) {
			if err := delRule(&r); err != nil {
				errs = append(errs, fmt.Errorf("delete rule %s: %w", k, err))
			}
		}
	}
	return errors.Join(errs...)
}

// PodRule is a pod restored from the checkpoint: its address and the
// route table of its ENI (the main table on the primary ENI).
type PodRule struct {
	IP    netip.Addr
	Table int
}

// RestorePodRules leaves each pod the rules a fresh ADD would: exactly one
// `to <IP> lookup main` (priority 512), and exactly one `from <IP> lookup
// <Table>` (1536), or none when Table is the main table (a pod on the
// primary ENI), replacing whatever from-pod rules the pod had. ipamd calls
// it once at start with every pod restored from the checkpoint, whose ENI,
// and so table, may have changed since its ADD, on a node whose rules may
// have been flushed. The kernel's rules are listed once per family, not
// once per pod: a node of 110 pods has some 220 pod rules.
func (n *Network) RestorePodRules(ctx context.Context, pods []PodRule) error {
	byFam := map[int][]ruleSpec{}
	hosts := map[netip.Prefix]bool{}
	var errs []error
	for _, p := range pods {
		// One bad entry must not cost the other pods their rules.
		if !p.IP.IsValid() {
			errs = append(errs, errors.New("restore pod rules: a pod IP is not set"))
			continue
		}
		if p.Table <= 0 {
			errs = append(errs, fmt.Errorf("restore pod rule for %s: invalid table %d", p.IP, p.Table))
			continue
		}
		fam, host := family(p.IP), netip.PrefixFrom(p.IP, p.IP.BitLen())
		hosts[host] = true
		byFam[fam] = append(byFam[fam], ruleSpec{Priority: hostcontract.PriorityToPod, Family: fam, Dst: host, Table: hostcontract.MainTable})
		if p.Table != hostcontract.MainTable {
			byFam[fam] = append(byFam[fam], ruleSpec{Priority: hostcontract.PriorityFromPod, Family: fam, Src: host, Table: p.Table})
		}
	}
	for fam, wants := range byFam {
		err := setRules(fam, wants, func(r ruleSpec) bool {
			return r.Priority == hostcontract.PriorityToPod && hosts[r.Dst] || r.Priority == hostcontract.PriorityFromPod && hosts[r.Src]
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("restore pod rules: %w", err))
		}
	}
	n.log.DebugContext(ctx, "pod rules restored", "pods", len(pods))
	return errors.Join(errs...)
}

// DeletePodRules removes stale pods' rules: `to <podIP> lookup main` at
// 512 and `from <podIP>` at 1536 whatever its table, listing the kernel's
// rules once per family.
func (n *Network) DeletePodRules(ctx context.Context, podIPs ...netip.Addr) error {
	byFam := map[int]map[netip.Prefix]bool{}
	var errs []error
	for _, ip := range podIPs {
		if !ip.IsValid() {
			errs = append(errs, errors.New("delete pod rules: pod IP is not set"))
			continue
		}
		fam := family(ip)
		if byFam[fam] == nil {
			byFam[fam] = map[netip.Prefix]bool{}
		}
		byFam[fam][netip.PrefixFrom(ip, ip.BitLen())] = true
	}
	for fam, hosts := range byFam {
		err := deleteRules(fam, func(r ruleSpec) bool {
			return r.Priority == hostcontract.PriorityToPod && hosts[r.Dst] || r.Priority == hostcontract.PriorityFromPod && hosts[r.Src]
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("delete pod rules: %w", err))
		}
	}
	n.log.DebugContext(ctx, "pod rules deleted", "ips", podIPs)
	return errors.Join(errs...)
}
