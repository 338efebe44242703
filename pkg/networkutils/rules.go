package networkutils

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/vishvananda/netlink"
	"github.com/vpc-cni/vpc-cni/pkg/hostcontract"
)

// setRule leaves want as the only rule among those matching slot: every
// other matching rule is deleted, and want is added unless present.
func setRule(want ruleSpec, slot func(ruleSpec) bool) error {
	return setRules(want.Family, []ruleSpec{want}, slot)
}

// setRules leaves exactly wants among the rules of family fam matching
// slot, after one listing: every other matching rule (and any duplicate of
// a wanted one) is deleted, and each wanted rule is added unless present.
func setRules(fam int, wants []ruleSpec, slot func(ruleSpec) bool) error {
	rules, err := listRules(fam)
	if err != nil {
		return fmt.Errorf("list rules: %w", err)
	}
	var errs []error
	kept := make([]bool, len(wants))
	for _, r := range rules {
		k := ruleKeyOf(r)
		if !slot(k) {
			continue
		}
		if i := slices.Index(wants, k); i >= 0 && !kept[i] {
			kept[i] = true
			continue
		}
		if err := delRule(&r); err != nil {
			errs = append(errs, fmt.Errorf("delete rule %s: %w", k, err))
		}
	}
	for i, w := range wants {
		if kept[i] {
			continue
		}
		if err := netlink.RuleAdd(w.netlinkRule()); err != nil {
			errs = append(errs, fmt.Errorf("add rule %s: %w", w, err))
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

// RestorePodRule leaves the pod rules a fresh ADD would: exactly one
// `to <podIP> lookup main` (priority 512), and exactly one
// `from <podIP> lookup <table>` (1536), or none when table is the main
// table (a pod on the primary ENI), replacing whatever from-pod rules the
// pod had. ipamd calls it for each pod restored from the checkpoint, whose
// ENI, and so table, may have changed since its ADD, on a node whose rules
// may have been flushed.
func (n *Network) RestorePodRule(ctx context.Context, podIP netip.Addr, table int) error {
	if !podIP.IsValid() {
		return errors.New("restore pod rule: pod IP is not set")
	}
	if table <= 0 {
		return fmt.Errorf("restore pod rule for %s: invalid table %d", podIP, table)
	}
	fam, host := family(podIP), netip.PrefixFrom(podIP, podIP.BitLen())
	wants := []ruleSpec{{Priority: hostcontract.PriorityToPod, Family: fam, Dst: host, Table: hostcontract.MainTable}}
	if table != hostcontract.MainTable {
		wants = append(wants, ruleSpec{Priority: hostcontract.PriorityFromPod, Family: fam, Src: host, Table: table})
	}
	err := setRules(fam, wants, func(r ruleSpec) bool {
		return r.Priority == hostcontract.PriorityToPod && r.Dst == host || r.Priority == hostcontract.PriorityFromPod && r.Src == host
	})
	if err != nil {
		return fmt.Errorf("restore pod rule for %s: %w", podIP, err)
	}
	n.log.DebugContext(ctx, "pod rule restored", "ip", podIP, "table", table)
	return nil
}

// DeletePodRules removes a stale pod's rules: `to <podIP> lookup main` at
// 512 and `from <podIP>` at 1536 whatever its table.
func (n *Network) DeletePodRules(ctx context.Context, podIP netip.Addr) error {
	if !podIP.IsValid() {
		return errors.New("delete pod rules: pod IP is not set")
	}
	rules, err := listRules(family(podIP))
	if err != nil {
		return fmt.Errorf("delete pod rules for %s: list rules: %w", podIP, err)
	}
	host := netip.PrefixFrom(podIP, podIP.BitLen())
	var errs []error
	for _, r := range rules {
		toPod := r.Priority == hostcontract.PriorityToPod && ipNetToPrefix(r.Dst) == host
		fromPod := r.Priority == hostcontract.PriorityFromPod && ipNetToPrefix(r.Src) == host
		if !toPod && !fromPod {
			continue
		}
		if err := delRule(&r); err != nil {
			errs = append(errs, fmt.Errorf("delete pod rules for %s: rule prio %d lookup %d: %w", podIP, r.Priority, r.Table, err))
		}
	}
	n.log.DebugContext(ctx, "pod rules deleted", "ip", podIP)
	return errors.Join(errs...)
}
