package main

import (
	"errors"
	"net/netip"
	"slices"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/vishvananda/netlink"

	"github.com/vpc-cni/vpc-cni/pkg/cniplugin"
	"github.com/vpc-cni/vpc-cni/pkg/egress"
)

// cmdGC removes the egress wiring of this network's attachments the
// runtime no longer lists as valid: addresses in the store, SNAT chains,
// and host veths left behind by a pod whose DEL never came. GC is per
// network (CNI spec 1.1): another network chaining egress-cni (multus)
// keeps its pods' wiring. A chain is this network's when its comment names
// the network or its name is the chain of a container this network's store
// holds; a host veth, when this network's store holds its attachment.
func cmdGC(args *cniplugin.Args) error {
	conf, log, closeLog, err := load(args)
	if err != nil {
		return err
	}
	defer closeLog()
	if !conf.Enabled && !egress.StoreExists(conf.Network, conf.DataDir) {
		return nil
	}
	// containerID/ifname, and containerID/ for an address recorded by
	// container only (Store.Release): it may be any valid attachment's.
	valid := map[string]bool{}
	for _, a := range conf.ValidAttachments {
		valid[a.ContainerID+"/"+a.IfName] = true
		valid[a.ContainerID+"/"] = true
	}
	var errs []error
	store, err := egress.OpenStore(conf.Network, conf.DataDir, conf.Range)
	if err != nil {
		return cniplugin.Error(ErrWiring, "egress address store", err)
	}
	defer store.Close()
	held, err := store.List()
	errs = append(errs, err)
	plan := planGC(conf.Family, conf.Network, conf.ValidAttachments, held)
	// An attachment whose ADD is in flight is in no valid list yet: its
	// container's wiring is left to a later GC (egress.Claims).
	claims := egress.NewClaims(conf.Network, conf.DataDir)
	defer claims.Release()
	claim := func(chain string) bool {
		ok, err := claims.Claim(chain)
		errs = append(errs, err)
		if !ok && err == nil {
			log.Info("GC: leaving a container whose ADD is in flight", "chain", chain)
		}
		return ok
	}
	for _, h := range held {
		if valid[h.ContainerID+"/"+h.IfName] {
			continue
		}
		chain := egress.ChainName(conf.Family, conf.Network, h.ContainerID)
		if !claim(chain) {
			delete(plan.staleVeths, egress.HostVethName(h.ContainerID, h.IfName))
			continue
		}
		// The chain of a container with another, valid attachment stays:
		// only this attachment's jump goes, before its address is
		// released, or the next pod given the address is SNATed through
		// this container's chain.
		if plan.validChains[chain] {
			if err := egress.RemoveJumps(conf.Family, conf.Network, h.ContainerID, []netip.Addr{h.IP}); err != nil {
				errs = append(errs, err)
				continue
			}
		}
		log.Info("GC: releasing stale egress address", "address", h.IP, "owner", h.ContainerID, "ownerIf", h.IfName)
		errs = append(errs, store.Release(h.ContainerID, h.IfName))
	}
	owners, err := egress.ChainNetworks(conf.Family)
	errs = append(errs, err)
	// A container that took its address after the store was read finished
	// its ADD since: its chain is no stale one.
	again, err := store.List()
	errs = append(errs, err)
	fresh := map[string]bool{}
	for _, h := range again {
		fresh[egress.ChainName(conf.Family, conf.Network, h.ContainerID)] = true
	}
	for _, h := range held {
		delete(fresh, egress.ChainName(conf.Family, conf.Network, h.ContainerID))
	}
	var stale []string
	for c, network := range owners {
		if plan.staleChain(c, network) && !fresh[c] && claim(c) {
			stale = append(stale, c)
		}
	}
	if len(stale) > 0 {
		slices.Sort(stale)
		log.Info("GC: removing stale SNAT chains", "chains", stale)
		errs = append(errs, egress.RemoveChains(conf.Family, stale))
	}
	links, err := netlink.LinkList()
	errs = append(errs, err)
	for _, l := range links {
		name := l.Attrs().Name
		if _, ok := l.(*netlink.Veth); ok && plan.staleVeths[name] {
			log.Info("GC: removing stale egress veth", "link", name)
			errs = append(errs, egress.Teardown(conf.Family, "", name, nil))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return cniplugin.Error(ErrWiring, "egress GC incomplete", err)
	}
	return nil
}

// gcPlan is what one network's GC may remove, from its valid attachments
// and its store's holders.
type gcPlan struct {
	network     string
	validChains map[string]bool // chains of valid containers
	heldChains  map[string]bool // chains of containers the store holds
	staleVeths  map[string]bool // host veths of held, no longer valid attachments
}

func planGC(f egress.Family, network string, valid []types.GCAttachment, held []egress.Holder) gcPlan {
	p := gcPlan{network: network, validChains: map[string]bool{}, heldChains: map[string]bool{}, staleVeths: map[string]bool{}}
	validVeths := map[string]bool{}
	for _, a := range valid {
		p.validChains[egress.ChainName(f, network, a.ContainerID)] = true
		validVeths[egress.HostVethName(a.ContainerID, a.IfName)] = true
	}
	for _, h := range held {
		p.heldChains[egress.ChainName(f, network, h.ContainerID)] = true
		if v := egress.HostVethName(h.ContainerID, h.IfName); !validVeths[v] {
			p.staleVeths[v] = true
		}
	}
	return p
}

// staleChain reports whether chain c, whose comment names owner ("" for
// none), is this network's and no valid container's.
func (p gcPlan) staleChain(c, owner string) bool {
	ours := owner == p.network || p.heldChains[c]
	return ours && !p.validChains[c]
}
