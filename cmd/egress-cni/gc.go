package main

import (
	"errors"
	"strings"

	"github.com/vishvananda/netlink"

	"github.com/vpc-cni/vpc-cni/pkg/cniplugin"
	"github.com/vpc-cni/vpc-cni/pkg/egress"
)

// cmdGC removes the egress wiring of every attachment the runtime no longer
// lists as valid: addresses in the store, SNAT chains, and host veths left
// behind by a pod whose DEL never came.
func cmdGC(args *cniplugin.Args) error {
	conf, log, closeLog, err := load(args)
	if err != nil {
		return err
	}
	defer closeLog()
	if !conf.Enabled && !egress.StoreExists(conf.Network, conf.DataDir) {
		return nil
	}
	valid := map[string]bool{}     // containerID/ifname
	chains := map[string]bool{}    // chains of valid containers
	hostVeths := map[string]bool{} // host veths of valid attachments
	for _, a := range conf.ValidAttachments {
		valid[a.ContainerID+"/"+a.IfName] = true
		chains[egress.ChainName(conf.Family, conf.Network, a.ContainerID)] = true
		hostVeths[egress.HostVethName(a.ContainerID, a.IfName)] = true
	}
	var errs []error
	store, err := egress.OpenStore(conf.Network, conf.DataDir, conf.Range)
	if err != nil {
		return cniplugin.Error(ErrWiring, "egress address store", err)
	}
	defer store.Close()
	held, err := store.List()
	errs = append(errs, err)
	for _, h := range held {
		if valid[h.ContainerID+"/"+h.IfName] {
			continue
		}
		log.Info("GC: releasing stale egress address", "address", h.IP, "owner", h.ContainerID, "ownerIf", h.IfName)
		errs = append(errs, store.Release(h.ContainerID, h.IfName))
	}
	all, err := egress.Chains(conf.Family)
	errs = append(errs, err)
	var stale []string
	for _, c := range all {
		if !chains[c] {
			stale = append(stale, c)
		}
	}
	if len(stale) > 0 {
		log.Info("GC: removing stale SNAT chains", "chains", stale)
		errs = append(errs, egress.RemoveChains(conf.Family, stale))
	}
	links, err := netlink.LinkList()
	errs = append(errs, err)
	for _, l := range links {
		name := l.Attrs().Name
		if _, ok := l.(*netlink.Veth); ok && strings.HasPrefix(name, "egr") && len(name) == 15 && !hostVeths[name] {
			log.Info("GC: removing stale egress veth", "link", name)
			errs = append(errs, egress.Teardown(conf.Family, "", name))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return cniplugin.Error(ErrWiring, "egress GC incomplete", err)
	}
	return nil
}
