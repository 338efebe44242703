package networkutils

import (
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// nftTableRef, nftChains and nftRules build table `ip aws-cni` for want.
func nftTableRef() *nftables.Table {
	return &nftables.Table{Name: nftTable, Family: nftables.TableFamilyIPv4}
}

func nftChains(t *nftables.Table) (base, mark *nftables.Chain) {
	accept := nftables.ChainPolicyAccept
	base = &nftables.Chain{
		Name: nftBaseChain, Table: t, Type: nftables.ChainTypeNAT,
		Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityRef(nftBaseChainPrio), Policy: &accept,
	}
	mark = &nftables.Chain{Name: nftMarkChain, Table: t}
	return base, mark
}

// nftBaseRules: fib daddr type local return; iifname "<prefix>*" counter
// jump snat-mark; counter meta mark set ct mark & <mark>.
func nftBaseRules(want *nftState) [][]expr.Any {
	return [][]expr.Any{
		{
			&expr.Fib{Register: 1, FlagDADDR: true, ResultADDRTYPE: true},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(unix.RTN_LOCAL)},
			&expr.Verdict{Kind: expr.VerdictReturn},
		},
		{
			// A comparison on the bare prefix bytes is nft's `iifname "eni*"`.
			&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte(want.VethPrefix)},
			&expr.Counter{},
			&expr.Verdict{Kind: expr.VerdictJump, Chain: nftMarkChain},
		},
		{
			&expr.Counter{},
			&expr.Ct{Register: 1, Key: expr.CtKeyMARK},
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
				Mask: binaryutil.NativeEndian.PutUint32(want.Mark), Xor: binaryutil.NativeEndian.PutUint32(0)},
			&expr.Meta{Key: expr.MetaKeyMARK, SourceRegister: true, Register: 1},
		},
	}
}

// nftMarkRules: counter ip daddr <cidr> return, per exempt CIDR; then
// counter ct mark set ct mark | <mark>.
func nftMarkRules(want *nftState) [][]expr.Any {
	var rules [][]expr.Any
	for _, p := range want.Exempt {
		r := []expr.Any{
			&expr.Counter{},
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4},
		}
		if p.Bits() < 32 {
			r = append(r, &expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
				Mask: binary.BigEndian.AppendUint32(nil, ^uint32(0)<<(32-p.Bits())), Xor: []byte{0, 0, 0, 0}})
		}
		a := p.Masked().Addr().As4()
		r = append(r, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: a[:]}, &expr.Verdict{Kind: expr.VerdictReturn})
		rules = append(rules, r)
	}
	return append(rules, []expr.Any{
		&expr.Counter{},
		&expr.Ct{Register: 1, Key: expr.CtKeyMARK},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(^want.Mark), Xor: binaryutil.NativeEndian.PutUint32(want.Mark)},
		&expr.Ct{Key: expr.CtKeyMARK, Register: 1, SourceRegister: true},
	})
}

// exprKey renders a rule's expressions for comparison; counters are
// compared by presence only.
func exprKey(es []expr.Any) string {
	s := ""
	for _, e := range es {
		switch e := e.(type) {
		case *expr.Counter:
			s += "counter;"
			continue
		case *expr.Ct:
			// google/nftables does not decode a ct set's source register:
			// it reads back as register 0, which no ct load ever uses.
			if e.SourceRegister || e.Register == 0 {
				s += fmt.Sprintf("ct set key %d dir %d;", e.Key, e.Direction)
				continue
			}
		}
		s += fmt.Sprintf("%T%+v;", e, e)
	}
	return s
}

func sameChainHook(got, want *nftables.Chain) bool {
	return got.Type == want.Type &&
		got.Hooknum != nil && *got.Hooknum == *want.Hooknum &&
		got.Priority != nil && *got.Priority == *want.Priority &&
		got.Policy != nil && *got.Policy == *want.Policy
}

// reconcileNFT makes table `ip aws-cni` match want (nil: absent). All
// changes go in one netlink batch, which the kernel applies atomically.
func reconcileNFT(want *nftState, changes *[]string) error {
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	tables, err := c.ListTablesOfFamily(nftables.TableFamilyIPv4)
	if err != nil {
		if want == nil {
			// Without nf_tables nothing of ours can exist.
			return nil
		}
		return fmt.Errorf("nftables: list tables: %w", err)
	}
	exists := slices.ContainsFunc(tables, func(t *nftables.Table) bool { return t.Name == nftTable })
	t := nftTableRef()
	if want == nil {
		if exists {
			c.DelTable(t)
			if err := c.Flush(); err != nil {
				return fmt.Errorf("nft delete table ip %s: %w", nftTable, err)
			}
			*changes = append(*changes, "nft delete table ip "+nftTable)
		}
		return nil
	}

	base, mark := nftChains(t)
	wantRules := map[*nftables.Chain][][]expr.Any{base: nftBaseRules(want), mark: nftMarkRules(want)}
	rebuild := !exists
	var dirty []*nftables.Chain
	if exists {
		chains, err := c.ListChainsOfTableFamily(nftables.TableFamilyIPv4)
		if err != nil {
			return fmt.Errorf("nftables: list chains: %w", err)
		}
		var names []string
		for _, ch := range chains {
			if ch.Table.Name != nftTable {
				continue
			}
			names = append(names, ch.Name)
			switch ch.Name {
			case nftBaseChain:
				rebuild = rebuild || !sameChainHook(ch, base)
			case nftMarkChain:
				rebuild = rebuild || ch.Hooknum != nil
			default:
				rebuild = true // a chain we never create
			}
		}
		slices.Sort(names)
		rebuild = rebuild || !slices.Equal(names, []string{nftBaseChain, nftMarkChain})
		if !rebuild {
			for _, ch := range []*nftables.Chain{base, mark} {
				got, err := c.GetRules(t, ch)
				if err != nil {
					return fmt.Errorf("nftables: list rules of %s: %w", ch.Name, err)
				}
				if !sameRules(got, wantRules[ch]) {
					dirty = append(dirty, ch)
				}
			}
		}
	}
	switch {
	case rebuild:
		if exists {
			c.DelTable(t)
			*changes = append(*changes, "nft delete table ip "+nftTable)
		}
		c.AddTable(t)
		c.AddChain(base)
		c.AddChain(mark)
		dirty = []*nftables.Chain{base, mark}
		*changes = append(*changes, "nft add table ip "+nftTable)
	case len(dirty) == 0:
		return nil
	}
	for _, ch := range dirty {
		if !rebuild {
			c.FlushChain(ch)
		}
		for _, es := range wantRules[ch] {
			c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: es})
		}
		*changes = append(*changes, "nft reinstall chain "+ch.Name)
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nft apply table ip %s (chains %s): %w", nftTable, chainNames(dirty), err)
	}
	return nil
}

func chainNames(cs []*nftables.Chain) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Name)
	}
	return out
}

func sameRules(got []*nftables.Rule, want [][]expr.Any) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if exprKey(got[i].Exprs) != exprKey(want[i]) {
			return false
		}
	}
	return true
}
