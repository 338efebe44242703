package ipamd

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"

	"github.com/vpc-cni/vpc-cni/pkg/introspect"
	"github.com/vpc-cni/vpc-cni/pkg/ipamd/datastore"
)

// Introspection is the IPAM as the introspection endpoint reads it.
func (n *IPAM) Introspection() introspect.Source { return introspection{n} }

type introspection struct{ n *IPAM }

// ENIs is /v1/enis in upstream's shape. Container IDs and interface names
// are blanked: anything on the node may read the endpoint.
func (s introspection) ENIs() map[int]introspect.CardENIs {
	out := map[int]introspect.CardENIs{}
	if !s.n.Ready() {
		return out // the cards are being built
	}
	for _, c := range s.n.cards.all() {
		st := c.store.Stats()
		ce := introspect.CardENIs{TotalIPs: st.TotalIPs, AssignedIPs: st.AssignedIPs, ENIs: map[string]introspect.ENI{}}
		for _, e := range c.store.Snapshot() {
			ie := introspect.ENI{
				ID: e.ID, IsPrimary: e.IsPrimary, IsTrunk: e.IsTrunk, IsEFA: e.IsEFA, DeviceNumber: e.DeviceNumber,
				AvailableIPv4Cidrs: map[string]introspect.CIDR{}, IPv6Cidrs: map[string]introspect.CIDR{},
				IsExcludedForPodIPs: e.ExcludedForPods, RouteTableID: e.RouteTableID, SubnetID: e.SubnetID,
			}
			for _, ci := range e.CIDRs {
				if ci.Prefix.Addr().Is4() {
					ie.AvailableIPv4Cidrs[ci.Prefix.String()] = cidrView(ci)
				} else {
					ie.IPv6Cidrs[ci.Prefix.String()] = cidrView(ci)
				}
			}
			ce.ENIs[e.ID] = ie
		}
		out[c.index] = ce
	}
	return out
}

func cidrView(ci datastore.CIDRInfo) introspect.CIDR {
	p := ci.Prefix.Masked()
	v := introspect.CIDR{
		Cidr:        net.IPNet{IP: net.IP(p.Addr().AsSlice()), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())},
		IPAddresses: map[string]introspect.Address{},
		IsPrefix:    p.Bits() != p.Addr().BitLen(),
		// AddressFamily stays "": upstream's snapshot copy omits it.
	}
	// An address kept for another card's quarantined pod is counted as
	// assigned: its row names that pod, as the pod still uses it.
	for _, a := range slices.Concat(ci.Allocations, ci.Reserved) {
		v.IPAddresses[a.Addr.String()] = introspect.Address{
			Address: a.Addr.String(),
			IPAMKey: introspect.IPAMKey{NetworkName: a.Key.NetworkName},
			IPAMMetadata: introspect.IPAMMetadata{
				K8SPodNamespace: a.Meta.K8sPodNamespace, K8SPodName: a.Meta.K8sPodName, InterfacesCount: a.Meta.InterfacesCount,
			},
			AssignedTime: a.AssignedAt,
		}
	}
	for _, cl := range ci.CoolingList {
		// Upstream keeps the last assignment time of a released address.
		v.IPAddresses[cl.Addr.String()] = introspect.Address{Address: cl.Addr.String(), AssignedTime: cl.AssignedAt, UnassignedTime: cl.UnassignedAt}
	}
	return v
}

// ENIConfigName is the ENIConfig the node resolves to, even when that
// ENIConfig does not exist; an error only when the node cannot be read.
func (s introspection) ENIConfigName(ctx context.Context) (string, error) {
	ec, err := s.n.kube.get().ENIConfig(ctx)
	if ec.Name != "" {
		return ec.Name, nil
	}
	if err == nil {
		err = errors.New("the node resolves to no ENIConfig")
	}
	return "", err
}

func (s introspection) NetworkEnv() introspect.NetworkEnv {
	cfg := s.n.cfg
	env := introspect.NetworkEnv{
		Connmark: cfg.Connmark, ExternalSNAT: cfg.ExternalSNAT, MTU: cfg.ENIMTU, VethPrefix: cfg.VethPrefix,
		NodePortSupport: cfg.NodePortSupport, ExcludeSNATCIDRs: prefixStrings(cfg.ExcludeSNATCIDRs),
		ExternalServiceCIDRs: prefixStrings(cfg.ExternalServiceCIDRs),
	}
	switch cfg.RandomizeSNAT {
	case "none":
		env.RandomizeSNAT = introspect.RandomizeNone
	case "hashrandom":
		env.RandomizeSNAT = introspect.RandomizeHashRandom
	default:
		env.RandomizeSNAT = introspect.RandomizePRNG
	}
	return env
}

func prefixStrings(ps []netip.Prefix) []string {
	out := []string{}
	for _, p := range ps {
		out = append(out, p.String())
	}
	return out
}

func (s introspection) IPAMDEnv() introspect.IPAMDEnv {
	cfg := s.n.cfg
	return introspect.IPAMDEnv{
		WarmIPTarget: cfg.WarmIPTarget, WarmENITarget: cfg.WarmENITarget, CustomNetworking: cfg.CustomNetworking,
		ManageENIsNonSchedulable: cfg.ManageENIsNonSchedulable, SubnetDiscovery: cfg.EnableSubnetDiscovery,
	}
}

// Pool is /v1/pool: per-ENI usage, the targets in force, the last action
// and what ipamd waits on now.
func (s introspection) Pool() introspect.Pool {
	n := s.n
	p := introspect.Pool{
		Mode: "secondary-ip",
		Targets: introspect.Targets{
			WarmENI: n.cfg.WarmENITarget, WarmIP: n.cfg.WarmIPTarget, MinimumIP: n.cfg.MinimumIPTarget,
			WarmPrefix: n.cfg.WarmPrefixTarget, MaxPods: n.node.maxPods.get(), CooldownSeconds: int(n.cfg.IPCooldown.Seconds()),
		},
		WaitingOn:   n.track.Current(),
		WaitingADDs: n.handout.waiting(),
		Cards:       []introspect.CardPool{},
	}
	p.LastAction, p.LastActionTime = n.last.get()
	if !n.ready.isSet() {
		return p // the cards are being built
	}
	for _, c := range n.cards.all() {
		st := c.store.Stats()
		switch st.Mode {
		case datastore.ModePrefixIPv4:
			p.Mode = "prefix"
		case datastore.ModeIPv6:
			p.Mode = "ipv6-prefix"
		}
		p.Targets.MaxENI += c.maxENIs
		cp := introspect.CardPool{Index: c.index, ENIs: []introspect.ENIPool{}, Quarantined: n.cards.quarantined(c, st)}
		for _, e := range c.store.Snapshot() {
			ep := introspect.ENIPool{ID: e.ID, Device: e.DeviceNumber, Primary: e.IsPrimary, Trunk: e.IsTrunk, Excluded: e.ExcludedForPods}
			for _, ci := range e.CIDRs {
				if ci.Prefix.Bits() == ci.Prefix.Addr().BitLen() {
					ep.Secondary++
				} else {
					ep.Prefixes++
				}
				if ci.Class != st.Mode {
					ep.Used += ci.Assigned // leftovers of another mode still serve their pods
					continue
				}
				ep.Used += ci.Assigned
				ep.Cooling += ci.Cooling
				if !e.ExcludedForPods {
					ep.Free += max(ci.Size-ci.Assigned-ci.Cooling, 0)
				}
				for _, cl := range ci.CoolingList {
					if until := cl.UnassignedAt.Add(n.cfg.IPCooldown); until.After(ep.CoolingUntil) {
						ep.CoolingUntil = until
					}
				}
			}
			cp.Used += ep.Used
			cp.Free += ep.Free
			cp.Cooling += ep.Cooling
			cp.ENIs = append(cp.ENIs, ep)
		}
		p.Cards = append(p.Cards, cp)
	}
	return p
}
