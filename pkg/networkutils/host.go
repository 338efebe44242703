package networkutils

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/coreos/go-iptables/iptables"
	"github.com/vishvananda/netlink"
)

// ReconcileHost makes the node's host-wide networking match cfg
// (docs/compatibility.md, "iptables and nftables"): the primary link's MTU,
// the fwmark/external-service/strict-local ip rules, the SNAT chain, the
// NodePort mangle rules, and the connmark rules in the selected backend. It
// reads the kernel's state, changes only what differs, and removes stale
// state it owns. A second call with the same cfg changes nothing
// (HostResult.Changes is empty).
func (n *Network) ReconcileHost(ctx context.Context, cfg HostConfig) (HostResult, error) {
	if err := cfg.Validate(); err != nil {
		return HostResult{}, err
	}
	cfg = cfg.withDefaults()
	n.hostMu.Lock()
	defer n.hostMu.Unlock()

	link, err := n.linkByMAC(ctx, cfg.PrimaryMAC)
	if err != nil {
		return HostResult{}, fmt.Errorf("primary ENI: %w", err)
	}
	ipt4, err := newIPTClient(cfg.IPTablesPath, iptables.ProtocolIPv4)
	if err != nil {
		return HostResult{}, fmt.Errorf("iptables: %w", err)
	}
	ipt4.log = n.log
	legacy, err := iptablesFlavour(ctx, cfg.IPTablesPath)
	if err != nil {
		return HostResult{}, fmt.Errorf("detect connmark backend: %w", err)
	}
	backend := cfg.ConnmarkBackend
	if backend == ConnmarkAuto {
		// As upstream: a legacy iptables keeps the connmark rules there,
		// otherwise they go to native nftables.
		backend = ConnmarkNFTables
		if legacy {
			backend = ConnmarkIPTables
		}
	}
	env := hostEnv{PrimaryLink: link.Attrs().Name, RandomFully: ipt4.ipt.HasRandomFully(), Backend: backend}
	want := desiredHost(cfg, env)
	res := HostResult{Backend: backend}

	var errs []error
	if link.Attrs().MTU != want.PrimaryMTU {
		if err := netlink.LinkSetMTU(link, want.PrimaryMTU); err != nil {
			errs = append(errs, fmt.Errorf("set MTU %d on primary %s: %w", want.PrimaryMTU, env.PrimaryLink, err))
		} else {
			res.Changes = append(res.Changes, fmt.Sprintf("ip link set %s mtu %d", env.PrimaryLink, want.PrimaryMTU))
		}
	}
	errs = append(errs, reconcileRules(want, &res.Changes))
	if ctx.Err() != nil {
		return res, errors.Join(append(errs, ctx.Err())...)
	}
	// Marking moves between iptables and nftables (a change of backend or
	// iptables flavour): the new marking goes in before the old comes out,
	// so no new pod connection goes unmarked in between. Both at once
	// set the same bits.
	if want.NFT != nil {
		if err := reconcileNFT(want.NFT, &res.Changes); err != nil {
			// Without the nftables marking, pod connections are marked
			// by iptables (kept, or put back) until a reconcile can
			// program nftables.
			errs = append(errs, err)
			fallback := env
			fallback.Backend = ConnmarkIPTables
			want.IPv4 = desiredHost(cfg, fallback).IPv4
			res.Backend = ConnmarkIPTables
			n.log.WarnContext(ctx, "nftables connmark failed; marking pod connections with iptables meanwhile", "err", err)
		}
	}
	// Another process may hold the xtables lock for long: wait for it,
	// but not past ctx nor xtablesPatience, so that a stuck lock fails
	// this reconcile instead of hanging ipamd.
	lockCtx, cancel := context.WithTimeout(ctx, n.xtablesPatience)
	defer cancel()
	errs = append(errs, ipt4.reconcile(lockCtx, want.IPv4, []string{"nat"}, &res.Changes))

	// ip6tables is needed only when something of ours may live there.
	ipt6, err := newIPTClient(ip6tablesPath(cfg.IPTablesPath), iptables.ProtocolIPv6)
	switch {
	case err == nil:
		ipt6.log = n.log
		errs = append(errs, ipt6.reconcile(lockCtx, want.IPv6, nil, &res.Changes))
	case hasRules(want.IPv6):
		errs = append(errs, fmt.Errorf("ip6tables: %w", err))
	default:
		n.log.DebugContext(ctx, "ip6tables unavailable, nothing wanted there", "err", err)
	}
	// Leftovers in the other flavour are removed on a best-effort basis:
	// a failure there must not fail the reconcile (and ipamd's start) of
	// the flavour in use.
	other := otherFlavour(cfg.IPTablesPath, legacy)
	for _, bin := range []string{other, ip6tablesPath(other)} {
		if err := purgeFlavour(lockCtx, bin, &res.Changes); err != nil {
			n.log.WarnContext(ctx, "could not remove our rules from the other iptables flavour", "binary", bin, "err", err)
		}
	}
	if ctx.Err() != nil {
		return res, errors.Join(append(errs, ctx.Err())...)
	}
	if want.NFT == nil {
		errs = append(errs, reconcileNFT(nil, &res.Changes))
	}

	err = errors.Join(errs...)
	if len(res.Changes) > 0 {
		n.log.InfoContext(ctx, "host networking reconciled", "backend", backend, "changes", len(res.Changes), "failed", err != nil)
		for _, c := range res.Changes {
			n.log.DebugContext(ctx, "host networking change", "change", c)
		}
	}
	return res, err
}

func hasRules(s iptState) bool {
	for _, c := range slices.Concat(s.Chains, s.Shared) {
		if len(c.Rules) > 0 {
			return true
		}
	}
	return false
}

// reconcileRules adds the wanted ip rules and deletes owned ones that are
// not wanted, in both families.
func reconcileRules(want hostState, changes *[]string) error {
	var errs []error
	for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		rules, err := listRules(fam)
		if err != nil {
			errs = append(errs, fmt.Errorf("list ip rules: %w", err))
			continue
		}
		var have []ruleSpec
		var stale []netlink.Rule
		for _, r := range rules {
			k := ruleKeyOf(r)
			switch {
			case k.Family != fam:
			case slices.Contains(want.Rules, k):
				have = append(have, k)
			case want.ownedIPRule(k):
				stale = append(stale, r)
			}
		}
		// Add before deleting: in strict mode the local rule moves from
		// priority 0 to 20 and must never be missing in between.
		for _, w := range want.Rules {
			if w.Family != fam || slices.Contains(have, w) {
				continue
			}
			if err := netlink.RuleAdd(w.netlinkRule()); err != nil {
				errs = append(errs, fmt.Errorf("add rule %s: %w", w, err))
				continue
			}
			*changes = append(*changes, "ip rule add "+w.String())
		}
		for _, r := range stale {
			k := ruleKeyOf(r)
			if err := delRule(&r); err != nil {
				errs = append(errs, fmt.Errorf("delete rule %s: %w", k, err))
				continue
			}
			*changes = append(*changes, "ip rule del "+k.String())
		}
	}
	return errors.Join(errs...)
}
