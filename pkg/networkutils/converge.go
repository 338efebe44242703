package networkutils

import (
	"context"
	"errors"
	"fmt"
	"slices"
)

// Moving a chain from one rule set to another (a new connmark, a new veth
// prefix, RANDOMIZESNAT prng→none, NodePort support toggled) must never
// pass through a state without a rule both sets have in substance: a pod
// packet that meets no connmark restore leaves by the wrong ENI, and a
// connection whose first packet meets no SNAT rule keeps its pod source
// for life. So wanted rules go in at their place first, and unwanted ones
// come out after; rules already in the wanted relative order stay put.

// lcs marks a longest common subsequence of have and want: the rules of
// have that can stay where they are (keep) and the rules of want they
// already provide (found).
func lcs(have, want []iptRule) (keep, found []bool) {
	n, m := len(have), len(want)
	l := make([][]int, n+1)
	for i := range l {
		l[i] = make([]int, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if sameRule(have[i], want[j]) {
				l[i][j] = l[i+1][j+1] + 1
			} else {
				l[i][j] = max(l[i+1][j], l[i][j+1])
			}
		}
	}
	keep, found = make([]bool, n), make([]bool, m)
	for i, j := 0, 0; i < n && j < m; {
		switch {
		case sameRule(have[i], want[j]):
			keep[i], found[j] = true, true
			i++
			j++
		case l[i+1][j] >= l[i][j+1]:
			i++
		default:
			j++
		}
	}
	return keep, found
}

// slot is one rule of a chain as converge sees it.
type slot struct {
	rule iptRule
	ours bool // converge may delete it
	keep bool // it stays
}

// converge makes our rules of ch (those of cur for which ours is true;
// every rule when ours is nil, for an owned chain) equal ch.Rules in
// order, adding the missing ones before deleting the unwanted ones. Others'
// rules are never touched. If an addition fails nothing is deleted, so the
// old rules keep working until the next reconcile.
func (c *iptClient) converge(ctx context.Context, ch iptChain, cur []iptRule, ours func(iptRule) bool, record func(string)) error {
	owned := ours == nil
	var slots []slot
	var have []iptRule
	for _, r := range cur {
		s := slot{rule: r, ours: owned || ours(r), keep: true}
		if s.ours {
			have = append(have, r)
		}
		slots = append(slots, s)
	}
	keep, found := lcs(have, ch.Rules)
	for i, k := 0, 0; i < len(slots); i++ {
		if slots[i].ours {
			slots[i].keep = keep[k]
			k++
		}
	}

	var errs []error
	p := 0 // slots[:p] hold ch.Rules[:j] in order (among others' and unwanted rules)
	for j, w := range ch.Rules {
		if found[j] {
			for !(slots[p].ours && slots[p].keep) {
				p++
			}
			p++
			continue
		}
		// Just before the next rule of ours, to keep our relative order;
		// at the end of a built-in chain if none follows.
		q := p
		for q < len(slots) && !slots[q].ours {
			q++
		}
		if q == len(slots) && !owned {
			if err := c.do(ctx, func() error { return c.ipt.Append(ch.Table, ch.Name, w...) }); err != nil {
				errs = append(errs, fmt.Errorf("%s -t %s -A %s %s: %w", c.name, ch.Table, ch.Name, w, err))
				continue
			}
			record(fmt.Sprintf("-t %s -A %s %s", ch.Table, ch.Name, w))
		} else {
			if err := c.do(ctx, func() error { return c.ipt.Insert(ch.Table, ch.Name, q+1, w...) }); err != nil {
				errs = append(errs, fmt.Errorf("%s -t %s -I %s %d %s: %w", c.name, ch.Table, ch.Name, q+1, w, err))
				continue
			}
			record(fmt.Sprintf("-t %s -I %s %d %s", ch.Table, ch.Name, q+1, w))
		}
		slots = slices.Insert(slots, q, slot{rule: w, ours: true, keep: true})
		p = q + 1
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}

	// Bottom-up, so that the numbers of the rules still to delete hold.
	for i := len(slots) - 1; i >= 0; i-- {
		s := slots[i]
		if !s.ours || s.keep {
			continue
		}
		if owned {
			if err := c.do(ctx, func() error { return c.ipt.DeleteById(ch.Table, ch.Name, i+1) }); err != nil {
				// The numbering is now unknown.
				return fmt.Errorf("%s -t %s -D %s %d (%s): %w", c.name, ch.Table, ch.Name, i+1, s.rule, err)
			}
		} else {
			// By spec: others may have changed the built-in chain since
			// it was listed.
			if err := c.do(ctx, func() error { return c.ipt.Delete(ch.Table, ch.Name, s.rule...) }); err != nil {
				errs = append(errs, fmt.Errorf("%s -t %s -D %s %s: %w", c.name, ch.Table, ch.Name, s.rule, err))
				continue
			}
		}
		record(fmt.Sprintf("-t %s -D %s %s", ch.Table, ch.Name, s.rule))
	}
	return errors.Join(errs...)
}
