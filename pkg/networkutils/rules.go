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
	rules, err := listRules(want.Family)
	if err != nil {
		return fmt.Errorf("list rules: %w", err)
	}
	var errs []error
	kept := false
	for _, r := range rules {
		k := ruleKeyOf(r)
		if !slot(k) {
			continue
		}
		if !kept && k == want {
			kept = true
			continue
		}
		if err := delRule(&r); err != nil {
			errs = append(errs, fmt.Errorf("delete rule %s: %w", k, err))
		}
	}
	if !kept {
		if err := netlink.RuleAdd(want.netlinkRule()); err != nil {
			errs = append(errs, fmt.Errorf("add rule %s: %w", want, err))
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

// RestorePodRule leaves the from-pod rules (priority 1536) a fresh ADD
// would: exactly one `from <podIP> lookup <table>`, or none when table is
// the main table (a pod on the primary ENI), replacing whatever from-pod
// rules the pod had. ipamd calls it for each pod restored from the
// checkpoint, whose ENI, and so table, may have changed since its ADD.
func (n *Network) RestorePodRule(ctx context.Context, podIP netip.Addr, table int) error {
	if !podIP.IsValid() {
		return errors.New("restore pod rule: pod IP is not set")
	}
	if table <= 0 {
		return fmt.Errorf("restore pod rule for %s: invalid table %d", podIP, table)
	}
	src := netip.PrefixFrom(podIP, podIP.BitLen())
	slot := func(r ruleSpec) bool { return r.Priority == hostcontract.PriorityFromPod && r.Src == src }
	var err error
	if table == hostcontract.MainTable {
		err = deleteRules(family(podIP), slot)
	} else {
		err = setRule(ruleSpec{Priority: hostcontract.PriorityFromPod, Family: family(podIP), Src: src, Table: table}, slot)
	}
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
