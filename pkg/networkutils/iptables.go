package networkutils

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"

	"github.com/coreos/go-iptables/iptables"
)

// iptClient is one iptables binary (one backend, one family). go-iptables
// execs the binary from the calling goroutine's locked thread, so the
// command acts on the caller's network namespace.
type iptClient struct {
	ipt  *iptables.IPTables
	name string // binary name, for change and error messages
	log  *slog.Logger
}

// lockWaitStep is how long, in seconds, one iptables command waits for the
// xtables lock another process holds before iptClient.do looks at the
// context again: go-iptables' default `--wait` without a bound would wait
// as long as that process holds the lock, whatever the context says.
const lockWaitStep = 1

func newIPTClient(path string, proto iptables.Protocol) (*iptClient, error) {
	ipt, err := iptables.New(iptables.IPFamily(proto), iptables.Path(path), iptables.Timeout(lockWaitStep))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &iptClient{ipt: ipt, name: filepath.Base(path), log: slog.New(slog.DiscardHandler)}, nil
}

// ip6tablesPath derives the IPv6 binary from the IPv4 one, keeping the
// backend: iptables-legacy → ip6tables-legacy.
func ip6tablesPath(path string) string {
	dir, base := filepath.Split(path)
	return dir + strings.Replace(base, "iptables", "ip6tables", 1)
}

// do runs the iptables command f, again as long as another process holds
// the xtables lock and ctx is not done.
func (c *iptClient) do(ctx context.Context, f func() error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %w", c.name, context.Cause(ctx))
	}
	for {
		err := f()
		if err == nil || !lockBusy(err) {
			return err
		}
		if ctx.Err() != nil {
			return fmt.Errorf("gave up waiting for the xtables lock: %w", errors.Join(err, context.Cause(ctx)))
		}
	}
}

// referenced reports whether err is iptables refusing to delete a chain
// that a rule still jumps to (legacy: "Too many links", nf_tables:
// EBUSY).
func referenced(err error) bool {
	var e *iptables.Error
	return errors.As(err, &e) && (strings.Contains(e.Error(), "Too many links") || strings.Contains(e.Error(), "resource busy"))
}

// lockBusy reports whether err is iptables giving up on a lock held by
// another process (exit status 4, RESOURCE_PROBLEM).
func lockBusy(err error) bool {
	var e *iptables.Error
	return errors.As(err, &e) && e.ExitStatus() == 4 && strings.Contains(e.Error(), "xtables lock")
}

// list returns the rules of chain as specs without the "-A CHAIN" prefix.
func (c *iptClient) list(ctx context.Context, table, chain string) ([]iptRule, error) {
	var lines []string
	err := c.do(ctx, func() (err error) { lines, err = c.ipt.List(table, chain); return err })
	if err != nil {
		return nil, fmt.Errorf("%s -t %s -S %s: %w", c.name, table, chain, err)
	}
	var out []iptRule
	for _, l := range lines {
		if !strings.HasPrefix(l, "-A ") {
			continue
		}
		toks, err := splitRule(l)
		if err != nil {
			return nil, fmt.Errorf("%s -t %s -S %s: %w", c.name, table, chain, err)
		}
		out = append(out, iptRule(toks[2:]))
	}
	return out, nil
}

// splitRule splits an `iptables -S` line into arguments, undoing the
// double quotes iptables puts around values with spaces.
func splitRule(line string) ([]string, error) {
	var (
		toks   []string
		cur    strings.Builder
		inTok  bool
		quoted bool
	)
	for i := 0; i < len(line); i++ {
		ch := line[i]
		switch {
		case quoted && ch == '\\' && i+1 < len(line):
			i++
			cur.WriteByte(line[i])
		case ch == '"':
			quoted = !quoted
			inTok = true
		case !quoted && (ch == ' ' || ch == '\t'):
			if inTok {
				toks = append(toks, cur.String())
				cur.Reset()
				inTok = false
			}
		default:
			cur.WriteByte(ch)
			inTok = true
		}
	}
	if quoted {
		return nil, fmt.Errorf("unterminated quote in rule %q", line)
	}
	if inTok {
		toks = append(toks, cur.String())
	}
	if len(toks) < 2 {
		return nil, fmt.Errorf("malformed rule %q", line)
	}
	return toks, nil
}

func sameRule(a, b iptRule) bool { return slices.Equal(a, b) }

func indexRule(rs []iptRule, r iptRule) int {
	return slices.IndexFunc(rs, func(x iptRule) bool { return sameRule(x, r) })
}

// reconcile brings one family's owned iptables state to want, recording
// every change. ownedTables are scanned for stale chains of ours even when
// want has none there. Failures are collected so one bad rule does not stop
// the rest.
func (c *iptClient) reconcile(ctx context.Context, want iptState, ownedTables []string, changes *[]string) error {
	var errs []error
	record := func(s string) { *changes = append(*changes, c.name+" "+s) }

	// List owned chains once to find missing and stale ones.
	existing := map[string][]string{}
	tables := slices.Clone(ownedTables)
	for _, ch := range want.Chains {
		if !slices.Contains(tables, ch.Table) {
			tables = append(tables, ch.Table)
		}
	}
	for _, t := range tables {
		var chains []string
		err := c.do(ctx, func() (err error) { chains, err = c.ipt.ListChains(t); return err })
		if err != nil {
			errs = append(errs, fmt.Errorf("%s -t %s -S: %w", c.name, t, err))
			continue
		}
		existing[t] = chains
	}
	for _, ch := range want.Chains {
		chains, ok := existing[ch.Table]
		if !ok || slices.Contains(chains, ch.Name) {
			continue
		}
		if err := c.do(ctx, func() error { return c.ipt.NewChain(ch.Table, ch.Name) }); err != nil {
			errs = append(errs, fmt.Errorf("%s -t %s -N %s: %w", c.name, ch.Table, ch.Name, err))
			continue
		}
		record(fmt.Sprintf("-t %s -N %s", ch.Table, ch.Name))
	}

	// Shared chains first: they hold the jumps into chains that may be
	// about to go away.
	for _, ch := range want.Shared {
		if err := c.reconcileShared(ctx, ch, record); err != nil {
			errs = append(errs, err)
		}
	}
	for _, ch := range want.Chains {
		if err := c.reconcileOwned(ctx, ch, record); err != nil {
			errs = append(errs, err)
		}
	}

	// Stale chains of ours (old multi-chain layouts, the iptables connmark
	// chain after a switch to nftables): flush them all, then delete, since
	// they may reference each other.
	var stale [][2]string
	for t, chains := range existing {
		for _, name := range chains {
			if ownedChain(name) && !slices.ContainsFunc(want.Chains, func(w iptChain) bool { return w.Table == t && w.Name == name }) {
				stale = append(stale, [2]string{t, name})
			}
		}
	}
	for _, s := range stale {
		if err := c.do(ctx, func() error { return c.ipt.ClearChain(s[0], s[1]) }); err != nil {
			errs = append(errs, fmt.Errorf("%s -t %s -F %s: %w", c.name, s[0], s[1], err))
		}
	}
	for _, s := range stale {
		if err := c.do(ctx, func() error { return c.ipt.DeleteChain(s[0], s[1]) }); err != nil {
			if referenced(err) {
				// Another program's rule, in a chain we do not manage,
				// still jumps here. Emptied, the chain does nothing;
				// failing every reconcile over it would stop ipamd.
				c.log.WarnContext(ctx, "an emptied chain of ours is still jumped to by another program's rule; left in place",
					"binary", c.name, "table", s[0], "chain", s[1])
				continue
			}
			errs = append(errs, fmt.Errorf("%s -t %s -X %s: %w", c.name, s[0], s[1], err))
			continue
		}
		record(fmt.Sprintf("-t %s -X %s", s[0], s[1]))
	}
	return errors.Join(errs...)
}

// reconcileShared makes our rules in a built-in chain equal ch.Rules
// without touching anyone else's rules.
func (c *iptClient) reconcileShared(ctx context.Context, ch iptChain, record func(string)) error {
	cur, err := c.list(ctx, ch.Table, ch.Name)
	if err != nil {
		return err
	}
	var ours []iptRule
	for _, r := range cur {
		if ownedRule(r) {
			ours = append(ours, r)
		}
	}
	var errs []error
	del := func(r iptRule) {
		if err := c.do(ctx, func() error { return c.ipt.Delete(ch.Table, ch.Name, r...) }); err != nil {
			errs = append(errs, fmt.Errorf("%s -t %s -D %s %s: %w", c.name, ch.Table, ch.Name, r, err))
			return
		}
		record(fmt.Sprintf("-t %s -D %s %s", ch.Table, ch.Name, r))
	}
	if ch.Top {
		// Others (kube-proxy, firewalls) may insert above us later; only
		// presence matters here, not the position.
		need := slices.Clone(ch.Rules)
		for _, r := range ours {
			if i := indexRule(need, r); i >= 0 {
				need = slices.Delete(need, i, i+1)
				continue
			}
			del(r)
		}
		for i := len(need) - 1; i >= 0; i-- {
			if err := c.do(ctx, func() error { return c.ipt.Insert(ch.Table, ch.Name, 1, need[i]...) }); err != nil {
				errs = append(errs, fmt.Errorf("%s -t %s -I %s 1 %s: %w", c.name, ch.Table, ch.Name, need[i], err))
				continue
			}
			record(fmt.Sprintf("-t %s -I %s 1 %s", ch.Table, ch.Name, need[i]))
		}
		return errors.Join(errs...)
	}
	// Our rules keep their relative order (the connmark restore must
	// follow the jump that sets the mark).
	return c.converge(ctx, ch, cur, ownedRule, record)
}

// reconcileOwned makes an owned chain hold exactly ch.Rules, in order,
// changing only the rules that differ.
func (c *iptClient) reconcileOwned(ctx context.Context, ch iptChain, record func(string)) error {
	cur, err := c.list(ctx, ch.Table, ch.Name)
	if err != nil {
		return err
	}
	return c.converge(ctx, ch, cur, nil, record)
}
