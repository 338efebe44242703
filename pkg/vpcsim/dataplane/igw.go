package dataplane

import (
	"fmt"
	"net/netip"
	"sort"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// igwTable is the VPC namespace's nftables table that plays the internet
// gateway: 1:1 NAT between each public instance's primary private address
// and its public IP, on the link to the internet only.
const igwTable = "vpcsim-igw"

// natPair maps a private address to its public IP.
type natPair struct {
	private, public netip.Addr
}

// natPairs is the desired NAT, in a stable order (pure planning).
func natPairs(public map[netip.Addr]netip.Addr) []natPair {
	out := make([]natPair, 0, len(public))
	for priv, pub := range public {
		out = append(out, natPair{priv, pub})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].private.Less(out[j].private) })
	return out
}

// applyIGW replaces the gateway table with one holding exactly pairs, in a
// single atomic batch.
func applyIGW(nsFd int, pairs []natPair) error {
	c, err := nftables.New(nftables.WithNetNSFd(nsFd))
	if err != nil {
		return fmt.Errorf("nftables in the VPC namespace: %w", err)
	}
	t := &nftables.Table{Name: igwTable, Family: nftables.TableFamilyIPv4}
	// Add-then-delete makes the delete valid whether or not the table exists.
	c.AddTable(t)
	c.DelTable(t)
	c.AddTable(t)
	pre := c.AddChain(&nftables.Chain{Name: "prerouting", Table: t, Type: nftables.ChainTypeNAT,
		Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityNATDest})
	post := c.AddChain(&nftables.Chain{Name: "postrouting", Table: t, Type: nftables.ChainTypeNAT,
		Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityNATSource})
	for _, p := range pairs {
		c.AddRule(&nftables.Rule{Table: t, Chain: pre, Exprs: natExprs(expr.MetaKeyIIFNAME, 16, p.public, p.private, expr.NATTypeDestNAT)})
		c.AddRule(&nftables.Rule{Table: t, Chain: post, Exprs: natExprs(expr.MetaKeyOIFNAME, 12, p.private, p.public, expr.NATTypeSourceNAT)})
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("program the internet gateway NAT: %w", err)
	}
	return nil
}

// natExprs: "<iif|oif>name inet ip <daddr|saddr> match nat to target".
func natExprs(ifKey expr.MetaKey, addrOffset uint32, match, target netip.Addr, typ expr.NATType) []expr.Any {
	name := make([]byte, unix.IFNAMSIZ)
	copy(name, inetLinkVPC)
	return []expr.Any{
		&expr.Meta{Key: ifKey, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: name},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: addrOffset, Len: 4},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: match.AsSlice()},
		&expr.Immediate{Register: 1, Data: target.AsSlice()},
		&expr.NAT{Type: typ, Family: unix.NFPROTO_IPV4, RegAddrMin: 1},
	}
}
